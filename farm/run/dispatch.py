"""Ray dispatch of chunk-aligned blocks (one task per block of cells, one Zarr chunk each).

One Ray task runs one block of cells x all paths through the jitted kernel and
writes its region of the cube itself (data, then ``status``), so results stream
to the store and the driver only ever holds a small receipt per block. The task
checks every cell (:mod:`farm.run.cellcheck`): a cell with NaN or inf outputs gets
status 2 and is named in the receipt (the driver records the message), a cell
that hit ``max_rounds`` too often gets status 3 (done, flagged). Every
block is padded to ``runtime.block_cells`` cells, so each worker process
compiles the kernel once per shape. In-flight tasks are capped with
``ray.wait``; Ray retries a task whose worker died (``max_retries``) or that
raised (``retry_exceptions``); a block that still fails is reported back to
the driver, which records it and goes on. A task is :func:`run_block`,
:func:`compute_block` then :func:`store_block`; the dispatcher takes the function to
run as an argument, so the tests' fault injection (failing, crashing or NaN-producing
blocks) lives in the tests, not here.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from farm.store.layout import STATUS_FLAGGED

log = logging.getLogger(__name__)

# XLA's own thread pool would fight the Ray workers for cores: one thread per worker.
# NPROC=1 sizes XLA's CPU client pool (tf_XLAEigen) to one thread; without it each
# worker hands work between threads on every core, and with two workers on two cores
# each one's kernel ran ~35 % slower than a worker alone (benchmarks/changes.md).
WORKER_ENV = {
    "NPROC": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


@dataclass(frozen=True)
class BlockTask:
    """Everything a worker needs for one block (small: the parameters of <= block_cells)."""

    block: Any  # farm.plan.design.Block
    params: Any  # kernels.params.ModelParams, padded to block_cells cells
    seed: int  # root seed
    hash_words: np.ndarray | None  # kernels.keys.seeding_words (None: common seeding)
    n_paths: int
    n_steps: int
    t_dof: int
    dtype: str
    store_paths: bool
    axes: tuple[str, ...] = ()  # swept parameters: name a failed cell by its coordinates


@dataclass(frozen=True)
class BlockReceipt:
    """What a task sends back: no results, only where and how fast it ran."""

    index: int
    n_cells: int
    seconds: float
    node_id: str
    pid: int
    compiles: int  # XLA compiles of the block kernel in this worker process so far
    prng: tuple[tuple[str, Any], ...] = ()  # the worker's JAX PRNG settings
    kernel_s: float = 0.0  # simulate_block, compile included when it compiled
    write_s: float = 0.0  # Zarr writes of data and status
    entered: float = 0.0  # time.time() when the task's function was entered
    failed_cells: tuple[tuple[int, str], ...] = ()  # (flat cell index, message): status 2
    flagged_cells: int = 0  # cells written with status 3 (done, flagged)
    loaded: int = 0  # block kernels loaded from the persistent compilation cache so far


@dataclass
class BlockResults:
    """A block's numbers, trimmed to its cells (before they are checked and written)."""

    stats: dict[str, np.ndarray]
    probs: dict[str, np.ndarray]
    paths: dict[str, np.ndarray] | None
    entered: float  # time.time() when the task started
    started: float  # time.perf_counter() when the task started
    kernel_s: float  # simulate_block, compile included when it compiled


def compute_block(task: BlockTask) -> BlockResults:
    """Simulate one block's cells (padded to the static block size; the padding dropped)."""
    entered, started = time.time(), time.perf_counter()
    from kernels import simulate_block
    from kernels.keys import key_from_words

    key = key_from_words(task.seed, task.hash_words)
    res = simulate_block(task.params, key=key, n_paths=task.n_paths, n_steps=task.n_steps,
                         t_dof=task.t_dof, dtype=task.dtype, return_paths=task.store_paths,
                         validate=False)
    n = len(task.block.cells)
    return BlockResults(
        stats={k: np.array(v[:n]) for k, v in res.stats.items()},
        probs={k: np.array(v[:n]) for k, v in res.probs.items()},
        paths=None if res.paths is None else {k: v[:n] for k, v in res.paths.items()},
        entered=entered, started=started, kernel_s=time.perf_counter() - started)


