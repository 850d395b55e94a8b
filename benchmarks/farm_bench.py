"""Farm rows: overhead vs the bare kernel, 1 vs 2 workers, driver RSS, Zarr writes.

Each measurement runs ``benchmarks.farm_driver`` in a fresh process with its CPU
affinity set (one core: ``--cores 0``; two: ``0,1``) and the workers' single-threaded
XLA environment, so XLA's own threads do not blur the comparison. Rows are only
measured when the farm's run API exists; otherwise they say so (never a guess).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not measured: farm not available"


def farm_available() -> bool:
    try:
        from farm.plan.compose import compose_config  # noqa: F401
        from farm.run.sweep import _tasks, run_sweep  # noqa: F401
    except ImportError:
        return False
    return True


def _env(jax_cache: str = "off") -> dict[str, str]:
    """The driver's environment: single-threaded XLA, and the persistent compilation
    cache off unless asked (every row includes the compile, like the bare kernel)."""
    from farm.run.dispatch import worker_env

    env = dict(os.environ)
    env.update(worker_env())
    env["FARM_JAX_CACHE"] = jax_cache
    env.setdefault("RAY_DEDUP_LOGS", "0")
    return env


def drive(mode: str, overrides: list[str], *, cores: str = "0", workers: int = 1,
          timeout: float = 900, jax_cache: str = "off") -> dict | None:
    """Run one driver measurement on a fresh store; None (logged) when it fails."""
    tmp = Path(tempfile.mkdtemp(prefix="farm-bench-"))
    out = tmp / "out.json"
    cmd = [sys.executable, "-m", "benchmarks.farm_driver", mode, str(out), "--cores", cores,
           "--workers", str(workers), "--", *overrides, f"store.url={tmp / 'cube.zarr'}"]
    try:
        proc = subprocess.run(cmd, env=_env(jax_cache), capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            log.warning("farm driver %s %s failed: %s", mode, overrides, proc.stderr[-1500:])
            return None
        return json.loads(out.read_text())
    except subprocess.TimeoutExpired:
        log.warning("farm driver %s %s timed out after %.0f s", mode, overrides, timeout)
        return None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _grid(n_lev: int, n_corr: int, n_fed: int, n_int: int) -> list[str]:
    def axis(name: str, n: int, lo: float, hi: float) -> str:
        vals = ",".join(f"{lo + (hi - lo) * i / max(n - 1, 1):.6g}" for i in range(n))
        return f"sweep.axes.{name}=[{vals}]"

    return [axis("leverage", n_lev, 0.0, 3.0), axis("correlation", n_corr, -0.4, 1.0),
            axis("fed_put", n_fed, 0.0, 1.0), axis("integration", n_int, 0.0, 1.0)]


def _fastest(runs: list[dict | None]) -> dict | None:
    """The run with the smallest wall time, with every run's wall time attached."""
    ok = [r for r in runs if r is not None]
    if len(ok) < len(runs):
        return None
    best = dict(min(ok, key=lambda r: r["wall_s"]))
    best["walls_s"] = [r["wall_s"] for r in ok]
    return best


def overhead(sweep: list[str], repeats: int = 1) -> dict:
    """Farm (1 worker, core 0) vs bare kernel (core 0) on the same cells, compile included.

    With ``repeats`` > 1 the two alternate (farm, bare, farm, bare, ...) and each side
    keeps its fastest run, so a burst of load from other jobs hits neither side alone.
    """
    farms, bares = [], []
    for _ in range(repeats):
        farms.append(drive("farm", sweep, cores="0", workers=1))
        bares.append(drive("bare", sweep, cores="0"))
    farm, bare = _fastest(farms), _fastest(bares)
    if farm is None or bare is None:
        return {"error": "a driver run failed (see log)"}
    return {"farm": farm, "bare": bare, "overhead": farm["wall_s"] / bare["wall_s"] - 1.0}


def workers_speedup(sweep: list[str], one: dict | None = None, repeats: int = 1) -> dict:
    one = one or drive("farm", sweep, cores="0", workers=1)
    two = _fastest([drive("farm", sweep, cores="0,1", workers=2) for _ in range(repeats)])
    if one is None or two is None:
        return {"error": "a driver run failed (see log)"}
    return {"one": one, "two": two, "speedup": one["wall_s"] / two["wall_s"]}


def rss_growth(small: int = 10_000, large: int = 1_000_000, paths: int = 16,
               steps: int = 8) -> dict:
    """Driver peak RSS and store files for 10k vs 1M cells (tiny paths/steps: the cells
    are what grow; automatic block size)."""
    shapes = {10_000: (25, 20, 5, 4), 1_000_000: (100, 25, 20, 20)}
    res = {}
    for n in (small, large):
        sweep = ["sweep=default", *_grid(*shapes[n]), f"sweep.paths={paths}",
                 f"sweep.steps={steps}"]
        r = drive("farm", sweep, cores="0,1", workers=2, timeout=1800)
        if r is None:
            return {"error": "a driver run failed (see log)"}
        res[n] = r
    growth = res[large]["driver_peak_rss_mb"] / res[small]["driver_peak_rss_mb"] - 1.0
    return {"small": res[small], "large": res[large], "growth": growth,
            "files_per_1000_cells": 1000 * res[large]["store_files"] / res[large]["n_cells"]}


def second_run(sweep: list[str]) -> dict:
    """The same sweep twice with a fresh persistent compilation cache: the second run's
    workers load the kernel instead of compiling it."""
    cache = tempfile.mkdtemp(prefix="farm-bench-jax-")
    try:
        first = drive("farm", sweep, cores="0", workers=1, jax_cache=cache)
        second = drive("farm", sweep, cores="0", workers=1, jax_cache=cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if first is None or second is None:
        return {"error": "a driver run failed (see log)"}
    return {"first": first, "second": second, "compiles": second["compiles_per_worker"]}


def zarr_throughput(sweep: list[str]) -> dict | None:
    return drive("zarr", sweep, cores="0")


def same_cells_throughput(sweep: list[str]) -> dict | None:
    """The farm (2 workers) on the radCAD comparison's cells, Ray start excluded."""
    return drive("farm", sweep, cores="0,1", workers=2)


def same_cells_warm(sweep: list[str]) -> dict | None:
    """As :func:`same_cells_throughput`, but the second of two runs sharing a fresh
    compile cache: what a user's every run after the first sees."""
    cache = tempfile.mkdtemp(prefix="farm-bench-jax-")
    try:
        drive("farm", sweep, cores="0,1", workers=2, jax_cache=cache)
        return drive("farm", sweep, cores="0,1", workers=2, jax_cache=cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def measure(quick: bool) -> dict:
    if not farm_available():
        return {"available": False, "note": NOT_AVAILABLE}
    if quick:
        return {"available": False, "note": "not measured in --quick mode (run `make bench`)"}
    default = ["sweep=default"]
    out: dict = {"available": True, "smoke": overhead(["sweep=smoke"])}
    out["default"] = overhead(default, repeats=2)
    out["workers"] = workers_speedup(default, out["default"].get("farm"), repeats=2)
    out["rss"] = rss_growth()
    out["second_run"] = second_run(["sweep=smoke"])
    out["zarr"] = zarr_throughput(default)
    return out
