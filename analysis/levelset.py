"""A surrogate of a probability's level set on scattered cells (adaptive sweeps).

Cells are points ``u`` (unit coordinates of the swept axes) with ``k`` of ``n`` paths
showing an event (``systemic``...). Cells with the same parameters (an adaptive sweep's
replicates: more paths at one point) are pooled first (:func:`pooled_counts`). A
Gaussian process (scikit-learn) is fitted to the empirical logit of each point's
probability, with each point's own binomial variance on its diagonal (delta method:
``1 / (n p (1 - p))`` with the half-count-smoothed ``p``), so it smooths the Monte Carlo
noise instead of fitting it. Its predictive standard deviation holds both errors: the
Monte Carlo error of the cells near a point and the surrogate's own (how far the point
is from any cell). Hyperparameters (an anisotropic RBF, a constant and a white-noise
term) are fitted on at most :data:`HYPER_POINTS` points, then the process is
conditioned on every point with them fixed: a fit on 2,000 points takes seconds.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["GP_METHODS", "HYPER_POINTS", "LevelSetFit", "cube_fit", "fit_level_set",
           "gp_function", "logit", "pooled_counts", "wilson_straddles"]

Z95 = 1.959964
HYPER_POINTS = 400
"""Points the hyperparameters are fitted on (every point when there are fewer; else an
evenly strided subset in the order given, so the fit is deterministic)."""


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, float)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class LevelSetFit:
    """A fitted surface of logit p over the unit cube; ``predict(u) -> (mean, sd)`` in
    logit units; :meth:`probability` gives p with its 95 % band."""

    model: Any
    center: float
    scale: float

    def mean(self, u: np.ndarray) -> np.ndarray:
        """The fitted logit p at ``u`` (no sd: cheaper)."""
        u = np.atleast_2d(np.asarray(u, float))
        return self.center + self.scale * np.concatenate(
            [self.model.predict(u[s:s + 8192]) for s in range(0, len(u), 8192)] or [[]])

    def predict(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        u = np.atleast_2d(np.asarray(u, float))
        out_m, out_s = np.empty(len(u)), np.empty(len(u))
        for s in range(0, len(u), 8192):  # bounded memory: (8192, N) cross-covariance
            m, sd = self.model.predict(u[s:s + 8192], return_std=True)
            out_m[s:s + 8192], out_s[s:s + 8192] = m, sd
        return self.center + self.scale * out_m, self.scale * out_s

    def probability(self, u: np.ndarray, z: float = Z95
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(p, lower, upper) at ``u``: the fitted probability and its band (mean -/+ z sd
        on the logit scale, mapped back)."""
        mean, sd = self.predict(u)
        return _expit(mean), _expit(mean - z * sd), _expit(mean + z * sd)


def _expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, float)))


