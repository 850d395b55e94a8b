"""Systemic-risk surfaces: 2-D slices, marginal profiles, critical leverage, frontiers.

Grid cubes are sliced exactly: axes in ``fixed`` are selected by nearest value, the
other axes not plotted are reduced (``mean`` = marginal over the grid, or ``median``,
``min``, ``max``). Sampled cubes (``cell`` dim) are evaluated on a regular grid by
one of (see :mod:`analysis._scatter`; coordinates rescaled to [0, 1] per axis):

* ``method="gp"`` (the default for a probability of an adaptive cube): the level-set
  surrogate of :mod:`analysis.levelset` (a Gaussian process on logit p with each
  cell's binomial variance, replicates pooled); ``gp_lower``/``gp_upper``: the ends of
  its 95 % band (Monte Carlo and surrogate error together).
* ``method="linear"`` (default otherwise): barycentric interpolation on the Delaunay
  triangulation of the cells, like ``scipy.interpolate.griddata`` (exact at the
  cells; local linear regression outside their convex hull).
* ``method="local"``: local linear regression on the 16 nearest cells
  (inverse-distance weighted, clipped to their range): smooths Monte Carlo noise,
  at the price of a bias where the response is steep relative to the cell spacing.
* ``method="nearest"``: the value of the nearest cell.

  With these, axes in ``fixed`` are evaluated at their value and the remaining axes
  are reduced over ``n_quad`` scrambled-Sobol quadrature nodes spanning their range.
* ``method="bin"`` (:func:`surface`; :func:`profile` always bins): cells averaged per
  (y, x) bin, which marginalises the other axes over the sample; axes in ``fixed``
  keep only the cells within ``fixed_tol`` x (axis range) of the value.

Values keep the units of the variable (probabilities for ``p_*``, fractions for
drawdowns, US dollars for money); axis coordinates are in parameter units.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import contourpy
import numpy as np
import xarray as xr

from ._scatter import bin_2d, check_reduce, default_method, sampled_eval
from .cube import axes_of, cell_table, cell_values, is_grid

__all__ = [
    "critical_leverage",
    "crossing",
    "frontier",
    "profile",
    "regrid",
    "surface",
    "value_at",
]

log = logging.getLogger(__name__)

MAX_REGRID = 2_000_000
"""Most points :func:`regrid` evaluates a sampled cube on with one ``resolution`` for
every axis (six axes at 21 points would be 86 million): fewer points per axis beyond."""


def _check_axes(axes: tuple[str, ...], *names: str) -> None:
    for n in names:
        if n not in axes:
            raise KeyError(f"axis {n!r} is not swept in this cube; axes are {list(axes)}")
    if len(set(names)) != len(names):
        raise ValueError(f"axes must differ, got {names}")


def _grid_reduce(
    da: xr.DataArray, keep: tuple[str, ...], fixed: Mapping[str, float], reduce: str
) -> xr.DataArray:
    """Select ``fixed`` axes by nearest value and reduce every other non-kept dim."""
    check_reduce(reduce)
    actual = {}
    for k, v in fixed.items():
        da = da.sel({k: v}, method="nearest")
        actual[k] = float(da[k])
    others = [d for d in da.dims if d not in keep]
    if others:
        da = getattr(da, reduce)(others, skipna=True)
    da = da.drop_vars([c for c in da.coords if c not in da.dims])
    da.attrs["fixed"] = actual
    da.attrs["reduced"] = others
    return da


def _auto_resolution(n: int) -> int:
    return int(np.clip(np.sqrt(n / 4.0), 5, 41))


def _cf(da: xr.DataArray) -> dict:
    """The CF attributes a derived surface keeps from its variable."""
    return {k: da.attrs[k] for k in ("long_name", "valid_range") if k in da.attrs}


def surface(
    ds: xr.Dataset,
    var: str,
    x: str,
    y: str,
    stat: str | None = None,
    fixed: Mapping[str, float] | None = None,
    reduce: str = "mean",
    *,
    method: str | None = None,
    resolution: int | None = None,
    fixed_tol: float = 0.1,
    n_quad: int = 64,
) -> xr.DataArray:
    """2-D slice of ``var`` over axes ``x`` and ``y``: a DataArray with dims ``(y, x)``.

    ``fixed``: axis -> value (nearest grid value, or see the module doc for sampled
    cubes); every other axis is reduced with ``reduce``. ``method``, ``resolution``
    (points per axis), ``fixed_tol`` and ``n_quad`` apply to sampled cubes only. The
    result's attrs record ``var``, ``stat``, the actual ``fixed`` values and ``units``.
    """
    fixed = dict(fixed or {})
    axes = axes_of(ds)
    _check_axes(axes, x, y, *fixed)
    check_reduce(reduce)
    units = ds[var].attrs.get("units", "")
    if is_grid(ds):
        out = _grid_reduce(cell_values(ds, var, stat), (x, y), fixed, reduce).transpose(y, x)
        out = out.load()
    else:
        out = _sampled_surface(
            ds, var, x, y, stat, fixed, reduce, method, resolution, fixed_tol, n_quad
        )
    out.name = var
    out.attrs.update({"var": var, "stat": stat or "", "units": units, "reduce": reduce,
                      **_cf(ds[var])})
    return out


def _sampled_surface(
    ds, var, x, y, stat, fixed, reduce, method, resolution, fixed_tol, n_quad
) -> xr.DataArray:
    X, vals, axes = cell_table(ds, var, stat)
    assert vals is not None
    ix, iy = axes.index(x), axes.index(y)
    lo, hi = np.nanmin(X, axis=0), np.nanmax(X, axis=0)
    n = resolution or _auto_resolution(int(np.isfinite(vals).sum()))
    if method == "bin":
        keep = np.isfinite(vals)
        for k, v in fixed.items():
            j = axes.index(k)
            keep &= np.abs(X[:, j] - v) <= fixed_tol * (hi[j] - lo[j])
        if not keep.any():
            raise ValueError(f"no cells within fixed_tol={fixed_tol} of {fixed}; widen it")
        xe = np.linspace(lo[ix], hi[ix], n + 1)
        ye = np.linspace(lo[iy], hi[iy], n + 1)
        z = bin_2d(X[keep, ix], X[keep, iy], vals[keep], xe, ye, reduce)
        xs, ys = (xe[:-1] + xe[1:]) / 2, (ye[:-1] + ye[1:]) / 2
    else:
        xs, ys = np.linspace(lo[ix], hi[ix], n), np.linspace(lo[iy], hi[iy], n)
        z = sampled_eval(ds, var, stat, {y: ys, x: xs}, fixed, reduce, method, n_quad)
    out = xr.DataArray(z, dims=(y, x), coords={y: ys, x: xs})
    out.attrs.update(
        {
            "fixed": dict(fixed),
            "method": method or default_method(ds, var),
            "reduced": [a for a in axes if a not in (x, y, *fixed)],
        }
    )
    return out


def profile(
    ds: xr.Dataset,
    var: str,
    x: str,
    stat: str | None = None,
    fixed: Mapping[str, float] | None = None,
    reduce: str = "mean",
    *,
    resolution: int | None = None,
    fixed_tol: float = 0.1,
) -> xr.DataArray:
    """1-D marginal of ``var`` along axis ``x`` (dims ``(x,)``); other axes fixed or reduced.

    Sampled cubes are binned along ``x`` (``resolution`` bins).
    """
    fixed = dict(fixed or {})
    axes = axes_of(ds)
    _check_axes(axes, x, *fixed)
    if is_grid(ds):
        out = _grid_reduce(cell_values(ds, var, stat), (x,), fixed, reduce).load()
    else:
        X, vals, _ = cell_table(ds, var, stat)
        assert vals is not None
        keep = np.isfinite(vals)
        lo, hi = X.min(axis=0), X.max(axis=0)
        for k, v in fixed.items():
            j = axes.index(k)
            keep &= np.abs(X[:, j] - v) <= fixed_tol * (hi[j] - lo[j])
        j = axes.index(x)
        n = resolution or _auto_resolution(int(keep.sum()) * 4)
        edges = np.linspace(lo[j], hi[j], n + 1)
        z = bin_2d(X[keep, j], np.zeros(keep.sum()), vals[keep], edges, [-1.0, 1.0], reduce)
        out = xr.DataArray(z[0], dims=(x,), coords={x: (edges[:-1] + edges[1:]) / 2})
        out.attrs["fixed"] = fixed
    out.name = var
    out.attrs.update({"var": var, "stat": stat or "", "units": ds[var].attrs.get("units", ""),
                      **_cf(ds[var])})
    return out


def value_at(
    ds: xr.Dataset,
    var: str,
    point: Mapping[str, float],
    stat: str | None = None,
    *,
    method: str | None = None,
    n_quad: int = 64,
) -> float:
    """``var`` at one point of parameter space (axis -> value): nearest grid value, or
    interpolated for sampled cubes; axes absent from ``point`` are averaged."""
    axes = axes_of(ds)
    _check_axes(axes, *point)
    if is_grid(ds):
        da = _grid_reduce(cell_values(ds, var, stat), (), point, "mean")
        return float(da)
    z = sampled_eval(ds, var, stat, {}, point, "mean", method, n_quad)
    return float(z)


def regrid(
    ds: xr.Dataset,
    var: str,
    *,
    stat: str | None = None,
    resolution: int | Mapping[str, int] = 21,
    method: str | None = None,
) -> xr.DataArray:
    """``var`` on a regular grid over all axes (grid cubes: returned as stored).

    Sampled cubes are interpolated (``local``, ``linear`` or ``nearest``) at ``resolution``
    evenly spaced points per axis (an int, or axis -> int) spanning the sampled range.
    """
    if is_grid(ds):
        return cell_values(ds, var, stat).load()
    X, _, axes = cell_table(ds)
    res = resolution if isinstance(resolution, Mapping) else dict.fromkeys(axes, resolution)
    if not isinstance(resolution, Mapping) and resolution ** len(axes) > MAX_REGRID:
        res = dict.fromkeys(axes, max(2, int(MAX_REGRID ** (1 / len(axes)))))
        log.info("regrid: %d points per axis over %d axes (%d^%d would exceed %d points); "
                 "pass resolution={axis: n} to choose", res[axes[0]], len(axes), resolution,
                 len(axes), MAX_REGRID)
    grids = {
        a: np.linspace(X[:, j].min(), X[:, j].max(), int(res.get(a, 21)))
        for j, a in enumerate(axes)
    }
    z = sampled_eval(ds, var, stat, grids, {}, "mean", method, 1)
    out = xr.DataArray(z, dims=axes, coords=grids, name=var)
    out.attrs.update(ds[var].attrs)
    return out


def crossing(da: xr.DataArray, axis: str, level: float) -> xr.DataArray:
    """Smallest value of ``axis`` where ``da`` first reaches ``level`` (>=), by linear
    interpolation between the last grid point below and the first at/above; the
    axis minimum when the first point already reaches it; NaN where it never does."""
    if axis not in da.dims:
        raise KeyError(f"{axis!r} is not a dimension of {da.name!r}: {da.dims}")
    da = da.sortby(axis)
    xs = np.asarray(da[axis].values, float)
    v = np.moveaxis(np.asarray(da.values, float), da.dims.index(axis), -1)
    reach = v >= level
    hit = reach.any(axis=-1)
    i1 = reach.argmax(axis=-1)
    i0 = np.maximum(i1 - 1, 0)
    v1 = np.take_along_axis(v, i1[..., None], -1)[..., 0]
    v0 = np.take_along_axis(v, i0[..., None], -1)[..., 0]
    x1, x0 = xs[i1], xs[i0]
    ok = (i1 > 0) & np.isfinite(v0)
    with np.errstate(invalid="ignore", divide="ignore"):
        interp = np.where(ok, x0 + (level - v0) * (x1 - x0) / (v1 - v0), x1)
    out_dims = [d for d in da.dims if d != axis]
    result = xr.DataArray(
        np.where(hit, interp, np.nan), dims=out_dims, coords={d: da[d] for d in out_dims}
    )
    return result


def critical_leverage(
    ds: xr.Dataset | xr.DataArray,
    level: float = 0.5,
    var: str = "p_systemic",
    axis: str = "leverage",
    *,
    fixed: Mapping[str, float] | None = None,
    stat: str | None = None,
    resolution: int | Mapping[str, int] = 21,
    method: str | None = None,
) -> xr.DataArray:
    """Critical leverage: for every combination of the other axes, the smallest value of
    ``axis`` (leverage multiplier vs Oct 2025) at which ``var`` reaches ``level``,
    linearly interpolated along ``axis``; NaN where it never does within the swept range.

    Accepts a cube or a DataArray already on a grid. ``fixed`` (axis -> value) pins
    other axes (nearest grid value) instead of returning them as dimensions. Sampled
    cubes are interpolated onto a grid first (``method``, ``resolution`` points per
    axis, see :func:`regrid`). Returns a DataArray over the remaining other axes (0-d
    when none remain), in units of ``axis``.
    """
    fixed = dict(fixed or {})
    if isinstance(ds, xr.Dataset):
        _check_axes(axes_of(ds), axis, *fixed)
        if is_grid(ds) or not fixed:
            da = regrid(ds, var, stat=stat, resolution=resolution, method=method)
        else:
            X, _, axes = cell_table(ds)
            res = resolution if isinstance(resolution, Mapping) else {}
            n = resolution if isinstance(resolution, int) else 21
            grids = {
                a: np.linspace(X[:, j].min(), X[:, j].max(), int(res.get(a, n)))
                for j, a in enumerate(axes)
                if a not in fixed
            }
            z = sampled_eval(ds, var, stat, grids, fixed, "mean", method, 1)
            da = xr.DataArray(z, dims=tuple(grids), coords=grids, attrs={"fixed": fixed})
            fixed = {}
    else:
        da = ds
    if fixed:
        da = _grid_reduce(da, tuple(d for d in da.dims if d not in fixed), fixed, "mean")
    out = crossing(da, axis, level)
    out.name = f"critical_{axis}"
    out.attrs.update(
        {
            "var": var,
            "level": level,
            "axis": axis,
            "fixed": da.attrs.get("fixed", {}),
            "description": f"smallest {axis} at which {var} >= {level}",
        }
    )
    return out


def frontier(
    ds: xr.Dataset | xr.DataArray,
    x: str | None = None,
    y: str | None = None,
    level: float = 0.5,
    var: str = "p_systemic",
    fixed: Mapping[str, float] | None = None,
    *,
    stat: str | None = None,
    reduce: str = "mean",
    **surface_kw,
) -> xr.DataArray:
    """Tipping frontier: the contour where ``var`` crosses ``level`` in the (x, y) plane.

    Computed with contourpy on :func:`surface` (or on a given 2-D DataArray, whose
    dims are taken as ``(y, x)``). Returns a DataArray of shape (n_points, 2), dims
    ``("point", "coord")`` with ``coord = [x, y]`` and a ``segment`` coordinate on
    ``point`` numbering the separate contour lines; zero points when ``var`` never
    crosses ``level`` in the plane.
    """
    if isinstance(ds, xr.Dataset):
        if x is None or y is None:
            raise ValueError("frontier(ds, x, y, ...) needs both axes")
        surf = surface(ds, var, x, y, stat=stat, fixed=fixed, reduce=reduce, **surface_kw)
    else:
        surf = ds
        y, x = (str(d) for d in surf.dims) if x is None or y is None else (y, x)
        surf = surf.transpose(y, x)
    surf = surf.sortby(x).sortby(y)
    z = np.ma.masked_invalid(np.asarray(surf.values, float))
    xs, ys = np.asarray(surf[x].values, float), np.asarray(surf[y].values, float)
    lines: list[np.ndarray] = []
    if min(z.shape) >= 2 and z.count() >= 4:
        gen = contourpy.contour_generator(xs, ys, z, line_type=contourpy.LineType.Separate)
        lines = [np.asarray(seg) for seg in gen.lines(level) if len(seg)]
    pts = np.concatenate(lines) if lines else np.zeros((0, 2))
    seg = np.concatenate([np.full(len(s), i) for i, s in enumerate(lines)]) if lines else []
    out = xr.DataArray(
        pts,
        dims=("point", "coord"),
        coords={"coord": [x, y], "segment": ("point", np.asarray(seg, int))},
        name=f"frontier_{var}",
    )
    out.attrs.update(
        {
            "var": var,
            "level": level,
            "x": x,
            "y": y,
            "fixed": dict(surf.attrs.get("fixed", fixed or {})),
        }
    )
    return out
