"""Latin hypercube draws in a box, and the box around the kept draws (unit coordinates).

Parameters live in unit coordinates ``u = (x - lo) / (hi - lo)`` over their priors, so
the prior is the unit cube and a box is ``(low, high)`` arrays in ``[0, 1]``.
"""

from __future__ import annotations

import numpy as np

from farm.calibrate.config import Prior

__all__ = ["from_unit", "kept_box", "lhs", "to_unit"]


def lhs(n: int, low: np.ndarray, high: np.ndarray, seed: int) -> np.ndarray:
    """``n`` Latin hypercube points (scipy.stats.qmc, optimised for low discrepancy
    when cheap) in the unit-coordinate box ``[low, high]``; shape ``(n, d)``."""
    from scipy.stats import qmc

    d = len(low)
    sampler = qmc.LatinHypercube(d=d, seed=np.random.default_rng(seed),
                                 optimization="random-cd" if n * d <= 4000 else None)
    return qmc.scale(sampler.random(n), low, high) if d else np.zeros((n, 0))


def kept_box(u_kept: np.ndarray, margin: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """The box around the kept draws, widened on each side by ``margin`` of its width
    (and at least ``margin / 2`` of the prior's), clipped to the prior."""
    low, high = u_kept.min(axis=0), u_kept.max(axis=0)
    pad = np.maximum(margin * (high - low), margin / 2)
    return np.clip(low - pad, 0.0, 1.0), np.clip(high + pad, 0.0, 1.0)


def to_unit(x: np.ndarray, priors: tuple[Prior, ...]) -> np.ndarray:
    lo = np.array([p.lo for p in priors])
    hi = np.array([p.hi for p in priors])
    return (np.asarray(x, dtype=float) - lo) / (hi - lo)


def from_unit(u: np.ndarray, priors: tuple[Prior, ...]) -> np.ndarray:
    """Parameter values (their units) of unit coordinates; the ends map exactly."""
    lo = np.array([p.lo for p in priors])
    hi = np.array([p.hi for p in priors])
    return np.clip(lo + np.asarray(u, dtype=float) * (hi - lo), lo, hi)
