"""`farm submit --follow` on a real two-node Ray cluster (head + worker on 127.0.0.1).

The README's cluster command, exactly as printed there (only its dashboard address and
its store.url replaced by the test cluster's and a local path), goes through the Ray
Jobs API with the repository as the job's working directory; its blocks must run on
both nodes and the cube must equal, bit for bit, the same sweep run locally. The
cluster is torn down even on failure.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

import numpy as np
import pytest
import zarr
from _raycluster import LOOPBACK, REPO, VENV_BIN, start_cluster, task_nodes

from conftest import cube_arrays

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(900)]


def _farm(*args: str, env: dict, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(VENV_BIN / "farm"), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


def readme_submit_command() -> list[str]:
    """The `farm submit ...` command of README.md's cluster section, as arguments."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("\n## Cluster\n"):]
    command = re.search(r"`(farm submit [^`]+)`", section)
    assert command, "README.md's cluster section shows no `farm submit` command"
    return shlex.split(" ".join(command.group(1).split()))


def _as_here(args: list[str], address: str, url) -> list[str]:
    """``args`` with the dashboard address and the store.url replaced (both must be there)."""
    i = args.index("--address")
    out = [*args[:i + 1], address, *args[i + 2:]]
    (j,) = [k for k, a in enumerate(out) if a.startswith("store.url=")]
    out[j] = f"store.url={url}"
    return out


def test_submit_follow_runs_on_both_nodes_and_equals_local_run(tmp_path):
    cluster = start_cluster(cpus_per_node=1)
    try:
        listening = cluster.listening_addresses()
        assert listening and listening <= LOOPBACK, listening

        # A job that fails (bad override): --follow exits 1 with the job's own error.
        bad = _farm("submit", "--address", cluster.dashboard_url, "--follow",
                    "sweep=smoke", "sweep.paths=-1", f"store.url={tmp_path / 'bad.zarr'}",
                    env=cluster.env)
        assert bad.returncode == 1, bad.stdout[-3000:] + bad.stderr[-3000:]
        assert "sweep.paths" in bad.stdout and "FAILED" in bad.stderr

        # The README's command: no runtime=cluster typed, the job still uses the cluster.
        url = tmp_path / "cluster.zarr"
        readme = readme_submit_command()
        assert readme[:2] == ["farm", "submit"] and "--follow" in readme, readme
        proc = _farm(*_as_here(readme, cluster.dashboard_url, url)[1:], env=cluster.env)
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:] + cluster.log_tail()
        job_id = proc.stdout.strip().splitlines()[0]
        assert job_id.startswith("raysubmit_"), out[-2000:]
        assert "nodes  : 2" in out, out[-4000:]  # the farm's own record of block nodes

        blocks = [t for t in task_nodes(cluster) if t[0].endswith("run_block")]
        assert len(blocks) >= 6, blocks
        assert all(state == "FINISHED" for _, _, state in blocks), blocks
        assert len({node for _, node, _ in blocks}) == 2, blocks

        # docs/cluster.md, token authentication: without RAY_AUTH_MODE=token no token is sent.
        no_mode = {k: v for k, v in cluster.env.items() if k != "RAY_AUTH_MODE"}
        refused = _farm("jobs", "--address", cluster.dashboard_url, env=no_mode, timeout=60)
        assert refused.returncode == 2 and "Authentication required" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        jobs = _farm("jobs", "--address", cluster.dashboard_url, env=cluster.env, timeout=60)
        assert jobs.returncode == 0 and job_id in jobs.stdout and "SUCCEEDED" in jobs.stdout
        logs = _farm("logs", job_id, "--address", cluster.dashboard_url, env=cluster.env,
                     timeout=60)
        assert logs.returncode == 0 and "nodes  : 2" in logs.stdout
    finally:
        cluster.stop()
    assert not cluster.processes(), "cluster processes survived teardown"

    # No credential of the cluster's environment (its auth token) reached the cube.
    attrs = json.dumps(dict(zarr.open_group(str(url), mode="r").attrs), default=str)
    assert cluster.env["RAY_AUTH_TOKEN"] not in attrs

    local_env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    local = tmp_path / "local.zarr"
    overrides = [a for a in readme[2:] if not a.startswith("-") and "=" in a
                 and not a.startswith("store.url=")]
    proc = subprocess.run([sys.executable, "-m", "farm.cli", "run", "--no-progress",
                           *overrides, f"store.url={local}", "runtime.workers=2"],
                          cwd=REPO, env=local_env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    a, b = cube_arrays(url), cube_arrays(local)
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert np.isin(a["status"], (1, 3)).all()  # done (3: done, flagged)
