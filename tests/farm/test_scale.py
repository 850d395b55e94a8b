"""The driver at a million cells (the performance issue): every cell is validated once per
run, the status array is read once before the blocks, and the run loop refreshes the
store lock on a timer, not after every block (real Ray, real stores on disk)."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
from _faults import rewrite_lock_at

from conftest import FARM_SMALL, farm_cfg
from farm.plan.convert import make_plan
from farm.plan.validation import VALIDATE_CHUNK
from farm.run import sweep as sweepmod
from farm.run.sweep import run_sweep
from farm.store import lock as lockmod
from farm.store.cube import Cube
from farm.store.lock import StoreLock, StoreLockedError, lock_url


def _count_validated(monkeypatch) -> dict[str, int]:
    """Count calls of kernels.params.validate_params in this process on stacked cells and
    the cells they check, and those on the model alone (one scalar cell, checked before
    the design); the driver's count: workers run the kernel with validate=False."""
    import kernels.params as kparams

    seen = {"calls": 0, "cells": 0, "model": 0}
    real = kparams.validate_params

    def counted(p):
        if np.ndim(p.leverage) == 0:
            seen["model"] += 1
        else:
            seen["calls"] += 1
            seen["cells"] += int(np.size(p.leverage))
        return real(p)

    monkeypatch.setattr(kparams, "validate_params", counted)
    return seen


def test_a_dry_run_validates_each_cell_once_in_chunks(monkeypatch, tmp_path, capsys):
    from farm.cli import main

    seen = _count_validated(monkeypatch)
    grid = {"leverage": np.linspace(0.5, 1.5, 50), "correlation": np.linspace(-0.5, 0.9, 40),
            "integration": np.linspace(0, 1, 25)}
    axes = [f"sweep.axes.{k}=[{','.join(f'{x:.6g}' for x in v)}]" for k, v in grid.items()]
    assert main(["run", "--dry-run", *axes, "~sweep.axes.fed_put",
                 f"store.url={tmp_path / 'dry.zarr'}"]) == 0
    assert "50000" in capsys.readouterr().out.replace(",", "")
    assert seen == {"calls": math.ceil(50_000 / VALIDATE_CHUNK), "cells": 50_000, "model": 1}
    assert not (tmp_path / "dry.zarr").exists()


@pytest.mark.usefixtures("ray_local")
def test_a_run_validates_each_cell_once_and_reads_the_status_once(monkeypatch, tmp_path):
    """24 cells: validated once (by the plan, not again by the run); the status array read
    once before the blocks (and once more by the final record, after them)."""
    from farm.cli import main

    seen = _count_validated(monkeypatch)
    reads: list[str] = []
    real = Cube.cell_status

    def counted(self):
        reads.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(Cube, "cell_status", counted)
    assert main(["run", "--no-progress", *FARM_SMALL, f"store.url={tmp_path / 'c.zarr'}"]) == 0
    assert seen == {"calls": 1, "cells": 24, "model": 1}
    assert len(reads) == 2, reads  # the start, and finalize's record of the finished run


@pytest.mark.usefixtures("ray_local")
def test_the_run_loop_refreshes_the_lock_on_a_timer_not_per_block(monkeypatch, tmp_path):
    """6 blocks, one at a time, with the heartbeat and the run loop's timer far away: the
    run loop refreshes the lock once (before finalizing), not after each of the 6 blocks."""
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 3600.0)
    monkeypatch.setattr(sweepmod, "LOCK_REFRESH_S", 3600.0)
    refreshes: list[str] = []
    real = StoreLock.refresh

    def counted(self):
        refreshes.append(threading.current_thread().name)
        return real(self)

    monkeypatch.setattr(StoreLock, "refresh", counted)
    cfg = farm_cfg(tmp_path, "runtime.workers=1", "runtime.max_in_flight=1", name="t")
    report = run_sweep(make_plan(cfg))
    assert report.ok and report.done_now == 6
    assert len(refreshes) == 1, refreshes


@pytest.mark.usefixtures("ray_local")
def test_the_run_loops_timer_stops_a_run_whose_lock_was_taken_while_a_block_stalls(
        monkeypatch, tmp_path):
    """No heartbeat to speak of (an hour) and block 1 stalling 60 s after the lock was
    taken: the run loop's own timed refresh stops the run within seconds."""
    monkeypatch.setattr(lockmod, "HEARTBEAT_S", 3600.0)
    monkeypatch.setattr(sweepmod, "LOCK_REFRESH_S", 0.5)
    url = tmp_path / "stall.zarr"
    cfg = farm_cfg(tmp_path, "runtime.workers=1", "runtime.max_in_flight=1", name="stall")
    t0 = time.monotonic()
    with pytest.raises(StoreLockedError, match="another writer took the store"):
        run_sweep(make_plan(cfg), runner=rewrite_lock_at(1, lock_url(url), stall_s=60))
    took = time.monotonic() - t0
    assert took < 40, f"the lost lock was noticed after {took:.0f} s"
