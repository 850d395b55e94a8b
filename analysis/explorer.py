"""``farm explore``: a self-contained interactive HTML page to slice a cube.

The page embeds Plotly's JavaScript (it works offline) and the cube's numbers as JSON;
:file:`static/explorer.js` draws it. For a grid the analyst picks the two axes of the
surface and the variable, and sets every other axis with a slider; the probability
surfaces carry their tipping frontier (the contour at ``level``) and its Monte Carlo
band (the same contour of the Wilson 95 % bounds, dashed). Hovering a cell shows its
statistics; clicking it draws its fan chart (price paths re-simulated from the cube's
provenance, :func:`fan_charts`). A sampled design shows its cells as points over the
surface fitted to them (:func:`analysis.surface`), the other axes averaged out.
"""

from __future__ import annotations

import html
import json
import logging
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .cube import axes_of, cell_values, is_grid
from .surfaces import surface

__all__ = ["MAX_CELLS", "build_explorer", "explorer_data", "fan_charts"]

log = logging.getLogger(__name__)

MAX_CELLS = 250_000
"""Largest cube the page embeds whole (~2 MB of JSON per 100,000 cells and variable)."""
STAT_VARS = ("drawdown_btc", "drawdown_alt", "drawdown_eq", "bank_loss", "banks_failed",
             "run_share", "liquidated_long", "collateral_liquidated", "fund_equity_sold",
             "amplification")
"""Outputs offered besides the probabilities (their mean and 95th percentile)."""
FAN_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
FAN_EVERY = 2
"""Fan charts keep every second step (and the last) to 3 significant digits: ~3 KB per
cell, so a 1,440-cell cube's page is ~9 MB with plotly.js."""
STATIC = Path(__file__).with_name("static")


def _round(a: np.ndarray, digits: int = 5) -> list:
    """Rounded floats for JSON; NaN (a cell not computed) becomes null, never a number."""
    a = np.asarray(a, dtype=float)
    return [None if not np.isfinite(v) else float(f"{v:.{digits}g}") for v in a.ravel()]


def _var_entries(ds: xr.Dataset) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in ds.data_vars:
        if not str(name).startswith("p_") or str(name).endswith(("_lo", "_hi")):
            continue
        da = ds[name]
        entry = {"label": str(name), "long_name": da.attrs.get("long_name", ""),
                 "units": "probability", "values": _round(cell_values(ds, str(name)).values)}
        for side in ("lo", "hi"):
            if f"{name}_{side}" in ds:
                entry[side] = _round(cell_values(ds, f"{name}_{side}").values)
        out[str(name)] = entry
    for var in STAT_VARS:
        if var not in ds:
            continue
        for stat in ("mean", "q95"):
            da = cell_values(ds, var, stat)
            out[f"{var}:{stat}"] = {"label": f"{var} ({stat} over paths)",
                                    "long_name": ds[var].attrs.get("long_name", ""),
                                    "units": ds[var].attrs.get("units", ""),
                                    "values": _round(da.values)}
    return out


def _axis_entries(ds: xr.Dataset, axes: tuple[str, ...]) -> list[dict[str, Any]]:
    out = []
    for a in axes:
        coord = ds[a]
        vals = np.unique(coord.values) if not is_grid(ds) else coord.values
        out.append({"name": a, "values": _round(vals, 6),
                    "long_name": coord.attrs.get("long_name", ""),
                    "units": coord.attrs.get("units", "")})
    return out


def _fitted_surfaces(ds: xr.Dataset, axes: tuple[str, ...], names: list[str],
                     resolution: int = 24) -> dict[str, Any]:
    """For a sampled design: per axis pair and variable, the surface fitted to the cells
    (other axes averaged), on a ``resolution`` x ``resolution`` grid."""
    out: dict[str, Any] = {}
    for x, y in combinations(axes, 2):
        for name in names:
            var, _, stat = name.partition(":")
            try:
                s = surface(ds, var, x, y, stat=stat or None, resolution=resolution)
            except (ValueError, KeyError) as exc:
                log.info("no fitted surface of %s over (%s, %s): %s", name, x, y, exc)
                continue
            out[f"{x}|{y}|{name}"] = {"x": _round(s[x].values, 6), "y": _round(s[y].values, 6),
                                      "z": _round(s.values)}
    return out


