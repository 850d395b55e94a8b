"""Synthetic farm cubes with known answers, for tests and examples.

:func:`write_synthetic_cube` writes a Zarr store in the exact layout of
docs/internal-contracts.md ("the cube"): cell dims (+ ``stat``), ``VAR(cell_dims...,
stat)`` float32 per-path statistics, ``p_*(cell_dims...)`` float32 probabilities,
``status(cell_dims...)`` int8, axis coords (grid) or ``cell`` + per-cell parameter
coords (sampled), provenance attrs with JSON ``design``/``versions``/``failed_blocks``,
per-variable ``units``/``description`` attrs (probabilities: UDUNITS ``"1"``,
``long_name`` and ``valid_range`` [0, 1], as the farm writes them) and the CF
``long_name``/``units`` of every model-parameter axis. Values are given as functions of the
axis values, so the analysis can be checked against closed-form answers. The ``stat``
labels are the kernel's own (:data:`kernels.outputs.STATS`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from kernels.cfunits import udunits, unit_note
from kernels.cubeformat import FARM_FORMAT, grid_chunks
from kernels.outputs import STATS
from kernels.paramspec import SPECS

from .intervals import wilson

__all__ = ["STATS", "grid_design", "write_synthetic_cube"]

ValueSpec = Callable[..., np.ndarray] | np.ndarray | float


def grid_design(shape: tuple[int, ...], block_cells: int) -> tuple[int, ...]:
    """Chunk shape of the contract's grid chunking (:func:`kernels.cubeformat.grid_chunks`,
    the farm's own rule)."""
    return grid_chunks(shape, block_cells)


def _evaluate(spec: ValueSpec, params: Mapping[str, np.ndarray], shape: tuple[int, ...]):
    value = spec(**params) if callable(spec) else spec
    return np.broadcast_to(np.asarray(value, dtype=np.float64), shape)


