"""radCAD vs the farm on the same cells: a throwaway venv, the scalar model, the ratio.

radcad 0.14 pins numpy < 1.26.4, so it lives in ``benchmarks/.venv-radcad`` (git-ignored,
created with ``uv venv`` + ``uv pip install radcad==0.14.0`` when missing), never in
the project lock. radCAD runs far fewer paths than the farm (it is ~10^3-10^4 times
slower); both are compared per path-step on the same cells and the same kind of draws.
Its per-path outputs are checked against the JAX kernel (float64, the same draws).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .cells import N_STEPS, T_DOF, radcad_cells

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-radcad"
RADCAD_VERSION = "0.14.0"


def find_uv(path: str | None = None, home: Path | None = None) -> str | None:
    """uv as the Makefile finds it: on ``PATH`` (``path``, default ``$PATH``), else
    ``~/.local/bin/uv`` (where `make env` installs it with pip), when executable."""
    found = shutil.which("uv", path=path)
    if found:
        return found
    fallback = (home or Path.home()) / ".local" / "bin"
    return shutil.which("uv", path=str(fallback))


def ensure_venv() -> Path | None:
    """The radCAD interpreter, creating the venv when missing; None if it cannot be made."""
    py = VENV / "bin" / "python"
    if py.exists():
        return py
    uv = find_uv()
    if uv is None:
        log.warning("uv not found on PATH nor in ~/.local/bin: cannot create %s", VENV)
        return None
    try:
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "--python", str(py),
                        f"radcad=={RADCAD_VERSION}", "typing_extensions"], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log.warning("could not create the radCAD venv: %s", exc)
        return None
    return py


def radcad_version(py: Path) -> str:
    out = subprocess.run([str(py), "-c", "import importlib.metadata as m;"
                          "print(m.version('radcad'), m.version('numpy'))"],
                         capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


AGREE_RTOL, AGREE_ATOL = 1e-4, 1e-9
"""Agreement with the JAX kernel, per path, output and cell: ``|radCAD - kernel| <= RTOL
x scale + ATOL``, ``scale`` the largest ``|kernel|`` of that output over the cell's paths
(so a drawdown of a 0.2 scale agrees to 2e-5, a dollar flow to 1e-4 of the cell's largest
flow). Both solve each step's cascade by plain fixed-point iteration with the same
stopping rule, to ``tol = 1e-6`` in log prices, so per-path outputs differ by rounding
and by a few ``tol`` at most (measured: drawdowns <= 1.5e-6, any output <= 3e-5 of its scale,
on 64 paths); a knife-edge path on which that decides whether a later step tips would
show up here (docs/model.md section 5)."""

SOLVER_DEPENDENT = ("cascade_rounds_max",)
"""Outputs that depend on how the cascade is solved, not on the model: not compared."""


def kernel_paths(cells, normals: np.ndarray) -> list[dict[str, np.ndarray]]:
    """Per-path outputs of the JAX kernel (``simulate_cell`` under ``jax.jit``, float64) on
    the same draws."""
    import jax

    from kernels.simulate import simulate_cell

    x64 = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        fn = jax.jit(simulate_cell, static_argnames=("t_dof", "return_prices"))
        nm = jax.numpy.asarray(normals, jax.numpy.float64)
        return [{k: np.asarray(v) for k, v in fn(c, nm, T_DOF).items()} for c in cells]
    finally:
        jax.config.update("jax_enable_x64", x64)


def agreement(got: dict[str, list], ref: list[dict[str, np.ndarray]]) -> dict:
    """Largest deviations of radCAD's per-path outputs from the kernel's (see AGREE_RTOL)."""
    worst_abs, worst_scaled, bad = {}, {}, []
    for name in ref[0]:
        if name in SOLVER_DEPENDENT:
            continue
        a = np.asarray(got[name], dtype=float)  # (cells, paths)
        b = np.stack([r[name] for r in ref])
        err = np.abs(a - b)
        scale = np.max(np.abs(b), axis=1, keepdims=True)
        worst_abs[name] = float(np.max(err))
        worst_scaled[name] = float(np.max(err / np.maximum(scale, AGREE_ATOL)))
        if np.any(err > AGREE_RTOL * scale + AGREE_ATOL) or not np.all(np.isfinite(a)):
            bad.append(name)
    scaled_name = max(worst_scaled, key=worst_scaled.get)
    return {"max_abs_dev_drawdowns": max(v for k, v in worst_abs.items()
                                         if k.startswith("drawdown_")),
            "max_scaled_dev": worst_scaled[scaled_name], "max_scaled_dev_output": scaled_name,
            "outputs_compared": len(worst_abs), "rtol": AGREE_RTOL, "atol": AGREE_ATOL,
            "agrees": not bad, "disagreeing_outputs": bad, "max_abs_dev": worst_abs}


def run_radcad(n_paths: int, processes: int = 2) -> dict | None:
    """Run the radCAD model on the radCAD cells x ``n_paths`` paths; wall seconds and the
    largest deviations of its per-path outputs from the JAX kernel (float64) on the same
    draws."""
    py = ensure_venv()
    if py is None:
        return None
    cells = radcad_cells()
    n_cells = len(cells)
    normals = np.random.default_rng(1).standard_normal((n_paths, N_STEPS, 3 + T_DOF))
    with tempfile.TemporaryDirectory() as tmp:
        pj, nj, oj = Path(tmp, "params.json"), Path(tmp, "normals.npy"), Path(tmp, "out.json")
        json.dump([{k: np.asarray(v).tolist() for k, v in c._asdict().items()} for c in cells],
                  pj.open("w"))
        np.save(nj, normals)
        t0 = time.perf_counter()
        proc = subprocess.run([str(py), str(HERE / "radcad_model.py"), str(pj), str(nj), str(oj),
                               "--processes", str(processes)], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            log.warning("radCAD run failed: %s", proc.stderr[-2000:])
            return None
        out = json.load(oj.open())
    agree = agreement(out["outputs"], kernel_paths(cells, normals))
    if not agree["agrees"]:
        log.warning("radCAD disagrees with the JAX kernel beyond rtol %g / atol %g in %s",
                    AGREE_RTOL, AGREE_ATOL, agree["disagreeing_outputs"])
    ps = n_cells * n_paths * N_STEPS
    return {"cells": n_cells, "paths": n_paths, "steps": N_STEPS, "processes": processes,
            "seconds": out["seconds"], "process_wall_s": wall,
            "path_steps_per_s": ps / out["seconds"],
            "mean_rounds_per_step": out["mean_rounds_per_step"],
            "max_abs_dev_vs_kernel": agree["max_abs_dev"]["drawdown_btc"], "agreement": agree,
            "version": radcad_version(py)}