def pooled_counts(X: np.ndarray, k: np.ndarray, n: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pool cells with identical parameter rows: ``(rows, k, n, count)`` per distinct row
    (in order of first appearance), ``count`` the cells pooled. Cells with a non-finite
    ``k`` (a failed cell: NaN never becomes a number) are left out."""
    X, k, n = np.asarray(X, float), np.asarray(k, float), np.asarray(n, float)
    ok = np.isfinite(k) & np.all(np.isfinite(X), axis=1)
    X, k, n = X[ok], k[ok], n[ok]
    if not len(X):
        return X, k, n, np.zeros(0, int)
    _, first, inverse = np.unique(X, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(first)  # groups in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    g = rank[inverse]
    m = len(first)
    kk, nn = np.zeros(m), np.zeros(m)
    np.add.at(kk, g, k)
    np.add.at(nn, g, n)
    count = np.bincount(g, minlength=m)
    return X[first[order]], kk, nn, count


def fit_level_set(u: np.ndarray, k: np.ndarray, n: np.ndarray, seed: int = 0,
                  hyper_points: int = HYPER_POINTS) -> LevelSetFit:
    """Fit logit p over unit coordinates ``u (points, d)`` from ``k`` of ``n`` paths."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    u, k, n = np.asarray(u, float), np.asarray(k, float), np.asarray(n, float)
    if u.ndim != 2 or len(u) != len(k) or len(k) != len(n) or len(u) < 2 or np.any(n < 1):
        raise ValueError("fit_level_set needs u (points >= 2, d) and k, n per point, n >= 1")
    p = (k + 0.5) / (n + 1.0)  # never 0 or 1: a finite logit and variance
    y = logit(p)
    var = 1.0 / (n * p * (1.0 - p))
    center, scale = float(np.mean(y)), float(np.std(y)) or 1.0
    yz, alpha = (y - center) / scale, var / scale**2
    d = u.shape[1]
    kernel = (ConstantKernel(1.0, (1e-2, 1e2)) * RBF(np.full(d, 0.3), (1e-2, 1e1))
              + WhiteKernel(1e-3, (1e-6, 1e-1)))
    sub = np.arange(len(u))
    if len(u) > hyper_points:
        sub = np.linspace(0, len(u) - 1, hyper_points).round().astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp = GaussianProcessRegressor(kernel, alpha=alpha[sub], n_restarts_optimizer=2,
                                      random_state=seed)
        gp.fit(u[sub], yz[sub])
        if len(sub) < len(u):  # condition on every point with those hyperparameters
            gp = GaussianProcessRegressor(gp.kernel_, alpha=alpha, optimizer=None)
            gp.fit(u, yz)
    # predict the latent logit p, not a new noisy observation of it: the white-noise term
    # (extra variance between cells beyond the binomial one) stays in the fit's diagonal
    # but not in the predictive sd, so the band narrows as paths are added
    gp.kernel_ = gp.kernel_.k1
    return LevelSetFit(gp, center, scale)


def wilson_straddles(k: np.ndarray, n: np.ndarray, level: float) -> np.ndarray:
    """Points whose Wilson 95 % interval of p straddles ``level``: their Monte Carlo
    error, not their position, decides on which side of the level they lie."""
    k, n = np.asarray(k, float), np.asarray(n, float)
    p = k / n
    half = Z95 * np.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    mid = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    return (mid - half < level) & (level < mid + half)


GP_METHODS = ("gp", "gp_lower", "gp_upper")
"""Scattered-cell methods of :mod:`analysis.surfaces` backed by this surrogate: the
fitted probability, and the ends of its 95 % band (Monte Carlo and surrogate error)."""

_FITS: dict[str, tuple[LevelSetFit, np.ndarray, np.ndarray]] = {}


def _box(ds: Any, X: np.ndarray, axes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The axes' box: an adaptive cube's own ``[lo, hi]`` (its ``adaptive`` attr), else
    the cells' range."""
    import json

    raw = ds.attrs.get("adaptive")
    try:
        settings = (json.loads(raw) if isinstance(raw, str) else raw or {}).get("settings", {})
        if tuple(settings.get("axes", ())) == tuple(axes):
            return np.asarray(settings["lo"], float), np.asarray(settings["hi"], float)
    except (ValueError, AttributeError, KeyError):
        pass
    return X.min(axis=0), X.max(axis=0)


def cube_fit(ds: Any, var: str = "p_systemic") -> tuple[LevelSetFit, np.ndarray, np.ndarray]:
    """(fit, lo, hi): the surrogate of ``var`` (a probability) fitted to a sampled cube's
    cells, replicates pooled, on coordinates scaled by the box ``[lo, hi]``. Cached by
    the cells' values (a report asks one cube many questions)."""
    import hashlib

    from kernels.outputs import PROBABILITY_BASES

    from .cube import cell_table

    if var not in PROBABILITY_BASES:
        raise ValueError(f"method 'gp' needs a probability counted over paths "
                         f"({', '.join(PROBABILITY_BASES)}), got {var!r}")
    X, p, axes = cell_table(ds, var)
    n_paths = int(ds.attrs.get("n_paths", 0))
    if n_paths < 1:
        raise ValueError("the cube has no n_paths attr: cannot count paths for method 'gp'")
    key = hashlib.blake2b(X.tobytes() + np.asarray(p).tobytes() + var.encode(),
                          digest_size=16).hexdigest()
    if key not in _FITS:
        lo, hi = _box(ds, X, axes)
        k = np.round(np.asarray(p, float) * n_paths)
        rows, kk, nn, _ = pooled_counts(X, k, np.full(len(k), float(n_paths)))
        span = np.where(hi > lo, hi - lo, 1.0)
        if len(_FITS) >= 4:
            _FITS.clear()
        seed = int(ds.attrs.get("root_seed", 0) or 0)  # as the sweep's own fits
        _FITS[key] = (fit_level_set((rows - lo) / span, kk, nn, seed=seed), lo, hi)
    return _FITS[key]


def gp_function(ds: Any, var: str, method: str = "gp") -> Any:
    """``f(P) -> values`` at points ``P`` (m, axes) in axis units: the fitted probability
    (``gp``) or its band's lower/upper end (``gp_lower``/``gp_upper``)."""
    if method not in GP_METHODS:
        raise ValueError(f"method must be one of {GP_METHODS}, got {method!r}")
    fit, lo, hi = cube_fit(ds, var)
    span = np.where(hi > lo, hi - lo, 1.0)
    if method == "gp":
        return lambda P: _expit(fit.mean((np.asarray(P, float) - lo) / span))
    part = GP_METHODS.index(method)
    return lambda P: fit.probability((np.asarray(P, float) - lo) / span)[part]
