"""The cells of an adaptive sweep's next wave: more paths where Monte Carlo error decides
the side of the level, new points where the surrogate does.

Every wave is a whole number of blocks, and every block holds one replicate (so a block
runs on one seed, :func:`kernels.keys.replicate_seed`): new points (replicate 0) first,
then the points getting their r-th extra set of paths, grouped by r, each group rounded
to whole blocks.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from analysis.levelset import Z95, LevelSetFit, fit_level_set, logit, pooled_counts
from farm.adaptive.acquire import needs_paths, propose
from farm.plan.adaptivespec import AdaptiveSpec

__all__ = ["CellsSoFar", "WavePick", "fit_cells", "next_wave"]

log = logging.getLogger(__name__)

NEAR_Z = 3.0
"""A point not straddling the level may fill a block of extra paths when its estimate
is within this many standard errors of the level (or the surrogate's 95 % band at it
holds the level)."""


@dataclass(frozen=True)
class CellsSoFar:
    """The cells run so far: ``table`` (cells, axes) in parameter units, ``replicate``
    per cell, ``k`` the paths showing the event per cell (NaN for a failed cell) of
    ``paths`` each; ``lo``/``hi`` the axes' box."""

    table: np.ndarray
    replicate: np.ndarray
    k: np.ndarray
    paths: int
    lo: np.ndarray
    hi: np.ndarray

    def unit(self, rows: np.ndarray | None = None) -> np.ndarray:
        rows = self.table if rows is None else rows
        return (rows - self.lo) / (self.hi - self.lo)

    @functools.cached_property
    def pooled(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(rows, k, n, replicates) per distinct point (see analysis.levelset); computed
        once (the fit and both kinds of picks use it)."""
        return pooled_counts(self.table, self.k, np.full(len(self.k), float(self.paths)))


@dataclass(frozen=True)
class WavePick:
    """A wave's cells: ``rows`` (cells, axes) and their ``replicate``; how many are new
    points, how many add paths, and how many points straddled the level."""

    rows: np.ndarray
    replicate: np.ndarray
    new_points: int
    more_paths: int
    straddling: int


def fit_cells(cells: CellsSoFar, seed: int) -> LevelSetFit:
    rows, k, n, _ = cells.pooled
    return fit_level_set(cells.unit(rows), k, n, seed=seed)


def _more_paths(cells: CellsSoFar, fit: LevelSetFit, spec: AdaptiveSpec, budget: int
                ) -> tuple[list[np.ndarray], list[int], int]:
    """Rows and replicate numbers of the extra-path cells, whole blocks per replicate:
    the points whose Wilson interval straddles the level, most undecided first; a block
    is filled up with the next most undecided points near the level (within
    :data:`NEAR_Z` standard errors, or inside the surrogate's band)."""
    rows, k, n, count = cells.pooled
    mean, sd = fit.predict(cells.unit(rows))
    in_band = np.abs(mean - logit(spec.level)) < Z95 * sd
    block = spec.block_cells
    room = n + cells.paths <= spec.max_paths
    p = k / n
    se = np.sqrt(np.maximum(p * (1 - p), 0.25 / n) / n)
    z = np.abs(p - spec.level) / se
    straddle = needs_paths(k, n, spec.level) & room
    order = np.argsort(np.where(straddle, z, np.inf), kind="stable")[: int(straddle.sum())]
    picked_rows: list[np.ndarray] = []
    picked_rep: list[int] = []
    for r in np.unique(count[order]):
        group = [int(i) for i in order if count[i] == r]
        if len(group) % block:  # fill the block with the next most undecided points
            extra = [int(i) for i in np.argsort(z, kind="stable")
                     if count[i] == r and room[i] and not straddle[i]
                     and (z[i] < NEAR_Z or in_band[i])]
            group += extra[: block - len(group) % block]
        group = group[: len(group) // block * block]
        group = group[: (budget - len(picked_rep)) // block * block]
        picked_rows += [rows[i] for i in group]
        picked_rep += [int(r)] * len(group)
    return picked_rows, picked_rep, int(straddle.sum())


def next_wave(cells: CellsSoFar, fit: LevelSetFit, spec: AdaptiveSpec, wave: int,
              seed: int, max_new: int) -> WavePick:
    """Wave ``wave``'s cells: at most ``max_new`` (a multiple of the block), at most
    ``spec.paths_share`` of them extra paths, the rest new points by the straddle score
    (seeded with ``seed`` and the wave number)."""
    block, d = spec.block_cells, cells.table.shape[1]
    m = max_new // block * block
    share = int(m * spec.paths_share) // block * block
    path_rows, path_rep, straddling = _more_paths(cells, fit, spec, share)
    m_new = m - len(path_rep)
    rows_done, _, _, _ = cells.pooled
    unit = propose(fit, spec.level, m_new, d, seed=seed + 7919 * wave,
                   candidates=spec.candidates, exclude=cells.unit(rows_done))
    unit = unit[: len(unit) // block * block]
    new_rows = cells.lo + unit * (cells.hi - cells.lo)
    rows = np.concatenate([new_rows, np.asarray(path_rows).reshape(-1, d)])
    rep = np.concatenate([np.zeros(len(new_rows), int), np.asarray(path_rep, int)])
    log.info("wave %d: %d new points, %d cells of more paths (%d points straddle %g)",
             wave, len(new_rows), len(path_rep), straddling, spec.level)
    return WavePick(rows, rep, len(new_rows), len(path_rep), straddling)
