"""Corruption is detected and nothing computed becomes unreachable.

From the reliability contract: every chunk carries a CRC-32C checksum; ``verify_cube``
reads every chunk and names each unreadable, missing or non-finite one with its block;
``repair_cube`` sends exactly those blocks back to pending and rebuilds a lost or
unreadable ``status`` from the data (a cell whose outputs are all finite is done, or
flagged when its mean ``capped_steps`` exceeds ``capped_limit``; any other cell pending).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from _cube_helpers import cube_attrs, fake_result, grid_design

from farm.store.cube import DamagedCubeError, create_cube, open_existing
from farm.store.repair import check_and_repair, repair_cube
from farm.store.verify import verify_cube
from kernels.cubeformat import STATUS_DONE, STATUS_FAILED, STATUS_FLAGGED, STATUS_PENDING
from kernels.outputs import STAT_INDEX, STATS

LIMIT = 0.001  # capped_limit's default (the attrs' config does not set it)
FLAGGED_CELL, FAILED_CELL = 1, 4  # flat cell indices, both in block 0 (cells 0..5)


def _write(cube, design, skip_blocks=()) -> np.ndarray:
    """Write every block but ``skip_blocks`` as a run would: finite numbers, one cell
    flagged (mean capped_steps 0.5), one failed (NaN). Returns the expected status."""
    expected = np.full(design.n_cells, STATUS_PENDING, dtype=np.int8)
    for block in design.blocks():
        if block.index in skip_blocks:
            continue
        stats, probs, paths = fake_result(block)
        stats["capped_steps"][:, STAT_INDEX["mean"]] = 0.0
        status = np.full(len(block.cells), STATUS_DONE, dtype=np.int8)
        for row, cell in enumerate(block.cells):
            if cell == FLAGGED_CELL:
                stats["capped_steps"][row, STAT_INDEX["mean"]] = 0.5
                status[row] = STATUS_FLAGGED
            if cell == FAILED_CELL:
                stats["drawdown_btc"][row, :] = np.nan
                status[row] = STATUS_FAILED
        cube.write_block(block, stats, probs, paths, status=status)
        expected[block.cells] = status
    return expected.reshape(design.shape)


@pytest.fixture
def written(tmp_path: Path):
    design = grid_design()  # 5 x 3 cells, chunks (2, 3): blocks 0, 1, 2 (the last short)
    cube = create_cube(tmp_path / "c.zarr", design, cube_attrs(design))
    expected = _write(cube, design)
    return cube, design, expected


def _chunk(cube, name: str, block: int, extra: int = 0) -> Path:
    """The file of ``name``'s chunk of grid block ``block`` (grid_design: blocks along
    leverage); ``extra`` trailing chunk indices (``stat``)."""
    return Path(cube.url, name, "c", str(block), "0", *(["0"] * extra))


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at % len(data)] ^= 0x55
    path.write_bytes(bytes(data))


def test_every_array_stores_its_chunks_with_a_crc32c_checksum(written):
    cube, _, _ = written
    group = zarr.open_group(cube.url, mode="r")
    for name, arr in group.arrays():
        if name in cube.cell_dims or name == "stat":
            continue  # coordinates, written by xarray
        codecs = [c.to_dict()["name"] for c in arr.metadata.codecs]
        assert codecs[-1] == "crc32c", (name, codecs)
    assert cube.attrs["chunk_checksum"] == "crc32c"


def test_a_clean_cube_verifies(written):
    cube, _, expected = written
    v = verify_cube(cube)
    assert v.ok and v.problems == [] and not v.status_missing
    np.testing.assert_array_equal(v.cell_status, expected)


@pytest.mark.parametrize("at", [0, 7, 13, 29, 31, 47, 64, -9, -5, -1])
def test_any_flipped_byte_of_a_data_chunk_is_named_with_its_block(written, at):
    """A changed byte anywhere in a chunk (header, payload, checksum) is caught; without
    the checksum, a flip inside Zstandard's raw payload decodes to other numbers."""
    cube, _, _ = written
    _flip(_chunk(cube, "p_systemic", 1), at)
    v = verify_cube(cube)
    assert [(p.array, p.key, p.block, p.kind) for p in v.problems] == [
        ("p_systemic", "p_systemic/c/1/0", 1, "unreadable")]
    assert "p_systemic/c/1/0 (block 1) unreadable" in v.summary()


