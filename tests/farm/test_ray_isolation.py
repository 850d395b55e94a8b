"""`farm run` beside another Ray on the machine, and what Ray may print on the CLI's output.

A user who ran `ray start --head` (Ray records it as the machine's current cluster in
its temp dir) or who has ``RAY_ADDRESS`` set still gets a plain `farm run` on a new
Ray of its own; `runtime.address=auto` joins the running one instead. A run's stderr
holds the farm's own lines, not Ray's warnings (its token-authentication note).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from _raycluster import REPO, VENV_BIN, start_head

TINY = ["sweep=smoke", "sweep.paths=16", "sweep.steps=8"]


def _farm_run(*args: str, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "farm"), "run", "--no-progress", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def test_a_run_prints_no_ray_warning_but_its_summary(tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_ADDRESS", "RAY_AUTH_MODE"))}  # Ray's defaults
    url = tmp_path / "quiet.zarr"
    proc = subprocess.run([str(VENV_BIN / "farm"), "run", *TINY, f"store.url={url}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    noisy = [ln for ln in proc.stderr.splitlines()
             if "token" in ln.lower() or "WARNING" in ln]
    assert not noisy, noisy
    assert "running on 1 node(s)" in proc.stderr  # the farm's own note is still there
    assert "blocks : 6 (0 already done, 6 run now, 0 failed)" in proc.stdout, proc.stdout


@pytest.mark.cluster
@pytest.mark.timeout(600)
def test_farm_run_beside_a_running_ray_head(tmp_path):
    """`ray start --head` (5 CPUs) on 127.0.0.1 in its own temp dir, found by Ray as the
    machine's current cluster (RAY_TMPDIR): plain `farm run` starts its own 1-CPU Ray
    anyway, also with RAY_ADDRESS pointing at the head; runtime.address=auto joins it."""
    tmp = tempfile.mkdtemp(prefix="frh", dir="/tmp")  # short: Ray's socket paths
    try:
        head = start_head(5, temp_dir=os.path.join(tmp, "ray"), dashboard=False)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        env = {**head.env, "RAY_TMPDIR": tmp}
        assert (Path(tmp) / "ray" / "ray_current_cluster").read_text().strip() \
            == head.gcs_address  # what a bare ray.init() would join

        own = _farm_run(*TINY, f"store.url={tmp_path / 'own.zarr'}", "runtime.workers=1",
                        env=env)
        assert own.returncode == 0, own.stderr[-4000:] + head.log_tail()
        assert "farm: running on 1 node(s), 1 CPU(s)" in own.stderr, own.stderr[-2000:]
        assert "0 failed" in own.stdout

        with_env = _farm_run(*TINY, f"store.url={tmp_path / 'env.zarr'}",
                             "runtime.workers=1",
                             env={**env, "RAY_ADDRESS": head.gcs_address})
        assert with_env.returncode == 0, with_env.stderr[-4000:]
        assert "farm: running on 1 node(s), 1 CPU(s)" in with_env.stderr

        joined = _farm_run(*TINY, f"store.url={tmp_path / 'joined.zarr'}",
                           "runtime.address=auto", env=env)
        assert joined.returncode == 0, joined.stderr[-4000:] + head.log_tail()
        assert "farm: running on 1 node(s), 5 CPU(s)" in joined.stderr, joined.stderr[-2000:]
        for proc in (own, with_env, joined):
            assert not re.search(r"(?i:token)|WARNING", proc.stderr), proc.stderr
    finally:
        head.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    assert not head.processes(), "the head's processes survived teardown"
