"""Scenario discovery with PRIM (Friedman & Fisher 1999; Bryant & Lempert 2010).

Which boxes of parameter space hold the systemic cells? Cells with ``var >= threshold``
are the cases of interest. Peeling and pasting are done by the ``prim`` package (Project
Platypus; the EMA Workbench's PRIM, standalone). This module is the only place that
touches it; ``tests/analysis/test_analysis_discovery.py::test_prim_package_api`` pins what is
used here (``Prim(x, y, obj_func=, peel_alpha=, paste_alpha=, mass_min=)``,
``find_box``, a box's ``peeling_trajectory``, ``limits``, ``yi``, ``select``).

PRIM peels: from the whole space it repeatedly removes about ``alpha`` of the box's
cells from the low or high end of one axis, the peel with the best ``objective``
(``"lenient1"``: gain in density per cell removed; ``"original"``: highest resulting
density; ``"lenient2"``), down to ``min_mass`` of the cells. The package stops at the
first step where no peel raises the objective, which finds nothing when the positives
form separated clusters, so its objective is wrapped to be patient (:func:`_patient`).
It then pastes slabs of ``paste_alpha`` back onto the last box while that raises the
density. Along this trajectory

* coverage = positives in box / all positives,
* density  = positives in box / cells in box,
* mass     = cells in box / all cells,

and the box chosen is the one with the highest coverage among those with density
>= ``density_threshold``. Further boxes are found the same way on the cells left
outside the earlier ones (covering), up to ``max_boxes``. The package cuts halfway
between data values; the limits here are snapped to the extreme cells inside, so they
are inclusive, in axis units, and the data range on unrestricted sides. Coverage is
relative to all positives. Cases of interest are computed here, not with the package's
``threshold=`` argument, which ignores a threshold of 0 (``if threshold:``).

Cross-check against the hand-written PRIM this replaced (same defaults):

* ``results/sweep-default.zarr``, ``p_systemic >= 0.5`` (255 of 1440 cells, a staircase
  in leverage x integration): the same box at every density threshold; 1.0: leverage
  2..3, integration 0.8..1, coverage 0.706, density 1, mass 0.125; 0.8 (default):
  leverage 1.6..3, integration 0.8..1, coverage 0.824, density 0.875, mass 0.167; 0.5:
  leverage 1.6..3, integration 0.6..1, coverage 1, density 0.708. ``objective=
  "original"``: the same two boxes (coverage 0.471 and 0.353, density 1).
* planted leverage 1.2..2.4 x integration >= 0.6, 16 x 11 x 2 grid: both exactly that
  box, coverage 1, density 1. 3000 LHS cells, density threshold 0.9: old leverage
  1.199..2.447, integration 0.602..1, new 1.196..2.438, 0.599..1, both coverage 1,
  density 0.969. Threshold 1.0: old 1.199..2.396 x 0.602..1, coverage 1; new
  1.258..2.347 x 0.623..1, coverage 0.882: the package pastes only the last box and
  only while density rises, the old pasted any selected box while density held.
* leverage >= 1.8 and integration >= 0.5, 2048 Sobol cells: both 1.758..3 x 0.492..1,
  coverage 1, density 0.949. Two corners of a uniform square: both two boxes (coverage
  0.419 + 0.581, density 0.988, 0.957); the package unwrapped finds none.
* 100,000 cells x 6 axes: 1.4 s, the old 3.9 s; box statistics equal to 3 digits.
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

OBJECTIVES = ("lenient1", "lenient2", "original")


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
    # peeling then pasting (mass falls, then rises): coverage, density, mass, n_restricted
    trajectory: pd.DataFrame = field(repr=False)
    selected: int = 0  # row of the trajectory the box was taken from


def _package():
    """The ``prim`` package, imported on first use: it imports pyplot and mplcursors
    (about a second), which ``import analysis`` should not pay for."""
    import prim as package

    return package


def _patient(package, objective: str):
    """The package's objective made patient: it stops peeling as soon as no peel raises
    the objective above 0, which on a few separated clusters of positives is at the
    first step (every slab holds some), so nothing is found. ``exp`` keeps the order of
    the scores and makes them positive, so peeling runs on to ``min_mass`` as in
    Friedman & Fisher; a candidate that removes no cell (an axis that is constant in the
    box) scores 0 and is never taken. Pasting still needs a rise in density."""
    score = getattr(package, objective)

    def obj(y_old, y_new):
        return 0.0 if len(y_new) == len(y_old) else float(np.exp(score(y_old, y_new)))

    return obj


def _to_box(pbox, X: np.ndarray, pos: np.ndarray, names: tuple[str, ...], sel: int) -> PrimBox:
    """Our :class:`PrimBox` from the package's box, at trajectory row ``sel``."""
    inside = np.asarray(pbox.yi, int)  # rows of X inside (and outside earlier boxes)
    full_lo, full_hi = X.min(axis=0), X.max(axis=0)
    lo, hi = full_lo.copy(), full_hi.copy()
    cuts = pbox.limits  # restricted axes only; columns min, max (cut points)
    for j, name in enumerate(names):
        if name in cuts.index:
            if cuts.at[name, "min"] > full_lo[j]:
                lo[j] = X[inside, j].min()
            if cuts.at[name, "max"] < full_hi[j]:
                hi[j] = X[inside, j].max()
    n_in, n_pos = len(inside), int(pos[inside].sum())
    traj = pbox.peeling_trajectory.rename(columns={"res dim": "n_restricted"})
    traj = traj[["coverage", "density", "mass", "n_restricted"]].astype(float)
    traj["n_restricted"] = traj["n_restricted"].astype(int)
    return PrimBox(
        limits={n: (float(lo[j]), float(hi[j])) for j, n in enumerate(names)},
        restricted=tuple(
            n for j, n in enumerate(names) if lo[j] > full_lo[j] or hi[j] < full_hi[j]
        ),
        coverage=n_pos / max(int(pos.sum()), 1),
        density=n_pos / max(n_in, 1),
        mass=n_in / len(X),
        n_cells=n_in,
        n_positive=n_pos,
        trajectory=traj.reset_index(drop=True),
        selected=sel,
    )


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
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    X = np.asarray(X, float)
    pos = np.asarray(positive, bool)
    names = tuple(names)
    n_pos_all = int(pos.sum())
    if n_pos_all == 0 or X.ndim != 2 or X.shape[1] == 0:
        return []
    package = _package()
    p = package.Prim(
        pd.DataFrame(X, columns=list(names)),
        pos,
        obj_func=_patient(package, objective),
        peel_alpha=alpha,
        paste_alpha=paste_alpha,
        mass_min=min_mass,
    )
    boxes: list[PrimBox] = []
    while len(boxes) < max_boxes and sum(b.n_positive for b in boxes) < n_pos_all:
        pbox = p.find_box()
        if pbox is None:
            break
        traj = pbox.peeling_trajectory
        ok = traj.index[traj["density"] >= density_threshold]
        if len(ok) == 0:
            break
        sel = int(traj.loc[ok].sort_values(["coverage", "density"], kind="stable").index[-1])
        pbox.select(sel)  # the next find_box covers the cells of the selected box
        box = _to_box(pbox, X, pos, names, sel)
        boxes.append(box)
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

    Works on grid cubes (one row per grid point) and sampled cubes (one row per
    ``cell``) alike, through :func:`analysis.cube.cell_table`. Keyword arguments go to
    :func:`prim` (``alpha``, ``paste_alpha``, ``min_mass``, ``density_threshold``,
    ``max_boxes``, ``objective``). Empty list when no box reaches ``density_threshold``
    or no cell is positive.
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
