"""Scattered-data helpers for sampled cubes (lhs, sobol, csv designs).

Sampled cubes have one ``cell`` dimension with per-cell parameter coordinates. To
draw surfaces or find frontiers the cells are put onto a regular grid, either by
binning (averages of the cells falling in each bin) or by evaluating a scattered
data model on coordinates rescaled to [0, 1] per axis: local linear regression on
the nearest cells, barycentric interpolation on a Delaunay triangulation, or the
nearest cell.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import spatial, stats
from scipy.stats import qmc

from .cube import cell_table, is_adaptive
from .levelset import GP_METHODS, gp_function

__all__ = ["bin_2d", "default_method", "interpolant", "rescale", "sampled_eval"]

_REDUCERS = ("mean", "median", "min", "max")


def default_method(ds: xr.Dataset, var: str) -> str:
    """``gp`` for a probability of an adaptive cube (cells placed around its level set,
    replicates at one point), ``linear`` otherwise."""
    from kernels.outputs import PROBABILITY_BASES

    return "gp" if is_adaptive(ds) and var in PROBABILITY_BASES else "linear"


def check_reduce(reduce: str) -> None:
    if reduce not in _REDUCERS:
        raise ValueError(f"reduce must be one of {_REDUCERS}, got {reduce!r}")


def rescale(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Map each column of ``X`` from [lo, hi] to [0, 1] (constant columns map to 0)."""
    span = np.where(hi > lo, hi - lo, 1.0)
    return (X - lo) / span


class _Geometry:
    """Cells rescaled to [0, 1] (constant axes dropped), their k-d tree and, built on
    first use, their Delaunay triangulation."""

    def __init__(self, X: np.ndarray) -> None:
        self.lo, self.hi = X.min(axis=0), X.max(axis=0)
        self.keep = self.hi > self.lo  # Delaunay needs full-dimensional points
        self.Z = rescale(X, self.lo, self.hi)[:, self.keep]
        self.tree = spatial.cKDTree(self.Z) if self.Z.shape[1] else None

    @functools.cached_property
    def tri(self) -> spatial.Delaunay | None:
        return spatial.Delaunay(self.Z) if self.Z.shape[1] >= 2 else None


_CACHE: OrderedDict[str, _Geometry] = OrderedDict()
_CACHE_SIZE = 4


def geometry(X: np.ndarray) -> _Geometry:
    """:class:`_Geometry` of the cells, cached by the bytes of ``X``: triangulating a few
    thousand cells in 4-D (and scipy's lazily computed simplex transforms) costs
    seconds, and a report asks the same cube many questions."""
    X = np.ascontiguousarray(X, float)
    key = hashlib.blake2b(str(X.shape).encode() + X.tobytes(), digest_size=16).hexdigest()
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    geo = _Geometry(X)
    _CACHE[key] = geo
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return geo


def interpolant(
    X: np.ndarray, y: np.ndarray, method: str = "linear", k_local: int = 16
) -> Callable[[np.ndarray], np.ndarray]:
    """Interpolant of scattered values ``y`` at points ``X`` (n, d), on rescaled axes.

    ``method``: ``local`` (:func:`local_linear` on the ``k_local`` nearest cells),
    ``linear`` (barycentric on the Delaunay triangulation; outside the convex hull of
    the cells, :func:`local_linear`; 1-D uses ``np.interp``) or ``nearest``. Returns a
    function of an (m, d) array of points in axis units.
    """
    if method not in ("linear", "nearest", "local"):  # (gp*: analysis.levelset)
        raise ValueError(f"method must be 'linear', 'nearest' or 'local', got {method!r}")
    y = np.asarray(y, float)
    g = geometry(X)
    ndim = g.Z.shape[1]

    def unit(P: np.ndarray) -> np.ndarray:
        return rescale(P, g.lo, g.hi)[:, g.keep]

    if ndim == 0 or g.tree is None:
        mean = float(np.nanmean(y))
        return lambda P: np.full(len(P), mean)
    if method == "nearest":
        return lambda P: y[g.tree.query(unit(P))[1]]
    if method == "local":
        return lambda P: local_linear(g.Z, y, g.tree, unit(P), k_min=k_local)
    if ndim == 1:
        order = np.argsort(g.Z[:, 0])
        zs, ys = g.Z[order, 0], y[order]
        return lambda P: np.interp(unit(P)[:, 0], zs, ys)
    tri, tree, Z = g.tri, g.tree, g.Z

    def evaluate(P: np.ndarray) -> np.ndarray:
        # barycentric weights on the simplices found (scipy's LinearNDInterpolator is
        # slow for points outside the hull, which get a local linear fit here)
        Q = unit(P)
        simplex = tri.find_simplex(Q, bruteforce=False)
        out = np.empty(len(Q))
        inside = simplex >= 0
        verts = tri.simplices[simplex[inside]]  # (m, d + 1) vertex indices
        corners = Z[verts]  # (m, d + 1, d)
        edges = np.swapaxes(corners[:, :ndim] - corners[:, ndim:], 1, 2)  # (m, d, d)
        rhs = (Q[inside] - corners[:, ndim])[..., None]
        b = np.linalg.solve(edges, rhs)[..., 0] if len(verts) else np.zeros((0, ndim))
        w = np.concatenate([b, 1.0 - b.sum(axis=1, keepdims=True)], axis=1)
        out[inside] = (w * y[verts]).sum(axis=1)
        if (~inside).any():
            out[~inside] = local_linear(Z, y, tree, Q[~inside])
        return out

    return evaluate


