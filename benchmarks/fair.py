"""Like-for-like baselines, measured side by side in one run (``python -m benchmarks.fair``).

- ``jax_vs_numpy_f32_4096`` / ``jax_vs_numpy_f64_4096``: the JAX block (16 cells x 4,096
  paths, compile apart) against the NumPy reference (``kernels.reference``: active-set
  cascade, path-vectorised) in the same precision on the same 16 cells, one process each.
  JAX float64 runs in a subprocess with ``jax_enable_x64``.
- ``farm_vs_radcad_scalar``: a ``farm run`` (2 workers) against the scalar radCAD model
  (``radcad_model.py``: one Monte Carlo run per path, 2 processes, deep copy off and
  ``drop_substeps`` given to ``Engine(...)``), per path-step on the same 4 cells; radCAD runs
  fewer paths (its cost is linear in paths) and computes in Python floats (float64).
- ``farm_vs_radcad_vectorised``: the same farm run against radCAD with NumPy state over
  paths (``radcad_vector.py``: one run per cell, the reference's step, float32 like the
  farm, 2 processes), same cells and paths.
- ``farm_vs_numpy_pool``: the same farm run against a plain ``multiprocessing`` pool of 2
  processes over the cells running ``kernels.reference`` (float32), same cells and paths.
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from kernels import reference

from . import farm_bench, kernel, radcad_bench
from .cells import N_STEPS, T_DOF, bench_cells, radcad_cells, radcad_farm_overrides

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PATHS, CELLS = 4096, 16  # the kernel comparison
FARM_PATHS = 65536  # the farm / radCAD vectorised / pool comparison (4 radCAD cells): ~25
# million path-steps, so that the farm's one compile per worker (~7 s, included) weighs
# as it does in a real sweep rather than dominating a 2-second job
RADCAD_SCALAR_PATHS = 16  # one radCAD run per path: ~10^3 x slower, measured on fewer paths
TARGETS = {"jax_vs_numpy_f32_4096": 5.0, "jax_vs_numpy_f64_4096": 4.0,
           "farm_vs_radcad_vectorised": 10.0, "farm_vs_radcad_scalar": 300.0,
           "farm_vs_numpy_pool": 5.0}


def numpy_side(dtype: str, n_cells: int = CELLS, n_paths: int = PATHS) -> dict:
    """The reference on ``n_cells`` bench cells one after another in ``dtype``."""
    cells = bench_cells(n_cells)
    normals = np.random.default_rng(0).standard_normal((n_paths, N_STEPS, 3 + T_DOF))
    t0 = time.perf_counter()
    for p in cells:
        reference.simulate_paths(p, normals, T_DOF, dtype=dtype)
    dt = time.perf_counter() - t0
    return {"impl": f"numpy-{dtype}", "cells": n_cells, "paths": n_paths, "seconds": dt,
            "path_steps_per_s": n_cells * n_paths * N_STEPS / dt}


def jax_side(dtype: str, n_cells: int = CELLS, n_paths: int = PATHS) -> dict:
    """The compiled JAX block; float64 in a fresh interpreter with x64 enabled."""
    if dtype == "float32":
        return kernel.jax_row(n_cells, n_paths, "float32").to_dict()
    code = ("import jax, json; jax.config.update('jax_enable_x64', True);"
            "from benchmarks import kernel;"
            f"print(json.dumps(kernel.jax_row({n_cells}, {n_paths}, 'float64').to_dict()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pool_cell(args):
    p, path, dtype = args
    return reference.simulate_paths(p, np.load(path), T_DOF, dtype=dtype)


def numpy_pool(normals_path: str, dtype: str = "float32", processes: int = 2) -> dict:
    """A plain multiprocessing pool over the radCAD cells (pool start-up included)."""
    cells = radcad_cells()
    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(processes) as pool:
        outs = pool.map(_pool_cell, [(p, normals_path, dtype) for p in cells], chunksize=1)
    dt = time.perf_counter() - t0
    n_paths = outs[0]["drawdown_btc"].size
    return {"cells": len(cells), "paths": n_paths, "processes": processes, "dtype": dtype,
            "seconds": dt, "path_steps_per_s": len(cells) * n_paths * N_STEPS / dt,
            "outputs": outs}


def radcad_vectorised(normals_path: str, dtype: str = "float32", processes: int = 2) -> dict:
    py = radcad_bench.ensure_venv()
    cells = radcad_cells()
    with tempfile.TemporaryDirectory() as tmp:
        pj, oj = Path(tmp, "params.json"), Path(tmp, "out.json")
        pj.write_text(json.dumps([{k: np.asarray(v).tolist() for k, v in c._asdict().items()}
                                  for c in cells]))
        t0 = time.perf_counter()
        subprocess.run([str(py), str(HERE / "radcad_vector.py"), str(pj), normals_path, str(oj),
                        "--processes", str(processes), "--dtype", dtype], check=True,
                       capture_output=True, text=True)
        wall = time.perf_counter() - t0
        out = json.loads(oj.read_text())
    n_paths = out["paths"]
    return {"cells": len(cells), "paths": n_paths, "processes": processes, "dtype": dtype,
            "seconds": out["seconds"], "process_wall_s": wall,
            "path_steps_per_s": len(cells) * n_paths * N_STEPS / out["seconds"],
            "outputs": out["outputs"]}


def measure(farm_paths: int = FARM_PATHS, scalar_paths: int = RADCAD_SCALAR_PATHS) -> dict:
    out: dict = {"kernel": {}}
    for dtype, key in (("float32", "jax_vs_numpy_f32_4096"), ("float64", "jax_vs_numpy_f64_4096")):
        j, n = jax_side(dtype), numpy_side(dtype)
        log.info("%s: jax %.3g, numpy %.3g path-steps/s", dtype, j["path_steps_per_s"],
                 n["path_steps_per_s"])
        out["kernel"][dtype] = {"jax": j, "numpy": n}
        out[key] = j["path_steps_per_s"] / n["path_steps_per_s"]
    farm = farm_bench.same_cells_throughput(radcad_farm_overrides(farm_paths))
    farm = {**farm, "path_steps_per_s": farm["path_steps"] / farm["wall_s"]} if farm else None
    out["farm"] = farm  # compile included (no compile cache): the headline
    warm = farm_bench.same_cells_warm(radcad_farm_overrides(farm_paths))
    out["farm_warm"] = ({**warm, "path_steps_per_s": warm["path_steps"] / warm["wall_s"]}
                        if warm else None)
    with tempfile.TemporaryDirectory() as tmp:
        npath = str(Path(tmp, "normals.npy"))
        np.save(npath, np.random.default_rng(1).standard_normal((farm_paths, N_STEPS, 3 + T_DOF)))
        pool = numpy_pool(npath)
        vec = radcad_vectorised(npath)
    # radCAD vectorised runs the reference's step: its outputs are the pool's (same draws)
    dev = max(float(np.max(np.abs(np.asarray(vec["outputs"][k][i]) - o[k])
                           / max(float(np.max(np.abs(o[k]))), 1e-30)))
              for i, o in enumerate(pool.pop("outputs")) for k in o)
    vec.pop("outputs")
    vec["max_scaled_dev_vs_pool"] = dev
    scalar = radcad_bench.run_radcad(scalar_paths, processes=2)
    out.update(numpy_pool=pool, radcad_vectorised=vec, radcad_scalar=scalar)
    if farm:
        fps = farm["path_steps_per_s"]
        out["farm_vs_numpy_pool"] = fps / pool["path_steps_per_s"]
        out["farm_vs_radcad_vectorised"] = fps / vec["path_steps_per_s"]
        if scalar:
            out["farm_vs_radcad_scalar"] = fps / scalar["path_steps_per_s"]
    out["targets"] = TARGETS
    return out


def merge(results: dict, fair_res: dict) -> dict:
    """``results.json`` with this comparison in it: ``fair``, its five ratios at the top
    level, and the old unfair ratios renamed (kept for history only)."""
    out = dict(results)
    for old, new in (("jax_f32_vs_numpy_4096", "old_unfair_jax_f32_vs_numpy_f64_4096"),
                     ("farm_vs_radcad", "old_unfair_farm_vs_radcad")):
        if old in out:
            out[new] = out.pop(old)
    out.update({k: fair_res.get(k) for k in TARGETS}, fair=fair_res)
    return out


def main() -> int:
    """Measure, merge into ``benchmarks/results.json`` and print the markdown section."""
    from . import machine, report

    # compile times are measured, never loaded from the persistent compilation cache
    os.environ.setdefault("FARM_JAX_CACHE", "off")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    facts = machine.facts()
    res = measure()
    facts["load_at_end"] = machine.load_average()
    res.update(machine=facts, seconds=time.perf_counter() - t0)
    path = HERE / "results.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps(merge(old, res), indent=2, default=str) + "\n")
    print("\n".join(report.fair_section(res)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
