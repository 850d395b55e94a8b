"""Which parameters matter: Sobol indices (sampled cubes) and ANOVA (grid cubes).

Sampled cubes
    * **Saltelli designs** (detected from the cell table itself: blocks of ``D + 2`` or
      ``2 D + 2`` cells ``A, AB_1..AB_D, [BA_1..BA_D], B`` as written by
      ``SALib.sample.sobol``/``saltelli``, where ``AB_i`` is ``A`` with column ``i``
      from ``B``): first-order and total indices by ``SALib.analyze.sobol`` (Saltelli
      2010 / Jansen estimators) with bootstrap 95 % confidence intervals.
    * **Any other sample** (lhs, scrambled Sobol, random, csv): a least-squares
      polynomial chaos expansion in Legendre polynomials, degree chosen by
      leave-one-out error, indices from its coefficients (Sudret 2008; see
      ``analysis/_pce.py``). Assumes independent inputs uniform on their range (the
      design's ``bounds`` attr when present, else the sampled range). Reproduces the
      Ishigami indices to ~1e-3 from 1024 LHS cells. The fit quality is reported as
      ``loo_error`` (leave-one-out MSE / Var(y)); MC noise in ``var`` is left out of the
      expansion, so indices are shares of the explained variance. No confidence intervals.

Grid cubes
    :func:`variance_decomposition`: the functional ANOVA of the full grid with equal
    weight per grid point: main effects ``Var(E[Y|x_i]) / V``, two-way interactions,
    the higher-order remainder and total effects ``E[Var(Y|x_~i)] / V``; all shares of
    the total variance (dimensionless).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from ._pce import fit_pce
from .cube import axes_of, cell_table, cell_values, cube_info, is_grid

__all__ = [
    "SobolIndices",
    "VarianceDecomposition",
    "saltelli_structure",
    "sensitivity",
    "sobol_indices",
    "sobol_pce",
    "variance_decomposition",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SobolIndices:
    """First-order (``S1``) and total (``ST``) Sobol indices per axis (dimensionless)."""

    S1: pd.Series
    ST: pd.Series
    S1_conf: pd.Series | None
    ST_conf: pd.Series | None
    estimator: str  # "saltelli" (SALib) or "pce" (polynomial chaos expansion)
    n_cells: int
    loo_error: float | None = None  # pce: leave-one-out MSE / Var(y)
    degree: int | None = None  # pce: polynomial degree chosen

    def table(self) -> pd.DataFrame:
        """Columns ``first_order``, ``total`` (+ ``*_conf``), one row per axis."""
        df = pd.DataFrame({"first_order": self.S1, "total": self.ST})
        if self.S1_conf is not None and self.ST_conf is not None:
            df["first_order_conf"], df["total_conf"] = self.S1_conf, self.ST_conf
        how = f"{self.estimator}, {self.n_cells} cells"
        if self.loo_error is not None:
            how += f", degree {self.degree}, LOO R2 {1 - self.loo_error:.3f}"
        df.attrs["method"] = f"Sobol indices ({how})"
        return df


@dataclass(frozen=True)
class VarianceDecomposition:
    """Functional ANOVA of a grid: shares of the total variance (dimensionless)."""

    variance: float  # total variance of var over the grid, (var units)^2
    main: pd.Series  # Var(E[Y|x_i]) / V
    interactions: pd.Series  # V_ij / V, index "a:b"
    total: pd.Series  # E[Var(Y|x_~i)] / V
    higher_order: float  # 1 - sum(main) - sum(interactions)

    def table(self) -> pd.DataFrame:
        """Columns ``first_order`` (main effect), ``total``, one row per axis."""
        df = pd.DataFrame({"first_order": self.main, "total": self.total})
        df.attrs["method"] = "variance decomposition of the grid (ANOVA)"
        return df


def variance_decomposition(
    ds: xr.Dataset | xr.DataArray, var: str = "p_systemic", stat: str | None = None
) -> VarianceDecomposition:
    """ANOVA of ``var`` over a complete grid cube (or a DataArray over grid axes)."""
    if isinstance(ds, xr.Dataset):
        if not is_grid(ds):
            raise ValueError("variance_decomposition needs a grid cube; use sobol_indices")
        da = cell_values(ds, var, stat).transpose(*axes_of(ds))
    else:
        da = ds
    axes = tuple(str(d) for d in da.dims)
    y = np.asarray(da.values, float)
    if not np.isfinite(y).all():
        raise ValueError(
            f"{var} has {int((~np.isfinite(y)).sum())} missing cells; the "
            "grid ANOVA needs a complete grid"
        )
    y = y - y.mean()
    V = float((y**2).mean())
    if V == 0.0:
        zeros = pd.Series(0.0, index=list(axes))
        return VarianceDecomposition(0.0, zeros, pd.Series(dtype=float), zeros, 0.0)

    def cond_mean(keep: tuple[int, ...]) -> np.ndarray:
        drop = tuple(i for i in range(y.ndim) if i not in keep)
        return y.mean(axis=drop, keepdims=True) if drop else y

    mains = {i: cond_mean((i,)) for i in range(y.ndim)}
    main = pd.Series({axes[i]: float((m**2).mean()) / V for i, m in mains.items()})
    inter = {}
    for i, j in itertools.combinations(range(y.ndim), 2):
        fij = cond_mean((i, j)) - mains[i] - mains[j]
        inter[f"{axes[i]}:{axes[j]}"] = float((fij**2).mean()) / V
    total = {}
    for i in range(y.ndim):
        others = tuple(k for k in range(y.ndim) if k != i)
        total[axes[i]] = 1.0 - float((cond_mean(others) ** 2).mean()) / V
    inter_s = pd.Series(inter, dtype=float)
    higher = 1.0 - float(main.sum()) - float(inter_s.sum())
    return VarianceDecomposition(V, main, inter_s, pd.Series(total), max(higher, 0.0))


def saltelli_structure(X: np.ndarray, rtol: float = 1e-9) -> int | None:
    """Block length of a Saltelli design (``D + 2`` or ``2 D + 2``) or None.

    Checks every block: ``AB_i`` equals ``A`` except in column ``i``, where it equals
    ``B`` (and ``BA_i`` likewise with ``A``/``B`` swapped for second-order designs).
    """
    n, d = X.shape
    if d == 0:
        return None
    for size in (d + 2, 2 * d + 2):
        if n == 0 or n % size:
            continue
        blocks = X.reshape(n // size, size, d)
        A, B = blocks[:, 0], blocks[:, -1]
        ok = True
        for i in range(d):
            expect = A.copy()
            expect[:, i] = B[:, i]
            ok &= np.allclose(blocks[:, 1 + i], expect, rtol=rtol, atol=0)
            if size == 2 * d + 2:
                expect = B.copy()
                expect[:, i] = A[:, i]
                ok &= np.allclose(blocks[:, 1 + d + i], expect, rtol=rtol, atol=0)
        if ok and not np.allclose(A, B):
            return size
    return None


def _salib(
    X: np.ndarray, y: np.ndarray, axes: tuple[str, ...], size: int, seed: int
) -> SobolIndices:
    from SALib.analyze import sobol as salib_sobol

    d = len(axes)
    blocks = y.reshape(-1, size)
    keep = np.isfinite(blocks).all(axis=1)
    if not keep.all():
        log.warning(
            "dropping %d of %d Saltelli blocks with missing cells", int((~keep).sum()), len(keep)
        )
    problem = {
        "num_vars": d,
        "names": list(axes),
        "bounds": [[float(X[:, j].min()), float(X[:, j].max())] for j in range(d)],
    }
    res = salib_sobol.analyze(
        problem,
        blocks[keep].ravel(),
        calc_second_order=size != d + 2,
        seed=seed,
        print_to_console=False,
    )
    idx = list(axes)
    return SobolIndices(
        pd.Series(res["S1"], idx),
        pd.Series(res["ST"], idx),
        pd.Series(res["S1_conf"], idx),
        pd.Series(res["ST_conf"], idx),
        "saltelli",
        int(keep.sum() * size),
    )


def _bounds(ds: xr.Dataset, axes: tuple[str, ...], X: np.ndarray):
    """Input ranges: the design's ``bounds``, else the ``[lo, hi]`` of ``sweep.axes`` in
    the cube's resolved config (lhs/sobol), else the sampled range."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    info = cube_info(ds)
    bounds = info.design.get("bounds")
    if not isinstance(bounds, dict) and info.method in ("lhs", "sobol"):
        try:
            bounds = ((yaml.safe_load(info.config) or {}).get("sweep") or {}).get("axes")
        except (yaml.YAMLError, AttributeError):
            bounds = None
    if isinstance(bounds, dict):
        for j, a in enumerate(axes):
            b = bounds.get(a)
            if isinstance(b, (list, tuple)) and len(b) == 2 and float(b[0]) < float(b[1]):
                lo[j], hi[j] = float(b[0]), float(b[1])
    return lo, hi