def store_block(task: BlockTask, cube: Any, res: BlockResults) -> BlockReceipt:
    """Check every cell (NaN/inf -> failed, too many capped steps -> flagged) and write the
    block's data, then its status, into ``cube``; return the receipt."""
    from farm.store.provenance import jax_prng_info
    from kernels import COMPILE_COUNTER

    status, failed = _check(task, res.stats, res.probs)
    t_write = time.perf_counter()
    cube.write_block(task.block, res.stats, res.probs, res.paths, status=status)
    t_end = time.perf_counter()
    try:
        import ray

        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    except Exception:  # pragma: no cover - outside Ray
        node = "local"
    return BlockReceipt(task.block.index, len(task.block.cells), t_end - res.started, node,
                        os.getpid(), COMPILE_COUNTER["compiled"],
                        tuple(sorted(jax_prng_info().items())), kernel_s=res.kernel_s,
                        write_s=t_end - t_write, entered=res.entered, failed_cells=failed,
                        flagged_cells=int((status == STATUS_FLAGGED).sum()),
                        loaded=COMPILE_COUNTER["loaded"])


def run_block(task: BlockTask, cube: Any) -> BlockReceipt:
    """Run one block and write it into ``cube`` (in the calling process: a Ray worker)."""
    return store_block(task, cube, compute_block(task))


def _check(task: BlockTask, stats: dict, probs: dict) -> tuple[np.ndarray, tuple]:
    """Per-cell status of the block's cells and ``(cell, message)`` of the failed ones."""
    from farm.run.cellcheck import cell_failure_message, check_cells

    n = len(task.block.cells)
    status, bad = check_cells(stats, probs, np.asarray(task.params.capped_limit)[:n])
    failed = []
    for row, outputs in sorted(bad.items()):
        point = {a: float(np.asarray(getattr(task.params, a))[row]) for a in task.axes}
        cell = int(task.block.cells[row])
        failed.append((cell, cell_failure_message(cell, point, outputs)))
    if failed:
        log.warning("block %d: %d cells with non-finite outputs", task.block.index, len(failed))
    return status, tuple(failed)


WARM_HOOK = "farm.run.dispatch.warm_worker"


def warm_worker() -> None:
    """Ray ``worker_process_setup_hook``: import what a block needs (JAX, the kernel,
    zarr) when the worker process starts, so the import overlaps Ray's start-up and
    the driver's cube creation instead of delaying the first block. Never fails."""
    try:
        import zarr  # noqa: F401

        import kernels.simulate  # noqa: F401  (imports jax)
        from farm.store import cube, provenance  # noqa: F401
        from kernels.compilecache import enable

        enable()  # the persistent compilation cache, before the first block
    except Exception as exc:  # pragma: no cover - the task imports again and reports
        log.warning("worker warm-up import failed: %s", exc)


def worker_env() -> dict[str, str]:
    """Environment for Ray workers: single-threaded XLA, and the driver's choice of
    compilation cache (``FARM_JAX_CACHE``) when it made one."""
    from kernels.compilecache import ENV

    mine = {ENV: os.environ[ENV]} if os.environ.get(ENV) is not None else {}
    return {**WORKER_ENV, **mine}


def runtime_env() -> dict[str, Any]:
    """The Ray ``runtime_env`` of a farm run: :func:`worker_env` and :func:`warm_worker`."""
    return {"env_vars": worker_env(), "worker_process_setup_hook": WARM_HOOK}


