"""Real local runs with cells that fail (NaN outputs) or are flagged (max_rounds hit).

NaN never becomes a number: a cell whose outputs are not finite is failed (status 2)
with a message naming it, the block's other cells are written and done, the run exits
1, and a rerun redoes the block. A cell whose cascade hit ``max_rounds`` on more than
``capped_limit`` of its path-steps is flagged (status 3): done everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest
from _faults import nan_cells

import analysis
from conftest import farm_cfg
from farm.cli import main
from farm.plan.convert import make_plan
from farm.run.sweep import run_sweep
from farm.run.texts import summary_text
from farm.store.cube import open_existing

pytestmark = pytest.mark.usefixtures("ray_local")
DONE = (1, 3)



def test_nan_cells_fail_the_rest_of_the_block_is_done_and_a_rerun_redoes_them(
        tmp_path, capsys):
    """Cells 5 and 6 (block 1 of 4 cells) get NaN outputs in the worker, as the kernel
    returns them for a cell with a NaN anywhere (validated parameters are meant to give
    finite outputs, so the fault is injected by the test's block runner)."""
    url = tmp_path / "nan.zarr"
    plan = make_plan(farm_cfg(tmp_path, name="nan"))
    report = run_sweep(plan, runner=nan_cells([5, 6]))
    assert not report.ok
    out = summary_text(report, plan)
    assert "FAILED : blocks 1" in out and "FAILED : cells 5, 6 (NaN or inf outputs)" in out
    where = "cell 5 (leverage=0, correlation=0.8, fed_put=0, integration=1)"
    assert f"{where}: non-finite outputs drawdown_btc[mean]=nan" in out
    cube = open_existing(str(url))
    status = cube.cell_status().ravel()
    # done cells are 1, or 3 where the cascade hit max_rounds too often (flagged)
    assert list(status[[5, 6]]) == [2, 2] and np.isin(np.delete(status, [5, 6]), DONE).all()
    assert list(cube.block_status()) == [1, 2, 1, 1, 1, 1]
    assert "2 of 4 cells failed" in cube.failed_blocks()[1]
    assert cube.attrs["cells_failed"] == 2 and cube.attrs["complete"] is False
    ds = cube.dataset()  # the block's other cells are written
    p = ds["p_systemic"].values.ravel()
    assert np.isfinite(np.delete(p, [5, 6])).all() and np.isnan(p[[5, 6]]).all()

    assert main(["status", str(url)]) == 0
    text = capsys.readouterr().out
    assert "cells done 22/24 (" in text and "flagged), 2 failed" in text
    assert "failed block 1: 2 of 4 cells failed" in text and where in text
    assert main(["report", str(url), "--allow-incomplete", "--no-fan", "--no-channels",
                 "-o", str(tmp_path / "r.html")]) == 0
    assert "failed: 2 cells (left out; blocks 1)" in capsys.readouterr().out
    assert where in (tmp_path / "r.html").read_text()
    opened = analysis.open_cube(str(url), allow_incomplete=True)
    assert np.isnan(opened["p_systemic"].values.ravel()[[5, 6]]).all()

    again = run_sweep(make_plan(farm_cfg(tmp_path, name="nan")),
                      runner=nan_cells([5, 6]))  # redoes block 1
    assert again.done_before == 5 and set(again.failed) == {1}
    assert sorted(again.failed_cells) == [5, 6]
    fixed = run_sweep(make_plan(farm_cfg(tmp_path, name="nan")))
    assert fixed.ok and fixed.done_before == 5 and fixed.done_now == 1
    cube = open_existing(str(url))
    assert np.isin(cube.cell_status(), DONE).all() and cube.failed_blocks() == {}
    assert cube.attrs["complete"] is True and cube.attrs["cells_failed"] == 0
    assert np.isfinite(cube.dataset()["p_systemic"].values).all()


def test_capped_cells_are_flagged_done_and_not_redone(tmp_path, capsys):
    capped = ("model.max_rounds=1", "model.capped_limit=0.001")
    report = run_sweep(make_plan(farm_cfg(tmp_path, *capped, name="capped")))
    assert report.ok and report.done_now == 6 and report.cells_flagged > 0
    cube = open_existing(str(tmp_path / "capped.zarr"))
    status = cube.cell_status()
    assert set(np.unique(status)) <= {1, 3} and int((status == 3).sum()) == report.cells_flagged
    assert cube.attrs["complete"] is True and cube.attrs["cells_flagged"] == report.cells_flagged
    ds = cube.dataset()
    capped_share = ds["capped_steps"].sel(stat="mean").values
    np.testing.assert_array_equal(status == 3, capped_share > 0.001)

    again = run_sweep(make_plan(farm_cfg(tmp_path, *capped, name="capped")))
    assert again.done_now == 0 and again.done_before == 6 and again.ok  # done: not redone

    n = report.cells_flagged
    assert main(["status", str(tmp_path / "capped.zarr")]) == 0
    text = capsys.readouterr().out
    assert f"cells done 24/24 ({n} flagged), 0 failed" in text and "max_rounds" in text
    opened = analysis.open_cube(str(tmp_path / "capped.zarr"))  # complete: no error
    info = analysis.cube_info(opened)
    assert info.complete and info.n_flagged == n
    assert main(["report", str(tmp_path / "capped.zarr"), "--no-fan", "--no-channels",
                 "-o", str(tmp_path / "c.html")]) == 0
    assert f"flagged: {n} of 24 cells are done but flagged" in capsys.readouterr().out
    assert f"{n} cells are flagged (status 3)" in (tmp_path / "c.html").read_text()