def sobol_pce(
    X: np.ndarray,
    y: np.ndarray,
    axes: tuple[str, ...],
    lo: np.ndarray | None = None,
    hi: np.ndarray | None = None,
    **fit_kw,
) -> SobolIndices:
    """S1/ST from a polynomial chaos expansion of any sample (see module doc)."""
    ok = np.isfinite(y) & np.isfinite(X).all(axis=1)
    X, y = X[ok], y[ok]
    lo = X.min(axis=0) if lo is None else lo
    hi = X.max(axis=0) if hi is None else hi
    idx = list(axes)
    if len(y) and float(y.var()) == 0.0:
        zeros = pd.Series(0.0, index=idx)
        return SobolIndices(zeros, zeros, None, None, "pce", len(y))
    fit = fit_pce(X, y, lo, hi, **fit_kw)
    return SobolIndices(
        pd.Series(fit.first_order(), idx),
        pd.Series(fit.total(), idx),
        None,
        None,
        "pce",
        len(y),
        loo_error=fit.loo_error,
        degree=fit.degree,
    )


def sobol_indices(
    ds: xr.Dataset,
    var: str = "p_systemic",
    stat: str | None = None,
    *,
    estimator: str = "auto",
    seed: int = 0,
) -> SobolIndices:
    """Sobol first-order and total indices of ``var`` for a sampled cube.

    ``estimator``: ``auto`` (SALib when the cells have the Saltelli structure, else
    the PCE), ``saltelli`` (requires the structure) or ``pce``.
    ``seed`` drives SALib's bootstrap of the confidence intervals.
    """
    if is_grid(ds):
        raise ValueError("sobol_indices needs a sampled cube; use variance_decomposition")
    X, y, axes = cell_table(ds, var, stat)
    assert y is not None
    size = saltelli_structure(X) if estimator in ("auto", "saltelli") else None
    if estimator == "saltelli" and size is None:
        raise ValueError(
            "the cube's cells do not have the Saltelli structure "
            f"(design method {cube_info(ds).method!r}); use estimator='pce'"
        )
    if size is not None:
        return _salib(X, y, axes, size, seed)
    lo, hi = _bounds(ds, axes, X)
    return sobol_pce(X, y, axes, lo, hi)


def sensitivity(ds: xr.Dataset, var: str = "p_systemic", stat: str | None = None) -> pd.DataFrame:
    """One table for either kind of cube: columns ``first_order`` and ``total`` (shares of
    variance), rows the axes sorted by total effect; ``df.attrs['method']`` says how."""
    res = variance_decomposition(ds, var, stat) if is_grid(ds) else sobol_indices(ds, var, stat)
    return res.table().sort_values("total", ascending=False)
