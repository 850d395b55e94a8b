"""Least-squares polynomial chaos expansion (PCE) for Sobol indices from any sample.

Inputs are mapped linearly from their range [lo, hi] to [-1, 1] and expanded in
products of orthonormal Legendre polynomials (total degree <= p). The coefficients
come from ordinary least squares; the degree is chosen by the leave-one-out error
(Blatman & Sudret 2010), computed for every degree from one QR factorisation
because the basis columns are ordered by total degree. Sobol indices follow from
the coefficients (Sudret 2008): with ``V = sum c_a^2`` over non-constant terms,
``S1_i`` sums the terms that involve ``x_i`` only, ``ST_i`` all terms that involve
``x_i``. Valid for independent, uniformly distributed inputs (lhs, scrambled Sobol,
random uniform designs).
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import legendre
from scipy.linalg import solve_triangular

__all__ = ["PCEFit", "fit_pce"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PCEFit:
    degree: int
    multi_indices: np.ndarray  # (n_terms, d) degrees per input
    coefficients: np.ndarray  # (n_terms,) in the units of y
    loo_error: float  # leave-one-out mean squared error / Var(y), dimensionless

    @property
    def variance(self) -> float:
        return float((self.coefficients[1:] ** 2).sum())

    def first_order(self) -> np.ndarray:
        A, c2 = self.multi_indices, self.coefficients**2
        only = [(A[:, i] > 0) & (A.sum(axis=1) == A[:, i]) for i in range(A.shape[1])]
        return np.array([c2[m].sum() for m in only]) / self.variance

    def total(self) -> np.ndarray:
        A, c2 = self.multi_indices, self.coefficients**2
        return np.array([c2[A[:, i] > 0].sum() for i in range(A.shape[1])]) / self.variance


def multi_indices(d: int, p: int) -> np.ndarray:
    """All degree vectors of total degree <= p in d inputs, ordered by total degree."""
    rows = [np.zeros(d, int)]
    for total in range(1, p + 1):
        for combo in itertools.combinations_with_replacement(range(d), total):
            rows.append(np.bincount(combo, minlength=d))
    return np.array(rows).reshape(-1, d)


def _basis(Z: np.ndarray, p: int, A: np.ndarray) -> np.ndarray:
    norm = np.sqrt(2 * np.arange(p + 1) + 1)  # orthonormal for U(-1, 1)
    psi = np.ones((Z.shape[0], len(A)))
    for j in range(Z.shape[1]):
        psi *= (legendre.legvander(Z[:, j], p) * norm)[:, A[:, j]]
    return psi


def fit_pce(
    X: np.ndarray,
    y: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    *,
    max_degree: int = 12,
    max_terms: int = 800,
    oversampling: float = 3.0,
) -> PCEFit:
    """Fit a PCE of ``y`` on ``X`` (n, d) with inputs on [lo, hi]; degree by LOO error.

    The largest degree tried keeps ``n_terms <= min(max_terms, n / oversampling)``.
    """
    n, d = X.shape
    span = np.where(hi > lo, hi - lo, 1.0)
    Z = np.clip(2.0 * (X - lo) / span - 1.0, -1.0, 1.0)
    p = 0
    while p < max_degree and len(multi_indices(d, p + 1)) <= min(max_terms, n / oversampling):
        p += 1
    if p == 0:
        raise ValueError(f"{n} cells are too few for a degree-1 expansion in {d} inputs")
    A = multi_indices(d, p)
    psi = _basis(Z, p, A)
    Q, R = np.linalg.qr(psi)
    qy = Q.T @ y
    lev = np.cumsum(Q**2, axis=1)  # leverages of every prefix of the basis
    var_y = float(y.var()) or 1.0
    best: tuple[float, int] | None = None
    for deg in range(1, p + 1):
        k = int((A.sum(axis=1) <= deg).sum())
        resid = y - Q[:, :k] @ qy[:k]
        h = np.minimum(lev[:, k - 1], 1.0 - 1e-12)
        loo = float(np.mean((resid / (1.0 - h)) ** 2)) / var_y
        if best is None or loo < best[0]:
            best = (loo, deg)
    assert best is not None
    loo, deg = best
    k = int((A.sum(axis=1) <= deg).sum())
    coef = solve_triangular(R[:k, :k], qy[:k])
    log.debug("PCE: degree %d (%d terms), LOO error %.3g", deg, k, loo)
    return PCEFit(deg, A[:k], coef, loo)
