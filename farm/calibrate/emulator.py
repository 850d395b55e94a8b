"""A Gaussian-process emulator of each target's simulated mean (NumPy + SciPy).

One GP per output (an episode's target) over the unit coordinates of the calibrated
parameters: a squared-exponential kernel with one length scale per parameter, a
signal variance and a nugget, fitted by maximising the log marginal likelihood
(L-BFGS-B). Each training point's own Monte Carlo variance of its mean (var / paths)
is on the diagonal, so the GP smooths the simulation noise instead of fitting it.
Its prediction (mean, variance) screens candidate points before they are simulated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

__all__ = ["GP", "fit_gp"]

log = logging.getLogger(__name__)

_MAX_TRAIN = 300  # the most recent points (Cholesky is cubic in this)


def _kernel(a: np.ndarray, b: np.ndarray, scales: np.ndarray, signal: float) -> np.ndarray:
    d = (a[:, None, :] - b[None, :, :]) / scales
    return signal * np.exp(-0.5 * np.sum(d * d, axis=-1))


@dataclass(frozen=True)
class GP:
    """A fitted GP: ``predict(u)`` -> (mean, variance of the mean) in the output's units."""

    x: np.ndarray
    alpha: np.ndarray
    chol: np.ndarray
    scales: np.ndarray
    signal: float
    y_mean: float
    y_sd: float

    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from scipy.linalg import solve_triangular

        k = _kernel(np.asarray(u, dtype=float), self.x, self.scales, self.signal)
        mean = k @ self.alpha
        v = solve_triangular(self.chol, k.T, lower=True)
        var = np.maximum(self.signal - np.sum(v * v, axis=0), 1e-12)
        return self.y_mean + self.y_sd * mean, var * self.y_sd**2


def _neg_loglik(theta: np.ndarray, x: np.ndarray, y: np.ndarray, noise: np.ndarray
                ) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood (constant dropped) and its analytic gradient in
    ``theta = (log length scales, log signal variance, log nugget)``."""
    from scipy.linalg import cho_factor, cho_solve

    d = x.shape[1]
    scales, signal, nugget = np.exp(theta[:d]), np.exp(theta[d]), np.exp(theta[d + 1])
    diff2 = ((x[:, None, :] - x[None, :, :]) / scales) ** 2  # (n, n, d)
    k_se = signal * np.exp(-0.5 * diff2.sum(axis=-1))
    k = k_se + np.diag(noise + nugget + 1e-8)
    try:
        factor = cho_factor(k, lower=True)
    except np.linalg.LinAlgError:
        return 1e25, np.zeros_like(theta)
    alpha = cho_solve(factor, y)
    value = float(0.5 * y @ alpha + np.sum(np.log(np.diag(factor[0]))))
    w = cho_solve(factor, np.eye(len(y))) - np.outer(alpha, alpha)
    grad = np.empty_like(theta)
    grad[:d] = 0.5 * np.einsum("ij,ijk->k", w * k_se, diff2)
    grad[d] = 0.5 * np.sum(w * k_se)
    grad[d + 1] = 0.5 * nugget * np.trace(w)
    return value, grad


def fit_gp(u: np.ndarray, y: np.ndarray, noise: np.ndarray) -> GP:
    """Fit a GP to means ``y`` at unit coordinates ``u`` with MC variances ``noise``
    (same units as y squared). Non-finite points (failed cells) are left out."""
    from scipy.optimize import minimize

    ok = np.isfinite(y) & np.isfinite(noise) & np.all(np.isfinite(u), axis=1)
    u, y, noise = u[ok][-_MAX_TRAIN:], y[ok][-_MAX_TRAIN:], noise[ok][-_MAX_TRAIN:]
    if len(y) < 2:
        raise ValueError("an emulator needs at least two finished draws")
    y_mean, y_sd = float(np.mean(y)), float(np.std(y)) or 1.0
    ys, ns = (y - y_mean) / y_sd, noise / y_sd**2
    d = u.shape[1]
    theta0 = np.concatenate([np.full(d, np.log(0.3)), [0.0, np.log(1e-3)]])
    bounds = [(np.log(0.02), np.log(20.0))] * d + [(np.log(1e-2), np.log(1e2)),
                                                   (np.log(1e-8), np.log(1.0))]
    res = minimize(_neg_loglik, theta0, args=(u, ys, ns), method="L-BFGS-B", jac=True,
                   bounds=bounds, options={"maxiter": 100})
    theta = res.x if np.isfinite(res.fun) else theta0
    scales, signal, nugget = np.exp(theta[:d]), float(np.exp(theta[d])), float(np.exp(theta[d + 1]))
    k = _kernel(u, u, scales, signal) + np.diag(ns + nugget + 1e-8)
    chol = np.linalg.cholesky(k)
    alpha = np.linalg.solve(chol.T, np.linalg.solve(chol, ys))
    log.info("GP on %d points: length scales %s", len(y), np.round(scales, 3).tolist())
    return GP(u, alpha, chol, scales, signal, y_mean, y_sd)


def emulated_imax(u_train: np.ndarray, means: np.ndarray, variances: np.ndarray,
                  paths: int, targets: list, discrepancy: float,
                  u_new: np.ndarray) -> np.ndarray:
    """The emulator's implausibility of ``u_new`` (n, d), maximised over the outputs.

    Per output: I = |mu - observed| / sqrt(sd^2 + emulator variance + model variance +
    the Monte Carlo variance of a simulated mean); one-sided (only a mean below the
    observed value counts) for a ``lower_bound`` target."""
    imax = np.zeros(len(u_new))
    for j, t in enumerate(targets):
        gp = fit_gp(u_train, means[:, j], variances[:, j] / paths)
        mu, var_em = gp.predict(u_new)
        mc = float(np.nanmean(variances[:, j])) / paths
        diff = mu - float(t.observed)
        if t.kind == "lower_bound":
            diff = np.minimum(diff, 0.0)
        scale = np.sqrt(float(t.sd) ** 2 + var_em + (discrepancy * float(t.observed)) ** 2 + mc)
        imax = np.maximum(imax, np.abs(diff) / scale)
    return imax