def local_linear(
    Z: np.ndarray, y: np.ndarray, tree: spatial.cKDTree, Q: np.ndarray, k_min: int = 8
) -> np.ndarray:
    """Inverse-distance weighted linear least-squares fit to the ``max(2 (d + 1), k_min)``
    nearest cells of each query point, evaluated there, clipped to those cells' range."""
    d = Z.shape[1]
    k = min(len(Z), max(2 * (d + 1), k_min))
    dist, idx = tree.query(Q, k=k)
    dist, idx = dist.reshape(len(Q), k), idx.reshape(len(Q), k)
    A = np.concatenate([np.ones((*idx.shape, 1)), Z[idx] - Q[:, None, :]], axis=-1)
    w = 1.0 / (dist + 1e-9)
    AtA = np.einsum("mki,mk,mkj->mij", A, w, A) + 1e-9 * np.eye(d + 1)
    Aty = np.einsum("mki,mk,mk->mi", A, w, y[idx])
    value = np.linalg.solve(AtA, Aty[..., None])[:, 0, 0]
    return np.clip(value, y[idx].min(axis=1), y[idx].max(axis=1))


def bin_2d(
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    x_edges: Sequence[float],
    y_edges: Sequence[float],
    reduce: str = "mean",
) -> np.ndarray:
    """Reduce ``values`` over the cells in each (y, x) bin; empty bins are NaN.

    Returns an array of shape (len(y_edges) - 1, len(x_edges) - 1).
    """
    check_reduce(reduce)
    if len(values) == 0:
        return np.full((len(y_edges) - 1, len(x_edges) - 1), np.nan)
    res = stats.binned_statistic_2d(y, x, values, statistic=reduce, bins=[y_edges, x_edges])
    return np.asarray(res.statistic, float)


def sampled_eval(
    ds: xr.Dataset,
    var: str,
    stat: str | None,
    grids: dict[str, np.ndarray],
    fixed: Mapping[str, float],
    reduce: str,
    method: str | None,
    n_quad: int,
) -> np.ndarray:
    """Interpolate a sampled cube on the cartesian product of ``grids`` (axis -> values),
    ``fixed`` axes at their value, the remaining axes reduced over quadrature nodes."""
    method = method or default_method(ds, var)
    X, vals, axes = cell_table(ds, var, stat)
    assert vals is not None
    ok = np.isfinite(vals)
    if method in GP_METHODS:  # the level-set surrogate (analysis.levelset)
        f = gp_function(ds, var, method)
    else:
        f = interpolant(X[ok], vals[ok], method)
    free = [a for a in axes if a not in grids and a not in fixed]
    nq = n_quad if free else 1
    nodes = np.zeros((nq, len(free)))
    if free:
        unit = qmc.Sobol(len(free), scramble=True, seed=0).random(nq)
        lo = np.array([X[:, axes.index(a)].min() for a in free])
        hi = np.array([X[:, axes.index(a)].max() for a in free])
        nodes = lo + unit * (hi - lo)
    mesh = np.meshgrid(*grids.values(), indexing="ij")
    n_pts = mesh[0].size if mesh else 1
    P = np.empty((n_pts, nq, len(axes)))
    for j, a in enumerate(axes):
        if a in grids:
            P[:, :, j] = mesh[list(grids).index(a)].reshape(-1, 1)
        elif a in fixed:
            P[:, :, j] = float(fixed[a])
        else:
            P[:, :, j] = nodes[None, :, free.index(a)]
    out = f(P.reshape(-1, len(axes))).reshape(n_pts, nq)
    out = getattr(np, f"nan{reduce}")(out, axis=1)
    return out.reshape(mesh[0].shape if mesh else ())