def test_a_deleted_data_chunk_is_named_missing(written):
    cube, _, _ = written
    _chunk(cube, "drawdown_eq", 2, extra=1).unlink()
    v = verify_cube(cube)
    assert [(p.key, p.block, p.kind) for p in v.problems] == [
        ("drawdown_eq/c/2/0/0", 2, "missing")]


def test_repair_sends_exactly_the_bad_blocks_back_to_pending(written):
    cube, _, expected = written
    _flip(_chunk(cube, "p_systemic", 1), 40)
    _chunk(cube, "drawdown_eq", 2, extra=1).unlink()
    _, result = check_and_repair(cube)
    assert result.blocks_reset == [1, 2]
    want = expected.copy()
    want[2:] = STATUS_PENDING  # blocks 1 and 2: leverage rows 2..4
    np.testing.assert_array_equal(cube.cell_status(), want)
    assert cube.block_status().tolist() == [STATUS_FAILED, STATUS_PENDING, STATUS_PENDING]


def test_a_corrupt_status_chunk_is_named_then_rebuilt_from_the_data(written):
    cube, _, expected = written
    _flip(_chunk(cube, "status", 0), 20)
    with pytest.raises(DamagedCubeError, match="farm repair"):
        cube.cell_status()
    v = verify_cube(cube)
    assert [(p.key, p.block, p.kind) for p in v.problems] == [("status/c/0/0", 0, "unreadable")]
    result = repair_cube(cube, v)
    assert result.blocks_reset == [] and result.cells_rebuilt == 6
    # done and flagged come back; the failed cell (NaN outputs) is pending, to be redone
    want = np.where(expected == STATUS_FAILED, STATUS_PENDING, expected)
    np.testing.assert_array_equal(cube.cell_status(), want)


def test_a_deleted_status_array_is_rebuilt_from_the_data(written):
    """Nothing computed is unreachable: every done cell is done again; a failed cell
    (NaN outputs) comes back pending, so the next run recomputes it."""
    cube, _, expected = written
    shutil.rmtree(Path(cube.url, "status"))
    cube = open_existing(cube.url)
    with pytest.raises(DamagedCubeError, match="missing"):
        cube.cell_status()
    v, result = check_and_repair(cube)
    assert v.status_missing and result.status_recreated
    want = np.where(expected == STATUS_FAILED, STATUS_PENDING, expected)
    np.testing.assert_array_equal(cube.cell_status(), want)
    assert verify_cube(cube).ok


def test_pending_cells_with_no_data_are_not_problems(tmp_path):
    design = grid_design()
    cube = create_cube(tmp_path / "p.zarr", design, cube_attrs(design))
    _write(cube, design, skip_blocks={1})
    v = verify_cube(cube)
    assert v.problems == []


def test_an_unreadable_coordinate_is_named_and_rewritten_from_the_design(written):
    cube, design, expected = written
    for name in ("leverage", "stat"):
        _flip(Path(cube.url, name, "c", "0"), 11)
    v = verify_cube(cube)
    assert v.bad_coords == ["leverage", "stat"] and v.bad_blocks == []
    assert "leverage (coordinate) unreadable" in v.summary()
    _, result = check_and_repair(cube, design)
    assert result.blocks_reset == []  # no block is recomputed for a coordinate
    assert verify_cube(cube).ok
    ds = cube.dataset()
    np.testing.assert_array_equal(ds["leverage"].values, design.coords["leverage"])
    assert list(ds["stat"].values) == list(STATS)
    np.testing.assert_array_equal(cube.cell_status(), expected)
