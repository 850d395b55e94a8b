"""Per-cell status: NaN/inf cells fail (2), capped cells are flagged (3) and count as done.

Unit level, without Ray: the worker's per-cell check (:mod:`farm.run.cellcheck`, with NaN and
inf injected into real-shaped results) and the cube's per-cell status writes. The end to
end runs are in tests/farm/test_farm_cells.py.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from _cube_helpers import cube_attrs, fake_result, grid_design

from farm.plan.blocks import Block
from farm.run.cellcheck import block_failure_message, check_cells
from farm.run.dispatch import BlockTask, _check
from farm.store.cube import STATUS_DONE, STATUS_FAILED, STATUS_FLAGGED, create_cube
from farm.store.status import store_summary
from kernels.outputs import PROBABILITIES, STAT_INDEX, STATS
from kernels.params import baseline, repeat_params

MEAN = STAT_INDEX["mean"]


def _results(n: int = 5):
    """Finite results for ``n`` cells with nothing capped, as the kernel returns them."""
    block = Block(0, {"cell": slice(0, n)}, np.arange(n))
    stats, probs, _ = fake_result(block)
    stats["capped_steps"][:] = 0.0
    return stats, probs


def test_check_cells_fails_nan_and_inf_flags_capped_and_names_the_outputs():
    stats, probs = _results()
    stats["drawdown_btc"][1, STAT_INDEX["q99"]] = np.nan  # a statistic
    probs["p_systemic_hi"][2] = np.inf  # a probability bound
    stats["capped_steps"][3, MEAN] = 0.01  # above the default capped_limit 0.001
    stats["capped_steps"][4, MEAN] = 0.0005  # below it
    status, bad = check_cells(stats, probs, 0.001)
    assert list(status) == [STATUS_DONE, STATUS_FAILED, STATUS_FAILED, STATUS_FLAGGED,
                            STATUS_DONE]
    assert bad == {1: ["drawdown_btc[q99]=nan"], 2: ["p_systemic_hi=inf"]}


def test_check_cells_uses_each_cells_capped_limit_and_failure_wins():
    stats, probs = _results(3)
    stats["capped_steps"][:, MEAN] = 0.05
    stats["capped_steps"][2, :] = np.nan  # a NaN capped share: failed, never flagged
    status, bad = check_cells(stats, probs, np.array([0.1, 0.01, 0.0]))
    assert list(status) == [STATUS_DONE, STATUS_FLAGGED, STATUS_FAILED]
    assert bad[2] == [f"capped_steps[{STATS[0]}]=nan"]


def test_the_workers_check_names_the_cell_by_its_coordinates():
    """NaN injected into a block's results: the task's message names the failed cells
    by flat index and swept values, and the outputs that are not finite."""
    n = 4
    params = repeat_params(baseline(), n)._replace(
        leverage=np.array([0.5, 1.0, 1.5, 2.0]), vol_btc=np.array([0.0, 0.55, 0.0, 0.55]))
    block = Block(3, {"cell": slice(12, 16)}, np.arange(12, 16))
    task = BlockTask(block=block, params=params, seed=0, hash_words=None, n_paths=8,
                     n_steps=4, t_dof=4, dtype="float32", store_paths=False,
                     axes=("leverage", "vol_btc"))
    stats, probs = _results(n)
    for name in PROBABILITIES:
        probs[name][[0, 2]] = np.nan
    status, failed = _check(task, stats, probs)
    assert list(status) == [2, 1, 2, 1]
    assert [c for c, _ in failed] == [12, 14]
    assert failed[0][1].startswith("cell 12 (leverage=0.5, vol_btc=0): non-finite outputs "
                                   "p_systemic=nan, p_systemic_lo=nan")
    assert failed[0][1].endswith("and 5 more")
    text = block_failure_message(failed, n)
    assert text.startswith("2 of 4 cells failed (NaN or inf outputs, status 2): cell 12 (")
    assert "; cell 14 (leverage=1.5, vol_btc=0)" in text


def test_per_cell_status_in_the_cube(tmp_path):
    design = grid_design()  # 5 x 3 cells, blocks of 2 x 3
    cube = create_cube(tmp_path / "c.zarr", design, cube_attrs(design))
    meta = xr.open_zarr(cube.url)["status"].attrs
    assert meta["flag_values"] == [0, 1, 2, 3] and "3 done, flagged" in meta["description"]
    blocks = list(design.blocks())
    cube.write_block(blocks[0], *fake_result(blocks[0]), status=[1, 3, 1, 3, 3, 1])
    cube.write_block(blocks[1], *fake_result(blocks[1]), status=[1, 1, 2, 1, 1, 1])
    cube.record_failure(1, "1 of 6 cells failed: cell 8 (leverage=10.5, depth=1): ...")
    cube.write_block(blocks[2], *fake_result(blocks[2]))
    assert list(cube.block_status()) == [1, 2, 1]  # flagged cells are done
    cube.finalize()
    attrs = cube.attrs
    assert attrs["complete"] is False and attrs["cells_flagged"] == 3
    assert attrs["cells_failed"] == 1 and attrs["blocks_failed"] == 1
    text = store_summary(cube.url)
    assert "cells done 14/15 (3 flagged), 1 failed" in text
    assert "3 cells (status 3) are done but their cascade hit max_rounds" in text
    assert "failed block 1: 1 of 6 cells failed: cell 8 (leverage=10.5" in text
    # the rerun redoes block 1; its cells are done now and the stale message goes
    cube.begin_run()
    cube.write_block(blocks[1], *fake_result(blocks[1]))
    cube.finalize()
    assert cube.attrs["complete"] is True and cube.failed_blocks() == {}
    assert cube.attrs["cells_flagged"] == 3 and cube.attrs["cells_failed"] == 0
