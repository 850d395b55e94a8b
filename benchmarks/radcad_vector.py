"""The cascade model in radCAD as its Monte Carlo users write it: NumPy state over paths.

One radCAD run per cell whose state variables are NumPy arrays over all paths (the state
dict of ``kernels.reference``), one policy per step that advances every path by
``kernels.reference.step`` (the compacted, path-vectorised NumPy model), one state-update
function per variable, radCAD's multiprocessing backend over the cells, with
``Engine(deepcopy=False, drop_substeps=True)`` passed at construction (where radCAD reads
them). Runs under ``benchmarks/.venv-radcad``; imports ``kernels.reference`` and
``kernels.params`` (NumPy only) from the repository root.
Usage: ``python radcad_vector.py PARAMS.json NORMALS.npy OUT.json [--processes N]
[--dtype float32|float64]``
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kernels import make_params, reference

T_DOF = 4
RADCAD_KEYS = ("timestep", "substep", "simulation", "subset", "run")  # radCAD's own
# (the reference's bank-run state "run" is "bank_run" here: radCAD owns the name "run")
NORMALS = None  # (n_paths, n_steps, 3 + t_dof) in the working dtype, loaded once (forked)


@functools.cache
def _cell(key: str):
    return make_params(json.loads(key))


def p_step(params, substep, state_history, prev):
    """One step of every path of the cell: exogenous returns of step ``t``, then the
    reference's step (cascade and bookkeeping)."""
    p, t = _cell(params["cell"]), prev["timestep"]
    if NORMALS is None:  # a fresh worker process: draws and dtype travel in the environment
        _init_worker(os.environ["RADCAD_NORMALS"], os.environ["RADCAD_DTYPE"])
    ret = reference.exogenous_returns(p._replace(jump_step=p.jump_step - t),
                                      NORMALS[:, t:t + 1], T_DOF)[:, 0]
    s = {k: v for k, v in prev.items() if k not in RADCAD_KEYS}
    s["run"] = s.pop("bank_run")
    n = reference.step(p, s, ret, t)
    n["bank_run"] = n.pop("run")
    return n


def _init_worker(path: str, dtype: str) -> None:
    global NORMALS
    reference._DT = np.dtype(dtype).type  # the working precision of the reference
    NORMALS = np.load(path).astype(dtype)


def _update(name, params, substep, state_history, prev, policy_input):
    return name, policy_input[name]


def main(argv: list[str]) -> None:
    from radcad import Backend, Engine, Experiment, Model, Simulation

    params_path, normals_path, out_path = argv[:3]
    processes = int(argv[argv.index("--processes") + 1]) if "--processes" in argv else 2
    dtype = argv[argv.index("--dtype") + 1] if "--dtype" in argv else "float32"
    cells = json.load(open(params_path))
    os.environ["RADCAD_NORMALS"], os.environ["RADCAD_DTYPE"] = normals_path, dtype
    _init_worker(normals_path, dtype)
    n_paths, n_steps = NORMALS.shape[:2]
    n_banks = len(cells[0]["bank_weights"])
    state = {**reference._start(n_paths, n_banks), "x": np.zeros((n_paths, 3), dtype)}
    state["bank_run"] = state.pop("run")
    blocks = [{"policies": {"step": p_step},
               "variables": {k: functools.partial(_update, k) for k in state}}]
    sims = [Simulation(model=Model(initial_state=state, state_update_blocks=blocks,
                                   params={"cell": [json.dumps(cell, sort_keys=True)]}),
                       timesteps=n_steps, runs=1) for cell in cells]
    engine = Engine(backend=Backend.MULTIPROCESSING, processes=processes, deepcopy=False,
                    drop_substeps=True)
    exp = Experiment(sims)
    exp.engine = engine  # radCAD 0.14's Experiment(engine=...) rejects its own keyword
    t0 = time.perf_counter()
    exp.run()
    finals = sorted((r for r in exp.results if r["timestep"] == n_steps),
                    key=lambda r: r["simulation"])
    paths = [reference.outputs(_cell(json.dumps(cell, sort_keys=True)),
                               {**r, "run": r["bank_run"]}, n_steps)
             for cell, r in zip(cells, finals, strict=True)]
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "cells": len(cells), "paths": n_paths, "steps": n_steps,
           "processes": processes, "dtype": dtype,
           "outputs": {k: [np.asarray(o[k], float).tolist() for o in paths] for k in paths[0]}}
    json.dump(out, open(out_path, "w"))


if __name__ == "__main__":
    main(sys.argv[1:])