def start_ray(address: str | None, workers: int) -> tuple[bool, int]:
    """Connect to (or start) Ray; returns ``(started_here, cpus)``. A local Ray is a new one
    (:func:`farm.run.raynet.start_local`), after reaping dead farm drivers' leftovers."""
    import ray

    from farm.run.raynet import reap_stale_sessions, start_local

    if not address:
        reap_stale_sessions()
    if ray.is_initialized():
        return False, int(ray.cluster_resources().get("CPU", 1))
    kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": True,
                              "runtime_env": runtime_env()}
    if address:
        ray.init(address=address, **kwargs)
    else:
        n = workers or os.cpu_count() or 1
        start_local(n, **kwargs)
        _prestart_workers(n)
    return True, int(ray.cluster_resources().get("CPU", 1))


def _worker_pid() -> int:
    return os.getpid()


def _prestart_workers(n: int) -> None:
    """Start ``n`` worker processes now, without waiting for them: their setup hook
    (:func:`warm_worker`) imports JAX and the kernel while the driver validates the
    design and writes the cube template, instead of after the first block is sent."""
    import ray

    probe = ray.remote(num_cpus=1)(_worker_pid)
    for _ in range(n):
        probe.remote()


POLL_S = 1.0  # seconds: the dispatcher calls ``check`` at least this often


def dispatch(tasks: Iterable[BlockTask], cube: Any, *, max_in_flight: int, retries: int,
             cpus_per_task: int = 1,
             on_done: Callable[[BlockReceipt], None] = lambda r: None,
             on_failed: Callable[[Any, str], None] = lambda b, m: None,
             runner: Callable[[BlockTask, Any], BlockReceipt] = run_block,
             check: Callable[[], None] = lambda: None, poll_s: float = POLL_S) -> None:
    """Submit ``tasks`` with at most ``max_in_flight`` outstanding; stream completions.

    Parameters are sent per task (a few KB); the cube handle is ``ray.put`` once.
    ``on_failed(block, message)`` is called only for a task that raised after all its
    retries. ``check()`` is called before every submission round and at least every
    ``poll_s`` seconds while tasks run, even when none completes. An exception from
    ``check`` or ``on_done`` (the store's lock was lost, or a bug) is never a block
    failure: nothing more is submitted, the tasks in flight are cancelled (their blocks
    stay pending, or done if they finished writing) and the exception propagates.
    """
    import ray

    remote = ray.remote(num_cpus=cpus_per_task, max_retries=retries,
                        retry_exceptions=True)(runner)
    cube_ref = ray.put(cube)
    pending: dict[Any, Any] = {}
    it = iter(tasks)
    exhausted = False
    try:
        while True:
            check()
            while not exhausted and len(pending) < max_in_flight:
                task = next(it, None)
                if task is None:
                    exhausted = True
                    break
                pending[remote.remote(task, cube_ref)] = task.block
            if not pending:
                return
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
            for ref in ready:
                block = pending.pop(ref)
                try:
                    receipt = ray.get(ref)
                except Exception as exc:  # the task failed after all its retries
                    on_failed(block, _short_error(exc))
                    continue
                on_done(receipt)
    except BaseException:
        try:
            _cancel(list(pending))
        except Exception as exc:  # Ray going down: the original error matters
            log.warning("could not cancel the block tasks in flight: %s", exc)
        raise


def _cancel(refs: list[Any], wait_s: float = 10.0) -> None:
    """Cancel the tasks of ``refs``, give them up to ``wait_s`` seconds to end and drop
    their results (nothing is recorded for them)."""
    import ray

    for ref in refs:
        ray.cancel(ref)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=wait_s)
        log.info("cancelled %d block task(s) in flight", len(refs))


def _short_error(exc: BaseException) -> str:
    """The root cause of a Ray task error as one line."""
    cause = getattr(exc, "cause", None) or exc
    text = f"{type(cause).__name__}: {cause}".strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    last = lines[-1] if lines else type(exc).__name__
    return last if len(last) < 500 else last[:497] + "..."
