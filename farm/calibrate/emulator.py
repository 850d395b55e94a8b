"""A Gaussian-process emulator of each target's simulated mean (scikit-learn).

One :class:`sklearn.gaussian_process.GaussianProcessRegressor` per output (an episode's
target) over the unit coordinates of the calibrated parameters: a constant times a
squared-exponential kernel with one length scale per parameter, plus a white-noise
nugget, its hyperparameters fitted by maximising the log marginal likelihood
(L-BFGS-B, scikit-learn's default). Each training point's own Monte Carlo variance of
its mean (var / paths) goes on the diagonal (``alpha``), so the GP smooths the
simulation noise instead of fitting it. Its prediction (mean, variance) screens
candidate points before they are simulated.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GP", "emulated_imax", "fit_gp"]

log = logging.getLogger(__name__)

_MAX_TRAIN = 300  # the most recent points (the fit is cubic in this)


@dataclass(frozen=True)
class GP:
    """A fitted GP: ``predict(u)`` -> (mean, variance of the mean) in the output's units."""

    model: Any  # the fitted sklearn GaussianProcessRegressor (on standardised outputs)
    y_mean: float
    y_sd: float

    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, sd = self.model.predict(np.asarray(u, dtype=float), return_std=True)
        var = np.maximum(np.asarray(sd, float) ** 2, 1e-12)
        return self.y_mean + self.y_sd * mean, var * self.y_sd**2


def fit_gp(u: np.ndarray, y: np.ndarray, noise: np.ndarray) -> GP:
    """Fit a GP to means ``y`` at unit coordinates ``u`` with MC variances ``noise``
    (same units as y squared). Non-finite points (failed cells) are left out."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    ok = np.isfinite(y) & np.isfinite(noise) & np.all(np.isfinite(u), axis=1)
    u, y, noise = u[ok][-_MAX_TRAIN:], y[ok][-_MAX_TRAIN:], noise[ok][-_MAX_TRAIN:]
    if len(y) < 2:
        raise ValueError("an emulator needs at least two finished draws")
    y_mean, y_sd = float(np.mean(y)), float(np.std(y)) or 1.0
    ys, ns = (y - y_mean) / y_sd, noise / y_sd**2
    d = u.shape[1]
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.full(d, 0.3), (0.02, 20.0))
              + WhiteKernel(1e-3, (1e-8, 1.0)))
    gp = GaussianProcessRegressor(kernel, alpha=ns + 1e-8, normalize_y=False,
                                  n_restarts_optimizer=0, random_state=0)
    with warnings.catch_warnings():  # a length scale at its bound is fine for screening
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp.fit(u, ys)
    log.info("GP on %d points: %s", len(y), gp.kernel_)
    return GP(gp, y_mean, y_sd)


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
