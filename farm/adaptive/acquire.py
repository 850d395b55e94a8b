"""Where the next wave of an adaptive sweep goes: cells near the level set of a probability.

The surrogate is :mod:`analysis.levelset`'s (a Gaussian process on the logit of p with
each point's binomial variance). New cells go where it is least sure which side of the
level it is on: the *straddle* score ``1.96 sd - |mean - logit(level)|`` (high where the
95 % band of the fit straddles the level), taken greedily over Sobol candidates with a
minimum distance between picks so one wave spreads along the frontier. Points whose own
Wilson interval straddles the level are the ones where more paths, not another
position, decide the side (:func:`needs_paths`).
"""

from __future__ import annotations

import numpy as np

from analysis.levelset import LevelSetFit, fit_level_set, logit, wilson_straddles
from farm.plan.design import initial_unit_design

__all__ = ["LevelSetFit", "fit_level_set", "frontier_flips", "needs_paths", "propose"]

Z95 = 1.959964
needs_paths = wilson_straddles


def propose(fit: LevelSetFit, level: float, m: int, d: int, *, seed: int = 0,
            candidates: int = 4096, min_dist: float | None = None,
            exclude: np.ndarray | None = None) -> np.ndarray:
    """Up to ``m`` new points (unit coordinates) where the straddle score is highest,
    greedily, each at least ``min_dist`` from the others and from ``exclude`` (the points
    already run); by default ``0.3 / N**(1/d)``, ``N`` the points after this wave (a third
    of the spacing of ``N`` evenly spread points). Fewer than ``m`` when the candidates
    run out."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} is out of range; allowed: (0, 1)")
    if m <= 0:
        return np.zeros((0, d))
    cand = initial_unit_design(candidates, d, seed)  # Sobol' points, any number
    mean, sd = fit.predict(cand)
    score = Z95 * sd - np.abs(mean - logit(level))
    order = np.argsort(-score, kind="stable")
    taken = np.zeros((0, d)) if exclude is None else np.asarray(exclude, float).reshape(-1, d)
    min_dist = 0.3 / (len(taken) + m) ** (1.0 / d) if min_dist is None else min_dist
    picks: list[np.ndarray] = []
    for i in order:
        c = cand[i]
        if len(taken) and np.min(np.linalg.norm(taken - c, axis=1)) < min_dist:
            continue
        picks.append(c)
        taken = np.vstack([taken, c])
        if len(picks) == m:
            break
    return np.asarray(picks).reshape(-1, d)


def frontier_flips(before: LevelSetFit, after: LevelSetFit, level: float,
                   reference: np.ndarray) -> float:
    """Share of the ``reference`` points whose side of the level the new fit changed: the
    stopping criterion (the frontier stopped moving when it is small)."""
    t = logit(level)
    return float(np.mean((before.predict(reference)[0] >= t)
                         != (after.predict(reference)[0] >= t)))