def fan_charts(ds: xr.Dataset, cells: np.ndarray, n_paths: int = 64) -> dict[str, Any]:
    """Quantiles of btc and equity prices over time for ``cells``, re-simulated from the
    cube's provenance with the first ``n_paths`` paths of the cube's own draws."""
    from .paths import price_paths
    from .resim import resimulate

    out: dict[str, Any] = {"quantiles": list(FAN_QUANTILES), "cells": {}}
    for c in np.asarray(cells, dtype=int):
        res, spec = resimulate(ds, cell=int(c), n_paths=min(n_paths, int(ds.attrs["n_paths"])))
        times, prices = price_paths(res.prices[0], float(spec.model.get("step_hours", 0.25)))
        keep = np.unique(np.r_[np.arange(0, len(times), FAN_EVERY), len(times) - 1])
        out["times"] = _round(times[keep], 6)
        out["cells"][str(int(c))] = {
            a: [_round(np.quantile(prices[a][:, keep], q, axis=0), 3) for q in FAN_QUANTILES]
            for a in ("btc", "eq")}
    return out


def explorer_data(ds: xr.Dataset, level: float = 0.5, fan_cells: int = 0) -> dict[str, Any]:
    """Everything the page shows, as plain JSON-able values."""
    axes = axes_of(ds)
    n = int(np.prod([ds.sizes[d] for d in ds["status"].dims])) if "status" in ds else 0
    if n > MAX_CELLS:
        raise ValueError(f"the cube has {n:,} cells; the explorer embeds at most "
                         f"{MAX_CELLS:,}: select a part first (--sel AXIS=VALUE)")
    if not axes:
        raise ValueError("the cube has no swept axis: nothing to explore (farm report shows it)")
    grid = is_grid(ds)
    variables = _var_entries(ds)
    data: dict[str, Any] = {
        "title": ds.attrs.get("title", "farm cube"), "grid": grid, "level": float(level),
        "axes": _axis_entries(ds, axes), "vars": variables,
        "shape": [int(ds.sizes[a]) for a in axes] if grid else [n],
        "n_paths": int(ds.attrs.get("n_paths", 0)),
    }
    if not grid:
        data["points"] = {a: _round(ds[a].values, 6) for a in axes}
        if "wave" in ds.coords and "replicate" in ds.coords:  # an adaptive sweep's cells
            data["wave"] = np.asarray(ds["wave"].values, int).tolist()
            data["replicate"] = np.asarray(ds["replicate"].values, int).tolist()
        data["fitted"] = _fitted_surfaces(ds, axes, [v for v in variables
                                                     if not v.endswith(("_lo", "_hi"))][:6])
    if fan_cells and n <= fan_cells:
        data["fan"] = fan_charts(ds, np.arange(n))
    return data


def build_explorer(ds: xr.Dataset, path: str | Path, *, level: float = 0.5,
                   fan_cells: int = 2048) -> Path:
    """Write the self-contained explorer page for ``ds`` to ``path``; return it."""
    from plotly.offline import get_plotlyjs

    data = explorer_data(ds, level=level, fan_cells=fan_cells)
    parts = {"/*PLOTLY*/": get_plotlyjs(), "/*EXPLORER*/": (STATIC / "explorer.js").read_text(),
             "/*DATA*/": json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
             "{{TITLE}}": html.escape(str(data["title"]))}
    # one pass, so nothing inserted is searched for markers again
    page = re.sub("|".join(re.escape(k) for k in parts), lambda m: parts[m.group(0)],
                  (STATIC / "explorer.html").read_text())
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    log.info("explorer written to %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return path
