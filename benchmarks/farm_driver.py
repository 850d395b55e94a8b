"""One farm measurement in a fresh process (so RSS, CPU affinity and compiles are its own).

``python -m benchmarks.farm_driver MODE OUT.json --cores 0[,1] [--workers N] -- OVERRIDES``

- ``farm``: start Ray (timed on its own), then ``farm.run.sweep.run_sweep``, timed from the
  first task submitted to the consolidated cube (its setup before that, design and cube
  template, is reported as ``setup_s``); driver peak RSS and the workers' peak RSS.
- ``bare``: the same blocks (``farm.run.sweep._tasks``: same params, keys, padding) through
  ``kernels.simulate_block`` in this one process, compile included, no Ray, no store.
- ``zarr``: write synthetic results for every block of the design into a fresh cube.

CPU affinity is set before Ray or JAX start, so everything they spawn inherits it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time


def _rss_mb() -> float:
    """Current RSS of this process (not ``ru_maxrss``: Linux carries the parent's high-water
    mark across fork/exec, so a child started by a big parent would report the parent's)."""
    import psutil

    return psutil.Process().memory_info().rss / 2**20


class WorkerRss:
    """Polls the peak RSS of this process (``self_peak_mb``) and of its Ray workers."""

    def __init__(self) -> None:
        self.peak_mb = 0.0
        self.self_peak_mb = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.2):
            self.self_peak_mb = max(self.self_peak_mb, me.memory_info().rss / 2**20)
            try:
                procs = me.children(recursive=True)
            except psutil.Error:
                continue
            for p in procs:
                try:
                    if "ray::" in " ".join(p.cmdline()[:1]):
                        self.peak_mb = max(self.peak_mb, p.memory_info().rss / 2**20)
                except psutil.Error:
                    pass

    def __enter__(self) -> WorkerRss:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()


def _store_bytes(path: str) -> tuple[int, int]:
    """Bytes and files under ``path``."""
    total = count = 0
    for root, _, files in os.walk(path):
        total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        count += len(files)
    return total, count


def run_farm(overrides: list[str], workers: int) -> dict:
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run.dispatch import start_ray
    from farm.run.sweep import run_sweep

    cfg = compose_config([*overrides, f"runtime.workers={workers}"])
    t0 = time.perf_counter()
    start_ray(None, workers)
    ray_start = time.perf_counter() - t0
    import ray

    try:
        with WorkerRss() as wr:
            t0 = time.perf_counter()
            report = run_sweep(make_plan(cfg))
            wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    # the definition: first task submitted -> consolidated cube (report.seconds
    # minus the setup before the first task: validation, design, lock, cube template)
    return {"ray_start_s": ray_start, "wall_s": report.seconds - report.setup_seconds,
            "setup_s": report.setup_seconds, "run_sweep_s": wall, "ok": report.ok,
            "kernel_s": report.kernel_seconds, "write_s": report.write_seconds,
            "n_cells": report.n_cells, "n_blocks": report.n_blocks,
            "compiles_per_worker": report.max_compiles_per_worker, "workers": workers,
            "loaded_per_worker": report.max_loaded_per_worker,
            "driver_peak_rss_mb": max(wr.self_peak_mb, _rss_mb()),
            "worker_peak_rss_mb": wr.peak_mb,
            "store_bytes": _store_bytes(str(cfg.store.url))[0],
            "store_files": _store_bytes(str(cfg.store.url))[1],
            "path_steps": report.n_cells * int(cfg.sweep.paths) * int(cfg.sweep.steps)}


def run_bare(overrides: list[str]) -> dict:
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run.sweep import _tasks
    from kernels import COMPILE_COUNTER, simulate_block
    from kernels.keys import key_from_words

    cfg = compose_config(overrides)
    plan = make_plan(cfg)
    design = plan.design
    t0 = time.perf_counter()
    with WorkerRss() as wr:
        for task in _tasks(plan, list(range(design.n_blocks))):
            simulate_block(task.params, key=key_from_words(task.seed, task.hash_words),
                           n_paths=task.n_paths, n_steps=task.n_steps, t_dof=task.t_dof,
                           dtype=task.dtype, validate=False)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "n_cells": design.n_cells, "n_blocks": design.n_blocks,
            "compiles": COMPILE_COUNTER["simulate_block"],
            "peak_rss_mb": max(wr.self_peak_mb, _rss_mb()),
            "path_steps": design.n_cells * int(cfg.sweep.paths) * int(cfg.sweep.steps)}


def run_zarr(overrides: list[str]) -> dict:
    import numpy as np

    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run.sweep import open_or_create
    from kernels import PATH_OUTPUTS, PROBABILITIES, STATS

    cfg = compose_config(overrides)
    cube, plan = open_or_create(make_plan(cfg))
    design = plan.design
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    for block in design.blocks():
        n = len(block.cells)
        stats = {k: rng.random((n, len(STATS)), dtype=np.float32) for k in PATH_OUTPUTS}
        probs = {k: rng.random(n, dtype=np.float32) for k in PROBABILITIES}
        cube.write_block(block, stats, probs, None)
    wall = time.perf_counter() - t0
    values = design.n_cells * (len(PATH_OUTPUTS) * len(STATS) + len(PROBABILITIES))
    return {"wall_s": wall, "n_blocks": design.n_blocks, "n_cells": design.n_cells,
            "payload_bytes": values * 4, "store_bytes": _store_bytes(str(cfg.store.url))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("farm", "bare", "zarr"))
    ap.add_argument("out")
    ap.add_argument("--cores", default="0")
    ap.add_argument("--workers", type=int, default=1)
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    a = ap.parse_args(argv[:cut])
    a.overrides = argv[cut + 1:]
    os.sched_setaffinity(0, {int(c) for c in a.cores.split(",")})
    if a.mode == "farm":
        res = run_farm(a.overrides, a.workers)
    elif a.mode == "bare":
        res = run_bare(a.overrides)
    else:
        res = run_zarr(a.overrides)
    res["cores"] = a.cores
    with open(a.out, "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":
    main()
