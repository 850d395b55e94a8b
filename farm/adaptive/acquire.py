"""Where the next wave of an adaptive sweep goes: cells near the level set of a probability.

The cells so far are scattered points ``x`` (unit coordinates of the swept axes) with
``k`` of ``n`` paths showing the event (e.g. ``systemic``). A Gaussian process
(scikit-learn) is fitted to the empirical logit of each cell's probability, each cell's
own binomial variance on the diagonal (delta method: ``1 / (n p (1 - p))`` with the
half-count-smoothed ``p``), so it smooths the Monte Carlo noise instead of fitting it.
New cells go where the fitted surface is least sure which side of the level it is on:
the *straddle* score ``1.96 sd - |mean - logit(level)|`` (high where the 95 % band of
the fit straddles the level), taken greedily over Sobol candidates with a minimum
distance between picks so one wave spreads along the frontier. Cells whose own Wilson
interval straddles the level are the ones where more paths, not another position,
decide the side (:func:`needs_paths`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

__all__ = ["LevelSetFit", "fit_level_set", "frontier_flips", "needs_paths", "propose"]

Z95 = 1.959964


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class LevelSetFit:
    """A fitted surface of logit p over the unit cube; ``predict(u) -> (mean, sd)``."""

    model: Any
    center: float
    scale: float

    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, sd = self.model.predict(np.asarray(u, float), return_std=True)
        return self.center + self.scale * mean, self.scale * np.asarray(sd, float)


def fit_level_set(u: np.ndarray, k: np.ndarray, n: np.ndarray, seed: int = 0) -> LevelSetFit:
    """Fit logit p over unit coordinates ``u (cells, d)`` from ``k`` of ``n`` paths."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    u, k, n = np.asarray(u, float), np.asarray(k, float), np.asarray(n, float)
    if u.ndim != 2 or len(u) != len(k) or len(k) != len(n) or np.any(n < 1):
        raise ValueError("fit_level_set needs u (cells, d) and k, n per cell with n >= 1")
    p = (k + 0.5) / (n + 1.0)  # never 0 or 1: a finite logit and variance
    y = _logit(p)
    var = 1.0 / (n * p * (1.0 - p))
    center, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    d = u.shape[1]
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.full(d, 0.3), (1e-2, 1e1))
              + WhiteKernel(1e-3, (1e-6, 1e-1)))
    gp = GaussianProcessRegressor(kernel, alpha=var / scale**2, normalize_y=False,
                                  n_restarts_optimizer=2, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(u, (y - center) / scale)
    return LevelSetFit(gp, center, scale)


def propose(fit: LevelSetFit, level: float, m: int, d: int, *, seed: int = 0,
            candidates: int = 4096, min_dist: float | None = None,
            exclude: np.ndarray | None = None) -> np.ndarray:
    """``m`` new points (unit coordinates) where the straddle score is highest, greedily,
    each at least ``min_dist`` from the others and from ``exclude`` (the cells already
    run); by default ``0.3 / N**(1/d)``, ``N`` the cells after this wave (a third of the
    spacing of ``N`` evenly spread points)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level={level} is out of range; allowed: (0, 1)")
    cand = qmc.Sobol(d, scramble=True, seed=seed).random(candidates)
    mean, sd = fit.predict(cand)
    score = Z95 * sd - np.abs(mean - _logit(np.asarray(level)))
    order = np.argsort(-score)
    taken = [] if exclude is None else list(np.asarray(exclude, float))
    min_dist = 0.3 / (len(taken) + m) ** (1.0 / d) if min_dist is None else min_dist
    picks: list[np.ndarray] = []
    for i in order:
        c = cand[i]
        if taken and np.min(np.linalg.norm(np.asarray(taken) - c, axis=1)) < min_dist:
            continue
        picks.append(c)
        taken.append(c)
        if len(picks) == m:
            break
    return np.asarray(picks).reshape(-1, d)


def needs_paths(k: np.ndarray, n: np.ndarray, level: float) -> np.ndarray:
    """Cells whose Wilson 95 % interval of p straddles ``level``: their Monte Carlo error,
    not their position, decides on which side of the level they lie."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k / n
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    mid = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    return (mid - half < level) & (level < mid + half)


def frontier_flips(before: LevelSetFit, after: LevelSetFit, level: float,
                   reference: np.ndarray) -> float:
    """Share of the ``reference`` points whose side of the level the new fit changed: the
    stopping criterion (the frontier stopped moving when it is small)."""
    t = _logit(np.asarray(level))
    return float(np.mean((before.predict(reference)[0] >= t)
                         != (after.predict(reference)[0] >= t)))
