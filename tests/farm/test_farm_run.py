"""The farm end to end on a real local Ray and real Zarr stores: identity, resume, faults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _faults import crash_once, failing_blocks, farm_process, kill_when_blocks_done

from conftest import FARM_SMALL, assert_identical, cube_arrays, farm_cfg
from farm.plan.convert import make_plan, sweep_spec
from farm.plan.design import cell_params, make_design
from farm.run.sweep import run_sweep
from farm.store.cube import open_existing
from kernels import simulate_block

pytestmark = pytest.mark.usefixtures("ray_local")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def reference_cube(tmp_path_factory):
    """The small sweep run once, uninterrupted, with 2 workers and blocks of 4 cells."""
    tmp = tmp_path_factory.mktemp("ref")
    cfg = farm_cfg(tmp, "runtime.workers=2", name="ref")
    report = run_sweep(make_plan(cfg))
    assert report.ok and report.done_now == report.n_blocks == 6
    return tmp / "ref.zarr", cube_arrays(tmp / "ref.zarr")


def test_cube_is_complete_and_named(reference_cube):
    import analysis

    url, arrays = reference_cube
    ds = analysis.open_cube(str(url))
    assert tuple(ds["drawdown_btc"].dims) == ("leverage", "correlation", "fed_put",
                                               "integration", "stat")
    assert np.isin(arrays["status"], (1, 3)).all()  # done (3: done, flagged)
    assert np.all(np.isfinite(arrays["drawdown_btc"]))
    assert ds.attrs["jax_prng_impl"] == "threefry2x32"  # reported by the workers


def test_identical_for_one_worker_and_other_block_size(tmp_path, reference_cube):
    _, ref = reference_cube
    run_sweep(make_plan(farm_cfg(tmp_path, "runtime.workers=1", name="w1")))
    assert_identical(cube_arrays(tmp_path / "w1.zarr"), ref)
    run_sweep(make_plan(farm_cfg(tmp_path, "runtime.block_cells=8", name="b8")))
    assert open_existing(str(tmp_path / "b8.zarr")).n_blocks == 3
    assert_identical(cube_arrays(tmp_path / "b8.zarr"), ref)


def test_each_cell_equals_the_kernel_called_directly(reference_cube):
    url, ref = reference_cube
    cfg = farm_cfg(url.parent, name="ref")
    design = make_design(sweep_spec(cfg))
    cells = np.array([0, 7, 23])
    res = simulate_block(cell_params(cfg.model, design, cells), key=jax.random.key(cfg.seed),
                         n_paths=32, n_steps=24)
    for j, c in enumerate(cells):
        idx = np.unravel_index(c, design.shape)
        for var, v in res.stats.items():
            np.testing.assert_array_equal(ref[var][idx], v[j], err_msg=var)


def test_rerun_of_a_finished_sweep_does_no_work(reference_cube):
    url, ref = reference_cube
    report = run_sweep(make_plan(farm_cfg(url.parent, name="ref")))
    assert report.done_now == 0 and report.done_before == 6
    assert_identical(cube_arrays(url), ref)


def test_failed_block_is_recorded_and_a_rerun_completes_only_it(tmp_path, reference_cube):
    _, ref = reference_cube
    cfg = farm_cfg(tmp_path, "runtime.retries=1", name="fail")
    report = run_sweep(make_plan(cfg), runner=failing_blocks([2]))
    assert set(report.failed) == {2} and "injected fault" in report.failed[2]
    assert report.done_now == 5
    cube = open_existing(str(tmp_path / "fail.zarr"))
    assert list(cube.block_status()) == [1, 1, 2, 1, 1, 1]
    assert "injected fault" in cube.failed_blocks()[2]
    again = run_sweep(make_plan(cfg))
    assert again.ok and again.done_now == 1 and again.done_before == 5
    assert_identical(cube_arrays(tmp_path / "fail.zarr"), ref)


def test_worker_killed_during_a_task_is_retried(tmp_path, reference_cube):
    _, ref = reference_cube
    marker = tmp_path / "crashed"
    report = run_sweep(make_plan(farm_cfg(tmp_path, name="crash")),
                       runner=crash_once(3, str(marker)))
    assert marker.exists(), "the fault was not injected"
    assert report.ok and report.done_now == 6
    assert_identical(cube_arrays(tmp_path / "crash.zarr"), ref)


def _farm(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "farm.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env={**os.environ, **(env or {})})


@pytest.mark.slow
def test_driver_killed_then_rerun_finishes_only_missing_blocks(tmp_path, reference_cube):
    _, ref = reference_cube
    url = tmp_path / "killed.zarr"
    args = ["run", "--no-progress", *FARM_SMALL, f"store.url={url}", "runtime.workers=1"]
    proc = farm_process(*args, cwd=REPO)
    kill_when_blocks_done(proc, lambda: open_existing(str(url), read_only=True).block_status(),
                          2)
    assert proc.returncode == -9, proc.stderr.read()[-2000:]  # SIGKILL
    done = open_existing(str(url)).block_status()
    assert 2 <= int(np.sum(done == 1)) < 6, done
    # a block in flight when the driver died may still land (its worker finishes it
    # before Ray notices the driver is gone): count what the rerun found done
    report = run_sweep(make_plan(farm_cfg(tmp_path, name="killed")))
    assert report.done_before >= int(np.sum(done == 1)) and report.ok
    assert report.done_now == 6 - report.done_before >= 1
    assert_identical(cube_arrays(url), ref)


def test_resimulated_fan_chart_paths_reproduce_the_stored_statistics(reference_cube):
    import analysis

    url, ref = reference_cube
    ds = analysis.open_cube(str(url))
    res, spec = analysis.resimulate(ds, {"leverage": 2.0, "correlation": 0.8,
                                         "fed_put": 0.0, "integration": 1.0})
    idx = np.unravel_index(spec.cell_index, ds["status"].shape)
    for var, v in res.stats.items():
        np.testing.assert_array_equal(ref[var][idx], v[0], err_msg=var)
    assert res.prices.shape == (1, 24, 32, 3)
    # the paths behind the statistics: the btc drawdown of each path from its prices
    x = res.prices[0, :, :, 0]
    peak = np.maximum.accumulate(np.maximum(x, 0.0), axis=0)
    dd = np.max(1.0 - np.exp(x - peak), axis=0)
    np.testing.assert_allclose(dd, res.paths["drawdown_btc"][0], rtol=1e-5, atol=1e-6)


def test_farm_report_writes_html_with_non_empty_images(reference_cube, tmp_path, capsys):
    import base64
    import re

    from farm.cli import main

    url, _ = reference_cube
    out = tmp_path / "report.html"
    assert main(["report", str(url), "-o", str(out)]) == 0
    assert "frontier" in capsys.readouterr().out
    html = out.read_text()
    images = re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", html)
    assert len(images) >= 3
    for b64 in images:
        png = base64.b64decode(b64)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
    assert "sample paths" in html



def test_workers_run_xla_on_one_thread_and_import_jax_at_start(ray_local):
    def probe() -> dict:
        """In a Ray worker: XLA's CPU pool threads after a jitted call, and whether JAX
        was imported before this task (by the worker's setup hook)."""
        import os
        import sys

        warm = "jax" in sys.modules
        import jax
        import jax.numpy as jnp

        jax.jit(lambda x: jnp.sin(x).sum())(jnp.ones(1 << 16)).block_until_ready()
        names = [open(f"/proc/self/task/{t}/comm").read().strip()
                 for t in os.listdir("/proc/self/task")]
        return {"warm": warm, "xla_pool": sum(n.startswith("tf_XLAEigen") for n in names)}

    info = ray_local.get(ray_local.remote(probe).remote())
    assert info["warm"], "the worker setup hook did not import JAX"
    assert info["xla_pool"] <= 1, f"XLA CPU pool has {info['xla_pool']} threads (want 1)"
