"""`farm run`: validate, expand the design, open or create the cube, dispatch, finish.

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
import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from omegaconf import DictConfig

from farm.plan.config import config_hash, model_values, to_yaml, validate
from farm.plan.design import Design, cell_params, estimate_cube_bytes, make_design
from farm.run.cellcheck import block_failure_message
from farm.run.dispatch import BlockReceipt, BlockTask, dispatch, fault_settings, start_ray
from farm.run.progress import Progress
from farm.store.cube import (
    DONE_STATUSES,
    STATUS_DONE,
    STATUS_FLAGGED,
    Cube,
    create_cube,
    cube_exists,
    open_existing,
)
from farm.store.lock import StoreLock
from farm.store.provenance import prng_attrs, provenance_attrs

log = logging.getLogger(__name__)

# Rough single-core throughput of the float32 kernel used for --dry-run estimates
# (path-steps per second: the default sweep's 88 million path-steps took 58 s of blocks
# on two workers here; BENCHMARKS.md has the measured kernel rate for this machine).
EST_PATH_STEPS_PER_CORE = 0.75e6


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
    max_compiles_per_worker: int = 0
    prng: list[dict[str, Any]] = field(default_factory=list)  # workers' PRNG settings
    setup_seconds: float = 0.0  # validation, design, store lock, cube creation/opening
    ray_started: bool = False  # Ray was started by this run (its start-up is in the setup)
    blocks_seconds: float = 0.0  # first task submitted -> last block done (compile included)
    kernel_seconds: float = 0.0  # summed over blocks: the kernel in the workers
    write_seconds: float = 0.0  # summed over blocks: the workers' Zarr writes

    @property
    def ok(self) -> bool:
        return not self.failed


def storage_options(cfg: DictConfig) -> dict[str, Any]:
    """fsspec options for the store; credentials stay in the environment (never here)."""
    opts: dict[str, Any] = {}
    if cfg.store.get("endpoint_url"):
        opts["client_kwargs"] = {"endpoint_url": str(cfg.store.endpoint_url)}
    return opts


def estimate(cfg: DictConfig, design: Design) -> dict[str, float]:
    """Store size (bytes) and wall time (s) estimates for ``--dry-run``."""
    n_paths, n_steps = int(cfg.sweep.paths), int(cfg.sweep.steps)
    workers = int(cfg.runtime.workers) or os.cpu_count() or 1
    seconds = design.n_cells * n_paths * n_steps / (EST_PATH_STEPS_PER_CORE * workers)
    return {"bytes": estimate_cube_bytes(design, n_paths, bool(cfg.store.paths)),
            "seconds": seconds, "workers": workers}


def dry_run_text(cfg: DictConfig, design: Design) -> str:
    est = estimate(cfg, design)
    n_paths = int(cfg.sweep.paths)
    axes = ", ".join(f"{a}[{len(design.coords[a]) if design.method == 'grid' else '~'}]"
                     for a in design.axes) or "(none: one cell)"
    return "\n".join([
        f"dry run: nothing written (store {cfg.store.url})",
        f"  design   : {design.method} over {axes}",
        f"  cells    : {design.n_cells}",
        f"  blocks   : {design.n_blocks} (chunks {tuple(design.chunks)} on "
        f"{', '.join(design.cell_dims)})",
        f"  paths    : {n_paths} per cell, {design.n_cells * n_paths} in all, "
        f"{int(cfg.sweep.steps)} steps each",
        f"  size     : ~{_human_bytes(est['bytes'])} (uncompressed)",
        f"  time     : ~{_human_seconds(est['seconds'])} on {est['workers']} worker(s), "
        f"estimated at {EST_PATH_STEPS_PER_CORE:.1e} path-steps/s per core, plus start-up",
    ])


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def _human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _tasks(cfg: DictConfig, design: Design, todo: list[int]) -> Iterator[BlockTask]:
    """Build block tasks lazily (nothing accumulates over all cells). No JAX here: the
    worker makes the keys (:func:`kernels.keys.key_from_words`)."""
    from kernels.keys import seeding_words
    from kernels.params import make_params

    block_cells = math.prod(design.chunks)
    base = make_params(model_values(cfg.model), validate=False)  # swept axes replaced per cell
    seeding = str(cfg.sweep.seeding)
    faults = fault_settings()
    for i in todo:
        block = design.block(i)
        cells = np.asarray(block.cells)
        padded = np.concatenate([cells, np.repeat(cells[-1:], block_cells - len(cells))])
        params = cell_params(base, design, padded)
        words = seeding_words(seeding, design.table[padded])
        yield BlockTask(block=block, params=params, seed=int(cfg.seed), hash_words=words,
                        n_paths=int(cfg.sweep.paths), n_steps=int(cfg.sweep.steps),
                        t_dof=int(cfg.model.t_dof), dtype="float32",
                        store_paths=bool(cfg.store.paths), faults=faults,
                        axes=tuple(design.axes))


def open_or_create(cfg: DictConfig, design: Design, url: str, opts: dict) -> tuple[Cube, Design]:
    """Resume a compatible store (keeping its chunking), or create a new one."""
    digest = config_hash(cfg)
    cfg_yaml = to_yaml(cfg)
    if cube_exists(url, opts) and not cfg.store.overwrite:
        cube = open_existing(url, opts)
        cube.check_compatible(digest, cfg_yaml)
        if tuple(cube.chunks) != tuple(design.chunks):
            log.info("resuming with the store's block layout %s (runtime.block_cells ignored)",
                     tuple(cube.chunks))
            design = make_design(cfg, chunks=cube.chunks)
        cube.begin_run()
        return cube, design
    attrs = provenance_attrs(cfg_yaml, digest, design, int(cfg.seed), str(cfg.sweep.seeding),
                             int(cfg.sweep.paths), int(cfg.sweep.steps))
    cube = create_cube(url, design, attrs, store_paths=bool(cfg.store.paths),
                       overwrite=bool(cfg.store.overwrite), storage_options=opts)
    return cube, design


def run_sweep(cfg: DictConfig, *, progress: bool = True) -> RunReport:
    """Run (or resume) the sweep described by ``cfg``; returns a :class:`RunReport`.

    Raises ConfigError / StoreRefusedError for user errors before anything is written.
    """
    validate(cfg)
    design = make_design(cfg)
    url = str(cfg.store.url)
    opts = storage_options(cfg)
    started = time.perf_counter()
    ray_started = _connect_cluster(cfg, url) if cfg.runtime.address else False
    try:
        with StoreLock(url, opts) as lock:
            cube, design = open_or_create(cfg, design, url, opts)
            status = cube.block_status(design)
            todo = [int(i) for i in np.flatnonzero(status != STATUS_DONE)]
            report = RunReport(url, design.n_cells, design.n_blocks,
                               int(np.sum(status == STATUS_DONE)))
            if todo:
                started_here, cpus = start_ray(cfg.runtime.address, int(cfg.runtime.workers))
                ray_started = ray_started or started_here
                report.ray_started = ray_started
                report.setup_seconds = time.perf_counter() - started
                _dispatch_todo(cfg, design, cube, todo, report, lock, cpus, progress)
            else:
                log.info("nothing to do: all %d blocks of %s are done", design.n_blocks, url)
            cube.finalize(prng_attrs(report.prng, cube.attrs))
            report.cells_flagged = int(cube.attrs.get("cells_flagged", 0))
    finally:
        if ray_started:
            import ray

            ray.shutdown()
    report.seconds = time.perf_counter() - started
    return report


def _connect_cluster(cfg: DictConfig, url: str) -> bool:
    """Connect to the cluster and refuse, before anything is written, a store path
    that its nodes cannot all see. Returns whether Ray was started here."""
    from farm.run.cluster import cluster_info, require_shared_store

    started_here, _ = start_ray(cfg.runtime.address, int(cfg.runtime.workers))
    info = cluster_info()
    try:
        require_shared_store(url, info.n_nodes, n_hosts=info.n_hosts,
                             shared_fs=bool(cfg.store.shared_fs))
    except Exception:
        if started_here:
            import ray

            ray.shutdown()
        raise
    return started_here


def _dispatch_todo(cfg: DictConfig, design: Design, cube: Cube, todo: list[int],
                   report: RunReport, lock: StoreLock, cpus: int, progress: bool) -> None:
    """Dispatch the missing blocks with a progress bar; record failures in the cube."""
    rt = cfg.runtime
    _report_cluster(cpus)
    slots = max(1, cpus // int(rt.cpus_per_task))
    if int(rt.workers):  # on an existing cluster, `workers` caps concurrent blocks
        slots = min(slots, int(rt.workers))
    # two tasks per slot keep every worker busy while the driver handles a completion
    in_flight = int(rt.max_in_flight) or 2 * slots
    done_cells = int(np.isin(cube.cell_status(), DONE_STATUSES).sum())
    bar = Progress(design.n_cells, done_cells, int(cfg.sweep.paths), enabled=progress)
    kill_after = int(os.environ.get("FARM_FAULT_KILL_AFTER_BLOCKS", "0") or 0)

    def on_done(r: BlockReceipt) -> None:
        if r.failed_cells:  # the worker wrote the block with these cells failed (status 2)
            msg = block_failure_message(r.failed_cells, r.n_cells)
            report.failed[r.index] = msg
            report.failed_cells += [c for c, _ in r.failed_cells]
            cube.record_failure(r.index, msg)
        else:
            report.done_now += 1
        report.nodes.add(r.node_id)
        report.max_compiles_per_worker = max(report.max_compiles_per_worker, r.compiles)
        report.kernel_seconds += r.kernel_s
        report.write_seconds += r.write_s
        if dict(r.prng) not in report.prng:
            report.prng.append(dict(r.prng))
        bar.update(r.n_cells - len(r.failed_cells), failed=len(r.failed_cells))
        lock.refresh()
        if kill_after and report.done_now >= kill_after:  # test hook: die like kill -9
            os.kill(os.getpid(), signal.SIGKILL)

    def on_failed(block: Any, message: str) -> None:
        report.failed[int(block.index)] = message
        cube.mark_failed(block, message)
        bar.update(0, failed=len(block.cells))

    t0 = time.perf_counter()
    try:
        dispatch(_tasks(cfg, design, todo), cube, max_in_flight=in_flight,
                 retries=int(rt.retries), cpus_per_task=int(rt.cpus_per_task),
                 on_done=on_done, on_failed=on_failed)
    finally:
        report.blocks_seconds = time.perf_counter() - t0
        bar.close()


def _report_cluster(cpus: int) -> None:
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    log.info("Ray: %d node(s), %d CPU(s)", len(nodes), cpus)
    print(f"farm: running on {len(nodes)} node(s), {cpus} CPU(s)", file=sys.stderr)


def _wall_detail(report: RunReport) -> str:
    """`` (setup 5.1 s, Ray start included; blocks 38 s)`` when blocks ran, else ``""``."""
    if not report.done_now:
        return ""
    ray = ", Ray start included" if report.ray_started else ""
    return (f" (setup {report.setup_seconds:.1f} s{ray}; blocks "
            f"{_human_seconds(report.blocks_seconds)})")


def summary_text(report: RunReport, cfg: DictConfig) -> str:
    """The final one-screen summary, with the two lines of Python that open the cube."""
    n_paths = int(cfg.sweep.paths)
    lines = [
        "",
        f"farm: {cfg.name} -> {report.url}",
        f"  blocks : {report.n_blocks} ({report.done_before} already done, "
        f"{report.done_now} run now, {len(report.failed)} failed)",
        f"  cells  : {report.n_cells} x {n_paths} paths x {int(cfg.sweep.steps)} steps",
        f"  wall   : {_human_seconds(report.seconds)}{_wall_detail(report)}",
    ]
    if report.nodes:
        lines.append(f"  nodes  : {len(report.nodes)}; kernel compiles per worker: "
                     f"{report.max_compiles_per_worker}")
    if report.cells_flagged:
        lines.append(f"  flagged: {report.cells_flagged} cells done with status {STATUS_FLAGGED}: "
                     "the cascade hit max_rounds on more than model.capped_limit of their "
                     "path-steps (raise model.max_rounds)")
    if report.failed:
        lines.append("  FAILED : blocks " + ", ".join(map(str, sorted(report.failed))))
        if report.failed_cells:
            cells = sorted(report.failed_cells)
            more = f" and {len(cells) - 20} more" if len(cells) > 20 else ""
            lines.append(f"  FAILED : cells {', '.join(map(str, cells[:20]))}{more} "
                         "(NaN or inf outputs)")
        for i, msg in sorted(report.failed.items())[:5]:
            lines.append(f"    block {i}: {msg}")
        lines.append("  rerun the same command to retry only the failed blocks.")
    else:
        lines += ["", "Open it in Python:", "    import analysis",
                  f"    ds = analysis.open_cube({report.url!r})"]
    return "\n".join(lines)
