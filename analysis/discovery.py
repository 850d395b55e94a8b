"""Scenario discovery with PRIM (Friedman & Fisher 1999; Bryant & Lempert 2010).

Which boxes of parameter space hold the systemic cells? Cells with ``var >= threshold``
are the cases of interest. PRIM peels: starting from the whole space, it repeatedly
removes the slab of (about) ``alpha`` of the cells in the box from the low or high end
of one axis, choosing the peel that most raises the box's density per cell removed
(``objective="lenient1"``; ``"original"``: the highest resulting density), until the
box holds fewer than ``min_mass`` of the cells. Along this peeling trajectory

* coverage = positives in box / all positives,
* density  = positives in box / cells in box,
* mass     = cells in box / all cells,

and the box chosen is the one with the highest coverage among those with density
>= ``density_threshold``. It is then pasted: slabs of ``paste_alpha`` of its cells are
added back on any side while that raises coverage without lowering density. Further
boxes are found the same way on the cells left outside the earlier ones (covering),
up to ``max_boxes``. Limits are inclusive and in axis units; coverage is relative
to all positives of the cube.

ema_workbench provides PRIM too, but pulls scikit-learn, statsmodels, seaborn and
more (and its current release needs Python >= 3.12), so it is implemented here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .cube import cell_table

__all__ = ["PrimBox", "boxes_table", "prim", "prim_boxes"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrimBox:
    """One PRIM box: inclusive limits per axis (axis units) and its statistics."""

    limits: dict[str, tuple[float, float]]
    restricted: tuple[str, ...]  # axes whose limits are narrower than the data range
    coverage: float  # share of all positive cells inside the box
    density: float  # share of the box's cells that are positive
    mass: float  # share of all cells inside the box
    n_cells: int
    n_positive: int
    trajectory: pd.DataFrame = field(repr=False)  # peeling: coverage, density, mass, n_restricted
    selected: int = 0  # row of the trajectory the box was taken from (before pasting)


def _inside(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return ((X >= lo) & (X <= hi)).all(axis=1)


def _peel_candidates(X: np.ndarray, box: np.ndarray, lo: np.ndarray, hi: np.ndarray, alpha: float):
    """Yield (new_lo, new_hi) for removing about ``alpha`` of the box's cells at either
    end of each axis (at least one distinct value; never the whole box)."""
    for j in range(X.shape[1]):
        x = X[box, j]
        if x.min() == x.max():
            continue
        cut = np.quantile(x, alpha)
        rest = x[x > cut] if (x > cut).any() and (x <= cut).any() else x[x > x.min()]
        new = lo.copy()
        new[j] = rest.min()
        yield new, hi
        cut = np.quantile(x, 1 - alpha)
        rest = x[x < cut] if (x < cut).any() and (x >= cut).any() else x[x < x.max()]
        new = hi.copy()
        new[j] = rest.max()
        yield lo, new


def _stats(pos: np.ndarray, inside: np.ndarray, n_pos_all: int, n_all: int):
    n_in = int(inside.sum())
    n_pos = int(pos[inside].sum())
    return n_pos / max(n_pos_all, 1), n_pos / max(n_in, 1), n_in / n_all, n_in, n_pos


def _paste(X, pos, lo, hi, alpha, n_pos_all):
    """Greedy pasting: grow the box while coverage rises and density does not fall."""
    while True:
        inside = _inside(X, lo, hi)
        n_in, n_p = int(inside.sum()), int(pos[inside].sum())
        best = None
        k = max(1, int(np.ceil(alpha * n_in)))
        sizes = sorted({max(1, k >> s) for s in range(k.bit_length())}, reverse=True)
        for j in range(X.shape[1]):
            others = np.delete(np.arange(X.shape[1]), j)
            ok = _inside(X[:, others], lo[others], hi[others])
            for side in (0, 1):
                cand = ok & ((X[:, j] < lo[j]) if side == 0 else (X[:, j] > hi[j]))
                if not cand.any():
                    continue
                vals = np.sort(X[cand, j])[::-1] if side == 0 else np.sort(X[cand, j])
                for size in sizes:  # alpha slab first, then halves of it down to one cell
                    new_lo, new_hi = lo.copy(), hi.copy()
                    (new_lo if side == 0 else new_hi)[j] = vals[min(size, len(vals)) - 1]
                    new_in = _inside(X, new_lo, new_hi)
                    m, p = int(new_in.sum()), int(pos[new_in].sum())
                    key = (p / m, p)
                    if p > n_p and p / m >= n_p / n_in - 1e-12 and (best is None or key > best[0]):
                        best = (key, new_lo, new_hi)
        if best is None:
            return lo, hi
        _, lo, hi = best


def _one_box(
    X,
    pos,
    active,
    names,
    alpha,
    paste_alpha,
    min_mass,
    density_threshold,
    objective,
    n_pos_all,
    n_all,
):
    Xa, pa = X[active], pos[active]
    lo, hi = Xa.min(axis=0), Xa.max(axis=0)
    full_lo, full_hi = X.min(axis=0), X.max(axis=0)
    traj: list[tuple] = []
    box = np.ones(len(Xa), bool)
    while True:
        cov, dens, mass, _, _ = _stats(pa, box, n_pos_all, n_all)
        traj.append(
            (cov, dens, mass, int(((lo > full_lo) | (hi < full_hi)).sum()), lo.copy(), hi.copy())
        )
        best = None
        for new_lo, new_hi in _peel_candidates(Xa, box, lo, hi, alpha):
            nb = _inside(Xa, new_lo, new_hi)
            m = int(nb.sum())
            if m / n_all < min_mass:
                continue
            d = pa[nb].mean()
            score = d if objective == "original" else (d - dens) / max(box.sum() - m, 1)
            if best is None or score > best[0]:
                best = (score, new_lo, new_hi, nb)
        if best is None:
            break
        _, lo, hi, box = best
    df = pd.DataFrame(traj, columns=["coverage", "density", "mass", "n_restricted", "lo", "hi"])
    ok = df.index[df["density"] >= density_threshold]
    if len(ok) == 0:
        return None, df
    sel = int(df.loc[ok].sort_values(["coverage", "density"], kind="stable").index[-1])
    lo, hi = _paste(Xa, pa, df.at[sel, "lo"], df.at[sel, "hi"], paste_alpha, n_pos_all)
    inside = _inside(Xa, lo, hi)
    cov, dens, mass, n_in, n_p = _stats(pa, inside, n_pos_all, n_all)
    restricted = tuple(n for j, n in enumerate(names) if lo[j] > full_lo[j] or hi[j] < full_hi[j])
    limits = {n: (float(lo[j]), float(hi[j])) for j, n in enumerate(names)}
    return PrimBox(
        limits, restricted, cov, dens, mass, n_in, n_p, df.drop(columns=["lo", "hi"]), sel
    ), df


def prim(
    X: np.ndarray,
    positive: np.ndarray,
    names: tuple[str, ...] | list[str],
    *,
    alpha: float = 0.05,
    paste_alpha: float = 0.05,
    min_mass: float = 0.05,
    density_threshold: float = 0.8,
    max_boxes: int = 3,
    objective: str = "lenient1",
) -> list[PrimBox]:
    """PRIM on a table: ``X`` (n, d) parameter values, ``positive`` (n,) booleans."""
    if objective not in ("lenient1", "original"):
        raise ValueError(f"objective must be 'lenient1' or 'original', got {objective!r}")
    X = np.asarray(X, float)
    pos = np.asarray(positive, bool)
    n_all, n_pos_all = len(X), int(pos.sum())
    boxes: list[PrimBox] = []
    active = np.ones(n_all, bool)
    while len(boxes) < max_boxes and pos[active].any():
        box, _ = _one_box(
            X,
            pos,
            active,
            tuple(names),
            alpha,
            paste_alpha,
            min_mass,
            density_threshold,
            objective,
            n_pos_all,
            n_all,
        )
        if box is None:
            break
        boxes.append(box)
        lo = np.array([box.limits[n][0] for n in names])
        hi = np.array([box.limits[n][1] for n in names])
        active &= ~_inside(X, lo, hi)
        if not box.restricted:
            break
    return boxes


def prim_boxes(
    ds: xr.Dataset,
    var: str = "p_systemic",
    threshold: float = 0.5,
    *,
    stat: str | None = None,
    **kw,
) -> list[PrimBox]:
    """PRIM boxes of the cells where ``var >= threshold`` (cells with NaN are left out).

    Keyword arguments go to :func:`prim` (``alpha``, ``paste_alpha``, ``min_mass``,
    ``density_threshold``, ``max_boxes``, ``objective``). Empty list when no box reaches
    ``density_threshold`` or no cell is positive.
    """
    X, y, axes = cell_table(ds, var, stat)
    assert y is not None
    ok = np.isfinite(y)
    if not axes:
        return []
    return prim(X[ok], y[ok] >= threshold, axes, **kw)


def boxes_table(boxes: list[PrimBox]) -> pd.DataFrame:
    """One row per box: coverage, density, mass and ``lo..hi`` of each restricted axis."""
    rows = []
    for i, b in enumerate(boxes):
        row: dict[str, object] = {
            "box": i + 1,
            "coverage": b.coverage,
            "density": b.density,
            "mass": b.mass,
        }
        for a in b.restricted:
            row[a] = f"{b.limits[a][0]:.3g} .. {b.limits[a][1]:.3g}"
        rows.append(row)
    return pd.DataFrame(rows).set_index("box") if rows else pd.DataFrame()
