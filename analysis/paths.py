"""Inputs and outputs of a fan-chart re-simulation, without importing the kernels.

A cube stores per-cell statistics, not price paths. To draw a fan chart for one cell
the caller re-simulates it (``kernels.simulate_cell(..., return_prices=True)``) from
the provenance kept in the cube: :func:`cell_parameters` gives the model values of
the cell (the resolved config's ``model`` section, swept axes replaced by the cell's
values) and the seeding facts; :func:`price_paths` turns the kernel's log prices
into price paths relative to the start for :func:`analysis.plots.plot_fan_chart`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
import yaml

from .cube import cell_table, cube_info, is_grid

__all__ = ["CellSpec", "cell_parameters", "price_paths"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellSpec:
    """What a re-simulation of one cell needs (units as in the model config)."""

    model: dict[str, Any]  # model parameter values, swept axes set to the cell's values
    cell_index: int  # flat index of the cell (C order over the cell dims)
    axis_values: dict[str, float]  # the cell's swept values (nearest to the request)
    root_seed: int | None
    seeding: str | None  # common | independent
    n_paths: int | None
    n_steps: int | None


def cell_parameters(
    ds: xr.Dataset, point: Mapping[str, float] | None = None, *, cell: int | None = None
) -> CellSpec:
    """Model values of the cell nearest to ``point`` (axis -> value, axes missing from it
    at their first value) or of flat cell index ``cell``.

    Nearest is per axis on grids and in the axis-range-rescaled space on sampled cubes.
    """
    info = cube_info(ds)
    try:
        model = dict((yaml.safe_load(info.config) or {}).get("model") or {})
    except (yaml.YAMLError, AttributeError):
        model = {}
    X, _, axes = cell_table(ds)
    if cell is None:
        point = dict(point or {})
        unknown = set(point) - set(axes)
        if unknown:
            raise KeyError(f"{sorted(unknown)} not swept in this cube; axes are {list(axes)}")
        cell = _nearest_cell(ds, X, axes, point)
    if not 0 <= cell < len(X):
        raise IndexError(f"cell must be in [0, {len(X)}), got {cell}")
    values = {a: float(X[cell, j]) for j, a in enumerate(axes)}
    model.update(values)
    return CellSpec(
        model, int(cell), values, info.root_seed, info.seeding, info.n_paths, info.n_steps
    )


def _nearest_cell(
    ds: xr.Dataset, X: np.ndarray, axes: tuple[str, ...], point: Mapping[str, float]
) -> int:
    if not axes:
        return 0
    if is_grid(ds):
        idx = []
        for a in axes:
            vals = np.asarray(ds[a].values, float)
            idx.append(int(np.argmin(np.abs(vals - point[a]))) if a in point else 0)
        return int(np.ravel_multi_index(idx, [ds.sizes[a] for a in axes]))
    span = np.where(np.ptp(X, axis=0) > 0, np.ptp(X, axis=0), 1.0)
    cols = [j for j, a in enumerate(axes) if a in point]
    target = np.array([point[axes[j]] for j in cols])
    d2 = (((X[:, cols] - target) / span[cols]) ** 2).sum(axis=1)
    return int(np.argmin(d2))


def price_paths(
    log_prices: np.ndarray,
    step_hours: float = 0.25,
    assets: tuple[str, ...] = ("btc", "alt", "eq"),
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Kernel log prices ``(n_steps, n_paths, n_assets)`` relative to the start ->
    ``(times, {asset: (n_paths, n_steps + 1) price / start price})``; ``times`` in
    hours, starting at 0 with price 1."""
    lp = np.asarray(log_prices, float)
    if lp.ndim != 3 or lp.shape[2] != len(assets):
        raise ValueError(f"log_prices must be (n_steps, n_paths, {len(assets)}), got {lp.shape}")
    n_steps, n_paths, _ = lp.shape
    times = np.arange(n_steps + 1) * float(step_hours)
    out = {}
    for k, a in enumerate(assets):
        path = np.concatenate([np.zeros((n_paths, 1)), lp[:, :, k].T], axis=1)
        out[a] = np.exp(path)
    return times, out
