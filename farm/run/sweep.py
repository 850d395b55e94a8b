"""`farm run`: open or create the plan's cube, dispatch the missing blocks, finish.

The run is resumable by construction: the cube's ``status`` says which blocks
are done, and a rerun with the same config dispatches only the missing or
failed ones (a block with a failed cell, status 2, is redone whole; flagged
cells, status 3, are done). Bit-identity does not depend on workers, block size or
interruptions: a cell's numbers depend only on its parameters, the root seed
and the path indices (kernels run cells one at a time through one compiled body).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from farm.plan.plan import Plan
from farm.run.cellcheck import block_failure_message
from farm.run.cluster import require_feasible
from farm.run.dispatch import BlockReceipt, BlockTask, dispatch, run_block, start_ray
from farm.store.cube import (
    DONE_STATUSES,
    STATUS_DONE,
    Cube,
    create_cube,
    cube_exists,
    open_existing,
)
from farm.store.layout import block_status_of
from farm.store.lock import StoreLock
from farm.store.provenance import prng_attrs, provenance_attrs
from farm.store.repair import check_and_repair

log = logging.getLogger(__name__)

LOCK_REFRESH_S = 2.0
"""Seconds: the run loop refreshes the store lock (on an object store a GET and a PUT) at
most this often, however fast blocks finish; read when a run starts (0: after every block)."""


class _LockTimer:
    """The run loop's lock check: the heartbeat thread's finding at every call (no I/O),
    and a refresh of its own when the last one is ``every`` seconds old (a lost lock stops
    the run within ``every`` + the dispatcher's poll, even when the heartbeat is slow)."""

    def __init__(self, lock: StoreLock, every: float) -> None:
        self.lock, self.every = lock, every
        self.last = time.monotonic()
        self.refreshes = 0

    def __call__(self) -> None:
        self.lock.check()
        now = time.monotonic()
        if now - self.last >= self.every:
            self.lock.refresh()  # still ours? else StoreLockedError: stop, record nothing
            self.last, self.refreshes = now, self.refreshes + 1


@dataclass
class RunReport:
    url: str
    n_cells: int
    n_blocks: int
    done_before: int
    done_now: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # block index -> message
    failed_cells: list[int] = field(default_factory=list)  # cells with NaN/inf outputs
    cells_flagged: int = 0  # cells of the cube with status 3 when the run finished
    seconds: float = 0.0
    nodes: set[str] = field(default_factory=set)
    max_compiles_per_worker: int = 0  # XLA compiles of the kernel (0: loaded from the cache)
    max_loaded_per_worker: int = 0  # kernels loaded from the persistent compilation cache
    prng: list[dict[str, Any]] = field(default_factory=list)  # workers' PRNG settings
    setup_seconds: float = 0.0  # validation, design, store lock, cube creation/opening
    ray_started: bool = False  # Ray was started by this run (its start-up is in the setup)
    blocks_seconds: float = 0.0  # first task submitted -> last block done (compile included)
    kernel_seconds: float = 0.0  # summed over blocks: the kernel in the workers
    write_seconds: float = 0.0  # summed over blocks: the workers' Zarr writes

    @property
    def ok(self) -> bool:
        return not self.failed


class ProgressLike(Protocol):
    def update(self, cells: int, failed: int = 0) -> None: ...

    def close(self) -> None: ...


class _Silent:
    def update(self, cells: int, failed: int = 0) -> None:
        pass

    def close(self) -> None:
        pass


ProgressFactory = Callable[[int, int, int], ProgressLike]
"""``factory(total_cells, cells_done_before, paths_per_cell)`` -> a progress display."""


def _tasks(plan: Plan, todo: list[int]) -> Iterator[BlockTask]:
    """Build block tasks lazily (nothing accumulates over all cells). No JAX here: the
    worker makes the keys (:func:`kernels.keys.key_from_words`)."""
    from kernels.keys import replicate_seed, seeding_words

    design = plan.design
    block_cells = math.prod(design.chunks)
    replicate = design.coords.get("replicate")  # adaptive sweeps: one replicate per block
    for i in todo:
        block = design.block(i)
        cells = np.asarray(block.cells)
        padded = np.concatenate([cells, np.repeat(cells[-1:], block_cells - len(cells))])
        seed = plan.sweep.seed
        if replicate is not None:
            reps = np.unique(np.asarray(replicate)[cells])
            if len(reps) != 1:
                raise ValueError(f"block {i} mixes replicates {reps.tolist()}: an adaptive "
                                 "wave must put each replicate in whole blocks")
            seed = replicate_seed(seed, int(reps[0]))
        yield BlockTask(block=block, params=plan.cell_params(padded), seed=seed,
                        hash_words=seeding_words(plan.sweep.seeding, design.table[padded]),
                        n_paths=plan.sweep.paths, n_steps=plan.sweep.steps, t_dof=plan.t_dof,
                        dtype="float32", store_paths=plan.store.paths, axes=tuple(design.axes))


def open_or_create(plan: Plan) -> tuple[Cube, Plan]:
    """Resume a compatible store (keeping its chunking), or create a new one."""
    url, opts = plan.store.url, plan.store.storage_options()
    if cube_exists(url, opts) and not plan.store.overwrite:
        cube = open_existing(url, opts)
        cube.check_compatible(plan.config_hash, plan.config_yaml)
        check_and_repair(cube, plan.design)  # bad blocks to pending; lost status rebuilt
        if tuple(cube.chunks) != tuple(plan.design.chunks):
            log.info("resuming with the store's block layout %s (runtime.block_cells ignored)",
                     tuple(cube.chunks))
            plan = plan.with_chunks(cube.chunks)
        cube.begin_run()
        return cube, plan
    sw = plan.sweep
    attrs = provenance_attrs(plan.config_yaml, plan.config_hash, plan.design, sw.seed,
                             sw.seeding, sw.paths, sw.steps)
    cube = create_cube(url, plan.design, attrs, store_paths=plan.store.paths,
                       overwrite=plan.store.overwrite, storage_options=opts)
    return cube, plan


def run_sweep(plan: Plan, *, progress: ProgressFactory | None = None,
              notify: Callable[[str], None] = log.info,
              runner: Callable[..., BlockReceipt] = run_block) -> RunReport:
    """Run (or resume) ``plan``; returns a :class:`RunReport`.

    ``progress`` makes the progress display (the CLI's bar; none by default), ``notify``
    receives one-line notes for the user (the nodes and CPUs found), ``runner`` runs one
    block in a worker (:func:`farm.run.dispatch.run_block`; tests inject faults there).
    Raises StoreRefusedError for user errors before anything is written.
    """
    url, opts = plan.store.url, plan.store.storage_options()
    started = time.perf_counter()
    ray_started = _connect_cluster(plan) if plan.runtime.address else False
    require_feasible(plan.runtime, started_here=ray_started)  # before the store
    try:
        with StoreLock(url, opts) as lock:
            cube, plan = open_or_create(plan)
            design = plan.design
            cells = cube.cell_status()  # the one read of the status array before the blocks
            status = block_status_of(cells, cube.chunks)
            todo = [int(i) for i in np.flatnonzero(status != STATUS_DONE)]
            report = RunReport(url, design.n_cells, design.n_blocks,
                               int(np.sum(status == STATUS_DONE)))
            if todo:
                started_here, cpus = start_ray(plan.runtime.address, plan.runtime.workers)
                ray_started = ray_started or started_here
                report.ray_started = ray_started
                report.setup_seconds = time.perf_counter() - started
                done_cells = int(np.isin(cells, DONE_STATUSES).sum())
                _dispatch_todo(plan, cube, todo, report, lock, cpus, progress, notify, runner,
                               done_cells)
            else:
                log.info("nothing to do: all %d blocks of %s are done", design.n_blocks, url)
            del cells, status
            lock.refresh()  # repair and finalize only a store that is still ours
            if not cube.has_status():  # deleted while the run was writing it
                check_and_repair(cube)
            cube.finalize(prng_attrs(report.prng, cube.attrs))
            report.cells_flagged = int(cube.attrs.get("cells_flagged", 0))
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report


def _connect_cluster(plan: Plan) -> bool:
    """Connect to the cluster and refuse, before anything is written, a store path
    that its nodes cannot all see. Returns whether Ray was started here."""
    from farm.run.cluster import cluster_info, require_shared_store

    started_here, _ = start_ray(plan.runtime.address, plan.runtime.workers)
    info = cluster_info()
    try:
        require_shared_store(plan.store.url, info.n_nodes, n_hosts=info.n_hosts,
                             shared_fs=plan.store.shared_fs)
    except Exception:
        if started_here:
            import ray

            ray.shutdown()
        raise
    return started_here


def _dispatch_todo(plan: Plan, cube: Cube, todo: list[int], report: RunReport,
                   lock: StoreLock, cpus: int, progress: ProgressFactory | None,
                   notify: Callable[[str], None], runner: Callable[..., BlockReceipt],
                   done_cells: int) -> None:
    """Dispatch the missing blocks with a progress display; record failures in the cube.

    The lock is checked after every block and every second (``lock.check``: the heartbeat
    thread's finding, no I/O) and refreshed by the run loop every :data:`LOCK_REFRESH_S`
    seconds (not after every block): a lost lock stops the dispatch with StoreLockedError
    before anything more is recorded; it never marks a block failed."""
    rt, design = plan.runtime, plan.design
    notify(_cluster_text(cpus))
    slots = max(1, cpus // rt.cpus_per_task)
    if rt.workers:  # on an existing cluster, `workers` caps concurrent blocks
        slots = min(slots, rt.workers)
    # two tasks per slot keep every worker busy while the driver handles a completion
    in_flight = rt.max_in_flight or 2 * slots
    check_lock = _LockTimer(lock, LOCK_REFRESH_S)
    make_bar = progress or (lambda *_: _Silent())
    bar = make_bar(design.n_cells, done_cells, plan.sweep.paths)

    def on_done(r: BlockReceipt) -> None:
        check_lock()  # still ours? else StoreLockedError: stop, record nothing
        if r.failed_cells:  # the worker wrote the block with these cells failed (status 2)
            msg = block_failure_message(r.failed_cells, r.n_cells)
            report.failed[r.index] = msg
            report.failed_cells += [c for c, _ in r.failed_cells]
            cube.record_failure(r.index, msg)
        else:
            report.done_now += 1
        report.nodes.add(r.node_id)
        report.max_compiles_per_worker = max(report.max_compiles_per_worker, r.compiles)
        report.max_loaded_per_worker = max(report.max_loaded_per_worker, r.loaded)
        report.kernel_seconds += r.kernel_s
        report.write_seconds += r.write_s
        if dict(r.prng) not in report.prng:
            report.prng.append(dict(r.prng))
        bar.update(r.n_cells - len(r.failed_cells), failed=len(r.failed_cells))

    def on_failed(block: Any, message: str) -> None:
        report.failed[int(block.index)] = message
        cube.mark_failed(block, message)
        bar.update(0, failed=len(block.cells))

    t0 = time.perf_counter()
    try:
        dispatch(_tasks(plan, todo), cube, max_in_flight=in_flight, retries=rt.retries,
                 cpus_per_task=rt.cpus_per_task, on_done=on_done, on_failed=on_failed,
                 runner=runner, check=check_lock)
    finally:
        report.blocks_seconds = time.perf_counter() - t0
        bar.close()


def _cluster_text(cpus: int) -> str:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    log.info("Ray: %d node(s), %d CPU(s)", len(nodes), cpus)
    return f"farm: running on {len(nodes)} node(s), {cpus} CPU(s)"