def write_synthetic_cube(
    path: str | Path,
    variables: Mapping[str, ValueSpec],
    *,
    grid: Mapping[str, np.ndarray] | None = None,
    samples: Mapping[str, np.ndarray] | None = None,
    method: str | None = None,
    block_cells: int = 64,
    status: np.ndarray | None = None,
    failed_blocks: Mapping[int, str] | None = None,
    design_extra: Mapping[str, Any] | None = None,
    n_paths: int = 256,
    n_steps: int = 96,
    consolidated: bool = True,
    bounds: bool = False,
) -> Path:
    """Write a synthetic cube and return its path.

    Parameters
    ----------
    variables:
        name -> function of the axis values (keyword arguments, broadcast over the cell
        dims), array, or constant. ``p_*`` names become probabilities over the cell
        dims; any other name gets a ``stat`` dimension whose ``mean``/``q50`` are the
        value (``std`` = 10 % of |value|, ``se`` = std / sqrt(n_paths), quantiles spread
        around it).
    grid / samples:
        exactly one: axis -> grid values (grid cube) or axis -> per-cell values
        (sampled cube, ``cell`` dim). ``samples={}`` with ``method="grid"`` is the
        one-cell cube of ``sweep=single`` (dims ``("cell",)``, no axes).
    method:
        design method attr (default ``grid`` or ``lhs``).
    status:
        per-cell status (0 pending, 1 done, 2 failed) over the cell dims; default all
        done. Cells not done get the sentinel value 999 in every variable so that a
        reader that does not mask them is caught. 3 (done, flagged) counts as done.
    bounds:
        also write each probability's Wilson 95 % bounds ``p_x_lo``/``p_x_hi`` (from
        ``n_paths``), as the farm does; without them the cube looks like one written
        before the bounds were stored.
    """
    if (grid is None) == (samples is None):
        raise ValueError("give exactly one of grid= or samples=")
    path = Path(path)
    if grid is not None:
        axes = tuple(grid)
        coords: dict[str, Any] = {a: np.asarray(v, np.float64) for a, v in grid.items()}
        cell_dims = axes
        shape = tuple(len(v) for v in coords.values())
        mesh = np.meshgrid(*coords.values(), indexing="ij")
        params = dict(zip(axes, mesh, strict=True))
        chunks = grid_design(shape, block_cells)
        method = method or "grid"
    else:
        assert samples is not None
        axes = tuple(samples)
        n = len(next(iter(samples.values()))) if samples else 1  # {}: sweep=single
        cell_dims = ("cell",)
        shape = (n,)
        coords = {"cell": np.arange(n)}
        coords.update({a: ("cell", np.asarray(v, np.float64)) for a, v in samples.items()})
        params = {a: np.asarray(v, np.float64) for a, v in samples.items()}
        chunks = (min(block_cells, n),)
        method = method or "lhs"
    status_arr = np.ones(shape, np.int8) if status is None else np.asarray(status, np.int8)
    not_done = ~np.isin(status_arr, (1, 3))

    data_vars: dict[str, Any] = {}
    for name, spec in variables.items():
        value = _evaluate(spec, params, shape).copy()
        if name.startswith("p_"):
            probs = {name: value}
            if bounds:
                probs[f"{name}_lo"], probs[f"{name}_hi"] = wilson(value, n_paths)
            for key, v in probs.items():
                v = np.where(not_done, 999.0, v)
                attrs = {"units": "1", "long_name": f"synthetic {key}",
                         "description": f"synthetic {key}", "valid_range": [0.0, 1.0]}
                data_vars[key] = (cell_dims, v.astype(np.float32), attrs)
        else:
            value[not_done] = 999.0
            spread = 0.1 * np.abs(value)
            by_stat = {
                "mean": value,
                "std": spread,
                "se": spread / math.sqrt(n_paths),
                "q05": value - 2 * spread,
                "q50": value,
                "q95": value + 2 * spread,
                "q99": value + 3 * spread,
                "es99": value + 3.5 * spread,
            }
            attrs = {"units": "fraction", "description": f"synthetic {name}"}
            arr = np.stack([by_stat[s] for s in STATS], axis=-1).astype(np.float32)
            data_vars[name] = ((*cell_dims, "stat"), arr, attrs)
    data_vars["status"] = (cell_dims, status_arr,
                           {"description": "0 pending, 1 done, 2 failed, 3 done (flagged)"})
    coords["stat"] = np.array(STATS)
    n_cells = int(np.prod(shape))
    n_blocks = int(np.prod([math.ceil(s / c) for s, c in zip(shape, chunks, strict=True)]))
    design = {
        "method": method,
        "axes": list(axes),
        "cell_dims": list(cell_dims),
        "shape": list(shape),
        "chunks": list(chunks),
        "n_cells": n_cells,
        "n_blocks": n_blocks,
        **dict(design_extra or {}),
    }
    ds = xr.Dataset(data_vars, coords=coords)
    for a in axes:  # CF attributes of a model parameter, as the farm writes them
        if a in SPECS:
            note = unit_note(SPECS[a].unit)
            ds[a].attrs = {"long_name": SPECS[a].description + (f" ({note})" if note else ""),
                           "units": udunits(SPECS[a].unit)}
    ds.attrs = {
        "farm_format": FARM_FORMAT,
        "config": "model:\n  leverage: 1.0\n  correlation: 0.5\n  fed_put: 0.0\n"
        "  integration: 0.0\n",
        "config_hash": "synthetic",
        "design": json.dumps(design),
        "root_seed": 0,
        "seeding": "common",
        "n_paths": n_paths,
        "n_steps": n_steps,
        "versions": json.dumps({"python": "synthetic"}),
        "jax_prng_impl": "threefry2x32",
        "git_commit": "0" * 40,
        "created": "2025-10-10T00:00:00Z",
        "failed_blocks": json.dumps({str(k): v for k, v in (failed_blocks or {}).items()}),
    }
    encoding = {}
    for name, (dims, _arr, _attrs) in data_vars.items():
        encoding[name] = {"chunks": tuple(chunks) + ((len(STATS),) if "stat" in dims else ())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, mode="w", encoding=encoding, consolidated=consolidated)
    return path
