"""Adaptive sweeps end to end (farm.adaptive): real Ray, real Zarr, the real kernel.

A small two-axis sweep (leverage x integration, 16 paths x 96 steps, blocks of 4 cells)
runs four waves (``stop_flips=0``: the frontier criterion never stops it first) on
``p_btc_crash`` (a smooth probability: many points straddle 0.5) and adds paths at points
whose Wilson interval straddles 0.5, so both kinds of cells occur.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
import zarr
from _faults import farm_process, kill_when

from farm.adaptive.engine import run_adaptive
from farm.plan.compose import compose_config
from farm.plan.convert import make_plan
from farm.store.cube import open_existing
from farm.store.grow import cell_lengths

REPO = Path(__file__).resolve().parents[2]
SMALL = ["sweep=adaptive", "~sweep.axes.correlation", "~sweep.axes.fed_put",
         "~sweep.axes.depth_btc", "~sweep.axes.kappa", "sweep.paths=16",
         "sweep.adaptive.initial_cells=32", "sweep.adaptive.wave_cells=16",
         "sweep.adaptive.block_cells=4", "sweep.adaptive.max_waves=4",
         "sweep.adaptive.max_paths=48", "sweep.adaptive.stop_flips=0",
         "sweep.adaptive.var=p_btc_crash", "runtime.workers=2"]


def _plan(url: Path, *extra: str):
    return make_plan(compose_config([*SMALL, f"store.url={url}", *extra]))


@pytest.fixture(scope="module")
def adaptive_cube(tmp_path_factory, ray_local):
    url = tmp_path_factory.mktemp("adaptive") / "a.zarr"
    report = run_adaptive(_plan(url))
    assert report.ok, report
    return url, report


def _arrays(url: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(url), mode="r")
    return {name: np.asarray(a[...]) for name, a in g.arrays()}


def _state(url: Path) -> dict:
    state = json.loads(zarr.open_group(str(url), mode="r").attrs["adaptive"])
    for w in state["waves"]:
        w.pop("seconds")
    return state


def test_waves_append_whole_blocks_with_one_replicate_each(adaptive_cube):
    url, report = adaptive_cube
    assert [w.k for w in report.waves] == [1, 2, 3, 4]
    assert report.stopped == "max_waves=4 reached"
    a = _arrays(url)
    n = len(a["cell"])
    assert n == 32 + 3 * 16 == report.n_cells
    assert a["status"].tolist() == [1] * n  # every cell done
    assert np.bincount(a["wave"]).tolist() == [0, 32, 16, 16, 16]
    blocks = a["replicate"].reshape(-1, 4)  # chunks of 4 cells: one replicate per block
    assert np.all(blocks == blocks[:, :1])
    assert a["replicate"].max() >= 1, "no wave added paths: the test lost its purpose"
    # a replicate sits exactly on an earlier point (same parameters) and its paths are
    # another stream (kernels.keys.replicate_seed), not the same numbers again
    table = np.column_stack([a["leverage"], a["integration"]])
    for i in np.flatnonzero(a["replicate"] > 0):
        twins = np.flatnonzero(np.all(table == table[i], axis=1) & (a["replicate"] == 0))
        assert len(twins) == 1
        assert not np.array_equal(a["drawdown_btc"][i], a["drawdown_btc"][twins[0]])
    state = _state(url)
    assert [w["stop"] for w in state["waves"]] == [32, 48, 64, 80]
    assert all(w["done"] for w in state["waves"]) and state["stopped"] == report.stopped
    assert "reference points" in state["criterion"]
    assert sum(w["new_points"] + w["more_paths"] for w in state["waves"]) == n
    from farm.store.status import store_summary

    text = store_summary(str(url))
    assert f"waves:     4 of p_btc_crash = 0.5: {n} cells at" in text
    assert "stopped:   max_waves=4 reached" in text


def test_a_rerun_of_a_finished_sweep_computes_nothing(adaptive_cube):
    url, _ = adaptive_cube
    before = _arrays(url)
    report = run_adaptive(_plan(url))
    assert report.runs == [] and report.stopped == "max_waves=4 reached"
    after = _arrays(url)
    for k in before:
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


@pytest.mark.slow
def test_a_larger_budget_continues_the_same_waves(adaptive_cube, tmp_path):
    import shutil

    url, _ = adaptive_cube
    copy = tmp_path / "more.zarr"
    shutil.copytree(url, copy)
    report = run_adaptive(_plan(copy, "sweep.adaptive.max_waves=5"))
    assert [w.k for w in report.waves] == [1, 2, 3, 4, 5] and len(report.runs) == 1
    a, b = _arrays(url), _arrays(copy)
    for k in ("leverage", "integration", "p_systemic", "drawdown_btc"):
        np.testing.assert_array_equal(a[k], b[k][: len(a[k])], err_msg=k)
    # a run killed while appending wave 5 (some arrays resized, others not, the metadata
    # not consolidated, the wave not recorded), then rerun with the old budget (it stops
    # at once) or the larger one: the cut-short append is undone first, so the first
    # rerun leaves the cube as it was and the second ends as the straight run did
    cut = tmp_path / "cut.zarr"
    shutil.copytree(url, cut)
    g = zarr.open_group(str(cut), mode="r+", use_consolidated=False)
    for name in ("status", "leverage", "p_systemic"):
        g[name].resize((len(a["cell"]) + 8, *g[name].shape[1:]))
    assert run_adaptive(_plan(cut)).runs == []
    assert cell_lengths(open_existing(str(cut))) == {len(a["cell"])}
    own = zarr.open_group(str(cut), mode="r", use_consolidated=False)
    for k in a:
        np.testing.assert_array_equal(a[k], np.asarray(own[k][...]), err_msg=k)
    for name in ("status", "leverage", "p_systemic"):
        g[name].resize((len(a["cell"]) + 8, *g[name].shape[1:]))
    report = run_adaptive(_plan(cut, "sweep.adaptive.max_waves=5"))
    assert [w.k for w in report.waves] == [1, 2, 3, 4, 5]
    c = _arrays(cut)
    assert set(c) == set(b)
    for k in b:
        np.testing.assert_array_equal(b[k], c[k], err_msg=k)
    assert _state(cut) == _state(copy)


def test_the_analysis_reads_an_adaptive_cube_with_the_surrogate(adaptive_cube):
    import analysis
    from analysis.intervals import critical_leverage_band

    url, _ = adaptive_cube
    ds = analysis.open_cube(str(url))
    cl = analysis.critical_leverage(ds, 0.5, "p_btc_crash")  # default on an adaptive cube: gp
    assert cl.dims == ("integration",) and np.isfinite(cl.values).any()
    early, late = critical_leverage_band(ds, 0.5, "p_btc_crash")
    ok = np.isfinite(early.values) & np.isfinite(late.values) & np.isfinite(cl.values)
    assert ok.any()
    assert np.all(early.values[ok] <= cl.values[ok] + 1e-9)
    assert np.all(cl.values[ok] <= late.values[ok] + 1e-9)


@pytest.mark.slow
def test_killed_mid_wave_then_rerun_ends_with_the_uninterrupted_cube(adaptive_cube, tmp_path):
    url_ref, _ = adaptive_cube
    url = tmp_path / "killed.zarr"
    args = ["run", "--no-progress", *SMALL, f"store.url={url}", "runtime.workers=1"]
    proc = farm_process(*args, cwd=REPO)

    def mid_wave():  # inside a later wave: its cells appended, some not done yet
        g = zarr.open_group(str(url), mode="r")
        wave, status = np.asarray(g["wave"][...]), np.asarray(g["status"][...])
        return wave.max() >= 2 and np.sum(status == 0) > 0

    seen = kill_when(proc, mid_wave, poll=0.01)
    assert proc.returncode == -signal.SIGKILL and seen is not None, proc.stderr.read()[-2000:]
    report = run_adaptive(_plan(url))
    assert report.ok and report.stopped == "max_waves=4 reached"
    ref, got = _arrays(url_ref), _arrays(url)
    assert set(ref) == set(got)
    for k in ref:
        np.testing.assert_array_equal(ref[k], got[k], err_msg=k)
    assert _state(url) == _state(url_ref)
    assert open_existing(str(url)).attrs["complete"] is True


def test_the_report_and_the_explorer_show_where_the_cells_went(adaptive_cube, tmp_path):
    import analysis
    from analysis.explorer import explorer_data
    from analysis.report_adaptive import distance_to_frontier

    url, report = adaptive_cube
    ds = analysis.open_cube(str(url))
    page = analysis.build_report(ds, tmp_path / "r.html", var="p_btc_crash",
                                 channels=False).read_text()
    assert "Adaptive sweep: where the cells went" in page
    assert "the cells by wave, with the frontier and its band" in page  # the figure
    assert "surrogate of p_btc_crash, Monte Carlo and surrogate error" in page  # its band
    assert f"{report.n_cells} cells at" in page and "Stopped: max_waves=4 reached" in page
    d = distance_to_frontier(ds, "p_btc_crash", 0.5)
    wave = np.asarray(ds["wave"].values)
    assert np.nanmean(d[wave > 1]) < np.nanmean(d[wave == 1])  # later waves hug the frontier
    data = explorer_data(ds)
    assert data["wave"] == wave.tolist() and len(data["replicate"]) == len(wave)


def test_an_adaptive_run_on_a_store_made_with_other_settings_is_refused(adaptive_cube, capsys):
    from conftest import run_cli

    url, _ = adaptive_cube
    before = _arrays(url)
    code, out, err = run_cli(capsys, "run", "--no-progress", *SMALL, f"store.url={url}",
                             "sweep.adaptive.level=0.4")
    assert code == 2, (out, err)
    assert "sweep.adaptive" in err and "Traceback" not in err, err
    after = _arrays(url)
    for k in before:  # nothing computed is lost, nothing changed
        np.testing.assert_array_equal(before[k], after[k], err_msg=k)


@pytest.mark.slow
def test_a_cell_with_nan_outputs_is_left_out_and_the_waves_go_on(ray_local, tmp_path):
    from _faults import nan_cells

    url = tmp_path / "nan.zarr"
    report = run_adaptive(_plan(url, "sweep.adaptive.max_waves=3"), runner=nan_cells([40]))
    assert [w.k for w in report.waves] == [1, 2, 3] and report.stopped  # it went on
    assert not report.ok  # and says so: exit status 1
    a = _arrays(url)
    assert a["status"][40] == 2 and np.isnan(a["p_btc_crash"][40])
    assert report.waves[1].failed_cells == 1  # wave 2 holds cells 32-47
    from farm.adaptive.texts import adaptive_summary_text

    text = adaptive_summary_text(report, _plan(url))
    assert "FAILED: 1 cell(s) with NaN or inf outputs (40)" in text
