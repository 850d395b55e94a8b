"""The cells every benchmark runs: Oct-2025 calibration on a leverage x correlation grid."""

from __future__ import annotations

import numpy as np

from kernels import ModelParams, make_params, stack_params
from kernels.params import oct2025

N_STEPS = 96
T_DOF = 4


def bench_cells(n: int) -> list[ModelParams]:
    """``n`` cells: leverage 0.5..2.5 x correlation {0.2, 0.5, 0.8} (C order), deterministic."""
    base = oct2025()._asdict()
    corr = (0.2, 0.5, 0.8)
    levs = np.linspace(0.5, 2.5, max(1, -(-n // len(corr))))
    grid = [(float(lv), c) for lv in levs for c in corr][:n]
    return [make_params({**base, "leverage": lv, "correlation": c}) for lv, c in grid]


def bench_block(n: int) -> ModelParams:
    return stack_params(bench_cells(n))


RADCAD_AXES = {"leverage": (1.0, 2.0), "correlation": (0.2, 0.8)}
"""The small sweep radCAD and the farm both run (a 2 x 2 grid on the Oct-2025 model)."""


def radcad_cells() -> list[ModelParams]:
    base = oct2025()._asdict()
    return [make_params({**base, "leverage": lv, "correlation": c})
            for lv in RADCAD_AXES["leverage"] for c in RADCAD_AXES["correlation"]]


def radcad_farm_overrides(n_paths: int) -> list[str]:
    """``farm run`` overrides for the same cells (one block per cell, so both workers work)."""
    axes = ",".join(f"{k}:[{','.join(map(str, v))}]" for k, v in RADCAD_AXES.items())
    return ["model=oct2025", "sweep=smoke", f"sweep.axes={{{axes}}}", f"sweep.paths={n_paths}",
            "runtime.block_cells=1"]
