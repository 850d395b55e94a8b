"""radCAD vs the farm on the same cells: a throwaway venv, the scalar model, the ratio.

radcad 0.14 pins numpy < 1.26.4, so it lives in ``benchmarks/.venv-radcad`` (git-ignored,
created with ``uv venv`` + ``uv pip install radcad==0.14.0`` when missing), never in
the project lock. radCAD runs far fewer paths than the farm (it is ~10^3-10^4 times
slower); both are compared per path-step on the same cells and the same kind of draws.
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

from kernels import reference

from .cells import N_STEPS, T_DOF, radcad_cells

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv-radcad"
RADCAD_VERSION = "0.14.0"


def ensure_venv() -> Path | None:
    """The radCAD interpreter, creating the venv when missing; None if it cannot be made."""
    py = VENV / "bin" / "python"
    if py.exists():
        return py
    uv = shutil.which("uv")
    if uv is None:
        log.warning("uv not found: cannot create %s", VENV)
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


def run_radcad(n_paths: int, processes: int = 2) -> dict | None:
    """Run the radCAD model on the radCAD cells x ``n_paths`` paths; wall seconds and the
    largest deviation of its btc drawdowns from the NumPy reference on the same draws."""
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
    dev = 0.0
    for c, got in zip(cells, out["drawdown_btc"], strict=True):
        ref = reference.simulate_paths(c, normals, T_DOF)["drawdown_btc"]
        dev = max(dev, float(np.max(np.abs(np.asarray(got) - ref))))
    ps = n_cells * n_paths * N_STEPS
    return {"cells": n_cells, "paths": n_paths, "steps": N_STEPS, "processes": processes,
            "seconds": out["seconds"], "process_wall_s": wall,
            "path_steps_per_s": ps / out["seconds"], "max_abs_dev_vs_reference": dev,
            "version": radcad_version(py)}
