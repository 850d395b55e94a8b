"""Analysis of farm cubes: open, slice into surfaces, find tipping frontiers, rank
parameters, discover systemic scenarios, plot and report.

Interface contract::

    ds = analysis.open_cube("results/default.zarr")          # lazy xarray Dataset
    analysis.critical_leverage(ds, level=0.5, var="p_systemic")  # over the other axes
    analysis.frontier(ds, "leverage", "integration", level=0.5, var="p_systemic")

Nothing here imports ``farm``; of ``kernels`` only the output contract
(:mod:`kernels.outputs`, no JAX) is read, by :mod:`analysis.testing`, and
:func:`analysis.resimulate` runs the kernel. Plotting imports matplotlib lazily
through :mod:`analysis.plots` and :mod:`analysis.report`.
"""

from __future__ import annotations

import importlib
from typing import Any

from .bands import (
    DRAW_DIM,
    critical_leverage_sobol,
    critical_leverage_uncertainty,
    frontier_band,
    parameter_band,
)
from .cube import (
    CubeInfo,
    IncompleteCubeError,
    NotAFarmCubeError,
    axes_of,
    cell_table,
    cell_values,
    cube_info,
    is_grid,
    open_cube,
)
from .discovery import PrimBox, boxes_table, prim, prim_boxes
from .intervals import critical_leverage_band, probability_bounds, probability_names, surface_band
from .paths import CellSpec, cell_parameters, price_paths
from .sensitivity import (
    SobolIndices,
    VarianceDecomposition,
    sensitivity,
    sobol_indices,
    sobol_pce,
    variance_decomposition,
)
from .surfaces import critical_leverage, crossing, frontier, profile, regrid, surface, value_at

_LAZY = {
    "build_report": "report",
    "headlines": "report",
    "neutral_values": "report",
    "plot_critical_leverage": "plots",
    "plot_fan_chart": "plots",
    "plot_frontiers": "plots",
    "plot_heatmap": "plots",
    "plot_sensitivity": "plots",
    "resimulate": "resim",
}

__all__ = [
    "DRAW_DIM",
    "CellSpec",
    "CubeInfo",
    "IncompleteCubeError",
    "NotAFarmCubeError",
    "PrimBox",
    "SobolIndices",
    "VarianceDecomposition",
    "axes_of",
    "boxes_table",
    "cell_parameters",
    "cell_table",
    "cell_values",
    "critical_leverage",
    "critical_leverage_band",
    "critical_leverage_sobol",
    "critical_leverage_uncertainty",
    "frontier_band",
    "crossing",
    "cube_info",
    "frontier",
    "is_grid",
    "open_cube",
    "price_paths",
    "parameter_band",
    "prim",
    "prim_boxes",
    "probability_bounds",
    "probability_names",
    "profile",
    "resimulate",
    "regrid",
    "sensitivity",
    "sobol_indices",
    "sobol_pce",
    "surface_band",
    "surface",
    "value_at",
    "variance_decomposition",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    """Import the matplotlib-based modules only when one of their names is used."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
