"""Fault injection for the farm's tests, kept out of the production code.

The dispatcher runs whatever block runner it is given (``run_sweep(plan, runner=...)``);
these runners wrap :func:`farm.run.dispatch.run_block` to fail, crash or return NaN in
chosen blocks or cells, or to act on the store's lock when a chosen block runs
(:func:`rewrite_lock_at`: another writer takes the store). This module is registered with
cloudpickle to travel by value, so Ray workers run it without importing the tests.
:func:`kill_when_blocks_done` kills a ``farm run`` process with SIGKILL from outside once
some of its blocks are done.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import ray.cloudpickle

from farm.run.dispatch import compute_block, store_block

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def failing_blocks(blocks: Iterable[int]) -> Callable[..., Any]:
    """A runner whose listed blocks raise on every attempt."""
    bad = {int(b) for b in blocks}

    def runner(task, cube):
        if task.block.index in bad:
            raise RuntimeError(f"injected fault: block {task.block.index} fails")
        return store_block(task, cube, compute_block(task))

    return runner


def crash_once(block: int, marker: str) -> Callable[..., Any]:
    """A runner that kills its worker process the first time it runs ``block`` (the marker
    file records that it happened), as a node or an OOM killer would."""

    def runner(task, cube):
        if task.block.index == block and not os.path.exists(marker):
            with open(marker, "w") as fh:
                fh.write(str(os.getpid()))
            os._exit(17)
        return store_block(task, cube, compute_block(task))

    return runner


def nan_cells(cells: Iterable[int]) -> Callable[..., Any]:
    """A runner whose listed cells (flat indices) get NaN statistics and probabilities, as
    the kernel returns them for a cell with a NaN anywhere."""
    listed = [int(c) for c in cells]

    def runner(task, cube):
        res = compute_block(task)
        rows = np.flatnonzero(np.isin(np.asarray(task.block.cells), listed))
        for values in (*res.stats.values(), *res.probs.values()):
            values[rows] = np.nan
        return store_block(task, cube, res)

    return runner


def write_lock_record(lock_url: str, record: dict,
                      storage_options: dict | None = None) -> None:
    """Write ``record`` (JSON) over the lock record at ``lock_url``, a local path (atomically,
    as a writer does) or an fsspec URL (``s3://...``), as another writer taking the store
    would."""
    data = json.dumps(record).encode()
    if "://" in lock_url:
        import fsspec

        fs, path = fsspec.core.url_to_fs(lock_url, **dict(storage_options or {}))
        fs.pipe_file(path, data)
        return
    tmp = f"{lock_url}.intruder.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, lock_url)


def intruder_record(token: str = "intruder-token") -> dict:
    """The lock record of another writer, on another host, with a fresh heartbeat (taken
    over only after ``stale_after``)."""
    now = time.time()
    return {"token": token, "pid": 4242, "host": "elsewhere.example", "user": "intruder",
            "pid_started": now - 60, "created": now, "heartbeat": now, "store": "?",
            "lock": "heartbeat"}


def rewrite_lock_at(block: int, lock_url: str, storage_options: dict | None = None,
                    stall_s: float = 0.0) -> Callable[..., Any]:
    """A runner that, when it runs ``block``, writes :func:`intruder_record` over the store's
    lock record (another writer took the store), waits ``stall_s`` seconds (in small steps,
    so that a cancel ends the task), then computes and writes the block as usual."""

    def runner(task, cube):
        if task.block.index == block:
            write_lock_record(lock_url, intruder_record(), storage_options)
            deadline = time.monotonic() + stall_s
            while time.monotonic() < deadline:
                time.sleep(0.05)
        return store_block(task, cube, compute_block(task))

    return runner


def farm_process(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.Popen:
    """``farm ARGS`` in a process of its own (to be killed from outside); stderr kept."""
    return subprocess.Popen([sys.executable, "-m", "farm.cli", *args], cwd=cwd,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, condition: Callable[[], Any], timeout: float = 300.0,
              poll: float = 0.05) -> Any:
    """SIGKILL ``proc`` (a ``farm run``) as soon as ``condition()`` returns something true
    (an exception counts as false: the cube is being created); returns that value, or
    None when ``proc`` ended first."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen = condition()
        except Exception:
            seen = None
        if seen:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(poll)
    proc.wait(timeout=60)
    return seen


def kill_when_blocks_done(proc: subprocess.Popen, read_status: Callable[[], Any], n: int,
                          timeout: float = 300.0) -> None:
    """SIGKILL ``proc`` as soon as ``read_status()`` (the cube's block status, or None
    before the cube exists) shows ``n`` blocks done."""
    kill_when(proc, lambda: int(np.sum(np.asarray(read_status()) == 1)) >= n, timeout)
