"""A damaged cube on a real local Ray: a rerun recomputes exactly the bad blocks, a
status array deleted mid-run is rebuilt from the data, and the CLI names bad chunks."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import ray.cloudpickle

from conftest import assert_identical, cube_arrays, farm_cfg
from farm.cli import main
from farm.plan.convert import make_plan
from farm.run.dispatch import compute_block, store_block
from farm.run.sweep import run_sweep
from farm.store.cube import open_existing

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = pytest.mark.usefixtures("ray_local")


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small sweep (6 blocks of 4 cells), run once, uninterrupted."""
    tmp = tmp_path_factory.mktemp("ref")
    report = run_sweep(make_plan(farm_cfg(tmp, name="ref")))
    assert report.ok and report.done_now == 6
    return tmp / "ref.zarr", cube_arrays(tmp / "ref.zarr")


def _copy(reference, tmp_path: Path) -> Path:
    url = tmp_path / "ref.zarr"  # same name: the config (and its hash) must be the same
    shutil.copytree(reference[0], url)
    return url


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x55
    path.write_bytes(bytes(data))


def _chunk_of_block(url: Path, name: str, block: int) -> Path:
    """A chunk file of ``name`` of block ``block`` (block_cells=4 along the last axes)."""
    cube = open_existing(str(url))
    grid = [-(-n // c) for n, c in zip(cube.shape, cube.chunks, strict=True)]
    coords = np.unravel_index(block, grid)
    extra = ["0"] if name not in ("status",) and not name.startswith("p_") else []
    return Path(url, name, "c", *map(str, coords), *extra)


def test_a_rerun_recomputes_exactly_the_bad_blocks(reference, tmp_path, capsys):
    url = _copy(reference, tmp_path)
    _flip(_chunk_of_block(url, "p_systemic", 2))
    _chunk_of_block(url, "drawdown_eq", 4).unlink()
    # farm status --verify names both chunks with their blocks; farm report refuses
    assert main(["status", "--verify", str(url)]) == 1
    out = capsys.readouterr().out
    assert "(block 2) unreadable" in out and "(block 4) missing" in out
    assert main(["report", str(url), "-o", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "p_systemic/c/" in err[0] and "drawdown_eq/c/" in err[0]
    report = run_sweep(make_plan(farm_cfg(tmp_path, name="ref")))
    assert report.ok and report.done_now == 2 and report.done_before == 4
    assert_identical(cube_arrays(url), reference[1])
    assert main(["status", "--verify", str(url)]) == 0


def _deleting_status(block: int, marker: str):
    """A runner that deletes the cube's status array the first time it runs ``block``."""

    def runner(task, cube):
        if task.block.index == block and not os.path.exists(marker):
            open(marker, "w").close()
            os.remove(os.path.join(cube.url, "status", "zarr.json"))
            shutil.rmtree(os.path.join(cube.url, "status"), ignore_errors=True)
        return store_block(task, cube, compute_block(task))

    return runner


def test_a_status_array_deleted_mid_run_is_rebuilt_from_the_data(reference, tmp_path):
    cfg = farm_cfg(tmp_path, name="del")
    report = run_sweep(make_plan(cfg), runner=_deleting_status(3, str(tmp_path / "m")))
    assert report.ok
    cube = open_existing(str(tmp_path / "del.zarr"))
    assert cube.attrs["complete"] in (True, "True")
    assert "repaired" in cube.attrs
    assert_identical(cube_arrays(tmp_path / "del.zarr"), reference[1])
    again = run_sweep(make_plan(cfg))
    assert again.done_now == 0


def test_farm_repair_rebuilds_a_deleted_status(reference, tmp_path, capsys):
    url = _copy(reference, tmp_path)
    shutil.rmtree(url / "status")
    assert main(["status", str(url)]) == 0
    assert "farm repair" in capsys.readouterr().out
    assert main(["repair", str(url)]) == 0
    assert "re-created the missing status array" in capsys.readouterr().out
    assert_identical(cube_arrays(url), reference[1])
