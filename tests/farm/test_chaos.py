"""Chaos: a sweep run while workers die, chunks are deleted or corrupted, the status
array vanishes and another writer takes the lock, at random points (marked slow).

Specification (the reliability issue): every outcome is either a cube bit-identical to an
uninterrupted run after reruns, or a clear refusal (a user error: one line, exit 2); and
no block with data is ever recorded as failed (no status 2 and no failure message, since
no fault here makes a cell's numbers non-finite). Each round draws its faults from its own
seed, so a failing round can be replayed alone (``-k "round_7"``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import ray.cloudpickle

from conftest import cube_arrays, farm_cfg
from farm.errors import UserError
from farm.plan.convert import make_plan
from farm.run.dispatch import compute_block, store_block
from farm.run.sweep import run_sweep
from farm.store.cube import open_existing
from farm.store.lock import lock_url

ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("ray_local")]

ROUNDS = 20
FAULTS = ("kill_worker", "delete_chunk", "corrupt_chunk", "delete_status", "take_lock")
MAX_RERUNS = 4


def _chunk_files(url: str) -> list[str]:
    """Every data-chunk file of the cube (not metadata, not status)."""
    out = []
    for root, _, files in os.walk(url):
        rel = os.path.relpath(root, url)
        if "/c" not in f"/{rel}" or rel.startswith("status"):
            continue
        out += [os.path.join(root, f) for f in files if f != "zarr.json"]
    return sorted(out)


def _fault(kind: str, url: str, lock: str, marker: str, rng_seed: int) -> None:
    """Do one fault, from inside a worker, once (``marker`` records it)."""
    if os.path.exists(marker):
        return
    Path(marker).write_text(kind)
    rng = random.Random(rng_seed)
    if kind == "kill_worker":
        os._exit(17)  # Ray retries the task on another worker
    if kind in ("delete_chunk", "corrupt_chunk"):
        files = _chunk_files(url)
        if not files:
            return
        path = rng.choice(files)
        if kind == "delete_chunk":
            os.remove(path)
        else:
            data = bytearray(Path(path).read_bytes())
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
            Path(path).write_bytes(bytes(data))
    elif kind == "delete_status":
        meta = os.path.join(url, "status", "zarr.json")
        if os.path.exists(meta):
            os.remove(meta)
        shutil.rmtree(os.path.join(url, "status"), ignore_errors=True)
    elif kind == "take_lock":
        now = time.time()
        record = {"token": "chaos-intruder", "pid": 4242, "host": "elsewhere.example",
                  "user": "intruder", "pid_started": now - 60, "created": now,
                  "heartbeat": now, "store": url, "lock": "heartbeat"}
        tmp = f"{lock}.chaos.tmp"
        Path(tmp).write_text(json.dumps(record))
        os.replace(tmp, lock)


def _chaos_runner(plan_faults: dict[int, list[tuple[str, str, int]]], url: str, lock: str):
    """A runner doing, before computing block ``b``, the faults listed for ``b``."""

    def runner(task, cube):
        for kind, marker, seed in plan_faults.get(task.block.index, []):
            _fault(kind, url, lock, marker, seed)
        return store_block(task, cube, compute_block(task))

    return runner


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ref")
    report = run_sweep(make_plan(farm_cfg(tmp, name="chaos")))
    assert report.ok and report.done_now == 6
    return cube_arrays(tmp / "chaos.zarr")


def _no_block_with_data_failed(url: str) -> None:
    cube = open_existing(url, read_only=True)
    if not cube.has_status():
        return  # deleted by a fault; the rerun rebuilds it from the data
    assert cube.failed_blocks() == {}, cube.failed_blocks()
    try:
        status = cube.cell_status()
    except UserError:
        return  # a corrupt status chunk: rebuilt by the rerun
    assert not (status == 2).any(), status


@pytest.mark.parametrize("round_", [f"round_{i}" for i in range(ROUNDS)])
def test_chaos_round(round_, reference, tmp_path):
    seed = int(round_.split("_")[1])
    rng = random.Random(seed)
    url = str(tmp_path / "chaos.zarr")
    lock = lock_url(url)
    faults: dict[int, list[tuple[str, str, int]]] = {}
    for i in range(rng.randint(1, 3)):
        kind = rng.choice(FAULTS)
        faults.setdefault(rng.randrange(6), []).append(
            (kind, str(tmp_path / f"fault-{i}"), rng.randrange(2**31)))
    plan = make_plan(farm_cfg(tmp_path, name="chaos"))
    outcomes = []
    try:
        report = run_sweep(plan, runner=_chaos_runner(faults, url, lock))
        outcomes.append("ok" if report.ok else f"failed {report.failed}")
    except UserError as exc:  # a clear refusal: one line
        assert "\n" not in str(exc)
        outcomes.append(f"refused: {exc}")
    _no_block_with_data_failed(url)
    reruns = 0
    for reruns in range(1, MAX_RERUNS + 1):  # noqa: B007 - the user reruns (the other writer gone)
        if os.path.exists(lock) and "chaos-intruder" in Path(lock).read_text():
            os.remove(lock)
        report = run_sweep(plan)
        _no_block_with_data_failed(url)
        if report.ok and open_existing(url, read_only=True).attrs.get("complete") in (True, "True"):
            break
    else:
        pytest.fail(f"{round_}: not complete after {MAX_RERUNS} reruns; faults {faults}, "
                    f"outcomes {outcomes}")
    kinds = sorted(k for fs in faults.values() for k, _, _ in fs)
    print(f"{round_}: faults {kinds}; first run {outcomes[0][:60]}; reruns {reruns}")
    got = cube_arrays(url)
    for k, v in reference.items():
        np.testing.assert_array_equal(got[k], v, err_msg=f"{round_} {k} faults {faults}")
