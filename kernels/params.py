"""Typed model parameters: a NamedTuple pytree generated from :data:`kernels.paramspec.SPECS`.

Every field is a float (or a float vector for the bucket tables), so that a block
of cells is the same pytree with a leading ``cells`` axis on every leaf. The
kernel never sees a config object: :func:`make_params` converts a mapping (for
example a resolved Hydra ``DictConfig``) into :class:`ModelParams` at the
boundary, and :func:`validate_params` checks every value against the range
declared in :mod:`kernels.paramspec`, with messages that name the parameter, the
value and the allowed range.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from .paramspec import SPECS

__all__ = [
    "ASSETS",
    "OCT2025",
    "VECTOR_FIELDS",
    "ModelParams",
    "baseline",
    "correlation_matrix",
    "make_params",
    "oct2025",
    "psd_ok",
    "repeat_params",
    "stack_params",
    "validate_params",
]

ASSETS = ("btc", "alt", "eq")

ModelParams = NamedTuple("ModelParams", [(name, Any) for name in SPECS])
ModelParams.__new__.__defaults__ = tuple(spec.default for spec in SPECS.values())
ModelParams.__doc__ = (
    "Parameters of the crypto-crisis cascade: one field per entry of "
    "kernels.paramspec.SPECS (default, unit, range and description there; docs/model.md "
    "has the tables). Scalars are floats; the bucket tables are 1-D float arrays whose "
    "lengths are static shapes of the kernel."
)
ModelParams.__module__ = __name__

VECTOR_FIELDS = tuple(name for name, spec in SPECS.items() if spec.is_vector)
_PAIRED = {
    "perp_long_weights": "perp_leverage_buckets",
    "perp_short_weights": "perp_leverage_buckets",
    "defi_hf_weights": "defi_hf_buckets",
    "treasury_ltv_weights": "treasury_ltv_buckets",
    "bank_crypto_max": "bank_weights",
}
_WEIGHTS = ("perp_long_weights", "perp_short_weights", "defi_hf_weights",
            "treasury_ltv_weights", "bank_weights")

OCT2025 = {
    "correlation": 0.8,
    "jump_btc": -0.075,
    "jump_alt": -0.16,
    "jump_eq": -0.021,
}
"""What the 10-11 October 2025 episode changes from :func:`baseline`: the BTC-Nasdaq
correlation of late 2025 and the tariff headline as the trigger jump."""


def _first(arr: np.ndarray, bad: np.ndarray) -> float:
    return float(np.asarray(arr)[bad].flat[0])


def _check_spec(name: str, value: Any) -> None:
    spec = SPECS[name]
    arr = np.asarray(value, dtype=float)
    ok = np.isfinite(arr)
    rng = spec.range
    ok &= (arr >= rng.low) if rng.low_inclusive else (arr > rng.low)
    ok &= (arr <= rng.high) if rng.high_inclusive else (arr < rng.high)
    if spec.nan_allowed:
        ok |= np.isnan(arr)
    if not np.all(ok):
        allowed = str(rng) + (" or NaN" if spec.nan_allowed else "")
        raise ValueError(f"model parameter {name}={_first(arr, ~ok):g} is out of range; "
                         f"allowed: {allowed} ({spec.unit})")


def correlation_matrix(correlation, rho_ca, corr_alt_eq=float("nan")):
    """The 3x3 shock correlation matrix of (btc, alt, eq) as a NumPy array."""
    c = float(correlation)
    r = float(rho_ca)
    ae = r * c if np.isnan(corr_alt_eq) else float(corr_alt_eq)
    return np.array([[1.0, r, c], [r, 1.0, ae], [c, ae, 1.0]])


PSD_TOL = 1e-12  # determinant tolerance: a singular (boundary) matrix in float64 is PSD


def psd_ok(correlation: Any, rho_ca: Any, corr_alt_eq: Any) -> np.ndarray:
    """Whether each 3x3 shock correlation matrix [[1, rho_ca, c], [rho_ca, 1, ae],
    [c, ae, 1]] is positive semi-definite (closed form, vectorised over any shape; NaN
    ``corr_alt_eq`` means ``rho_ca x correlation``). With entries in [-1, 1] (the declared
    ranges) the diagonal and the 2x2 principal minors 1 - x^2 are >= 0, so all principal
    minors are >= 0 (Sylvester's criterion for semi-definiteness) iff the determinant is
    >= 0 (``PSD_TOL`` allowed below). The same verdicts as ``numpy.linalg.eigvalsh``."""
    c = np.atleast_1d(np.asarray(correlation, dtype=float))
    r = np.asarray(rho_ca, dtype=float)
    ae = np.asarray(corr_alt_eq, dtype=float)
    c, r, ae = np.broadcast_arrays(c, r, ae)
    ae = np.where(np.isnan(ae), r * c, ae)
    minors_ok = (np.abs(c) <= 1.0) & (np.abs(r) <= 1.0) & (np.abs(ae) <= 1.0)
    det = 1.0 + 2.0 * r * c * ae - r * r - c * c - ae * ae
    return minors_ok & (det >= -PSD_TOL)


def _check_psd(d: dict[str, Any]) -> None:
    """The shock correlation matrix must be positive semi-definite (:func:`psd_ok`)."""
    c = np.atleast_1d(np.asarray(d["correlation"], dtype=float))
    r = np.broadcast_to(np.asarray(d["rho_ca"], dtype=float), c.shape)
    ae = np.broadcast_to(np.asarray(d["corr_alt_eq"], dtype=float), c.shape)
    ae = np.where(np.isnan(ae), r * c, ae)
    bad = ~psd_ok(c, r, ae)
    if np.any(bad):
        i = int(np.flatnonzero(bad.ravel())[0])
        raise ValueError(
            f"model parameters correlation={c.ravel()[i]:g}, rho_ca={r.ravel()[i]:g}, "
            f"corr_alt_eq={ae.ravel()[i]:g} give a shock correlation matrix that is not "
            "positive semi-definite; allowed: correlations for which [[1, rho_ca, c], "
            "[rho_ca, 1, corr_alt_eq], [c, corr_alt_eq, 1]] is positive semi-definite "
            "(leave corr_alt_eq unset for rho_ca x correlation, always valid)")


def _check_vectors(d: dict[str, Any]) -> None:
    for name in VECTOR_FIELDS:
        arr = np.asarray(d[name], dtype=float)
        if arr.ndim == 0 or arr.shape[-1] == 0:
            raise ValueError(f"model parameter {name} must be a non-empty list of numbers")
        if name in _PAIRED and np.shape(d[_PAIRED[name]])[-1] != arr.shape[-1]:
            raise ValueError(
                f"model parameter {name} has {arr.shape[-1]} entries but "
                f"{_PAIRED[name]} has {np.shape(d[_PAIRED[name]])[-1]}; they must match")
        _check_spec(name, arr)
    for name in _WEIGHTS:
        total = np.asarray(d[name], dtype=float).sum(axis=-1)
        if np.any(np.abs(total - 1.0) > 1e-6):
            raise ValueError(f"model parameter {name} sums to {np.ravel(total)[0]:g}; "
                             "allowed: weights that sum to 1")


def _check_cross(d: dict[str, Any]) -> None:
    """Constraints between parameters (each names the parameter a user should change)."""
    lev_max = np.max(np.asarray(d["perp_leverage_buckets"], dtype=float))
    mm = np.max(np.asarray(d["maint_margin"], dtype=float))
    if lev_max * mm >= 1.0:
        raise ValueError(
            f"model parameter maint_margin={mm:g} is out of range with a {lev_max:g}x bucket; "
            "allowed: maint_margin below 1 / (largest perp_leverage_buckets)")
    target = np.asarray(d["treasury_target"], dtype=float)
    covenant = np.asarray(d["treasury_covenant"], dtype=float)
    if np.any(target >= covenant):
        raise ValueError(f"model parameter treasury_target={np.max(target):g} is out of range; "
                         f"allowed: below treasury_covenant={np.min(covenant):g}")
    # no treasury company may start the day in breach of its covenant
    ltv = (np.asarray(d["leverage"], dtype=float) * np.asarray(d["treasury_ltv"], dtype=float)
           * np.max(np.asarray(d["treasury_ltv_buckets"], dtype=float), axis=-1))
    bad = ltv >= covenant
    if np.any(bad):
        lev = np.broadcast_to(np.asarray(d["leverage"], dtype=float), bad.shape)
        limit = np.broadcast_to(covenant / np.maximum(ltv / np.maximum(lev, 1e-300), 1e-300),
                                bad.shape)
        start = _first(np.broadcast_to(ltv, bad.shape), bad)
        raise ValueError(
            f"model parameter leverage={_first(lev, bad):g} puts a crypto treasury company in "
            f"covenant breach before the day starts (start LTV {start:.3g} "
            f">= treasury_covenant); allowed: leverage < {_first(limit, bad):.4g} with these "
            "treasury_ltv and treasury_ltv_buckets")
    floor = np.asarray(d["bank_crypto_floor"], dtype=float)
    top = np.min(np.asarray(d["bank_crypto_max"], dtype=float), axis=-1)
    if np.any(top < floor):
        raise ValueError(f"model parameter bank_crypto_max has {np.min(top):g} below "
                         f"bank_crypto_floor={np.max(floor):g}; allowed: every bank's maximum "
                         ">= the floor")


def validate_params(p: ModelParams) -> ModelParams:
    """Check every parameter against its declared range and the cross-constraints;
    return ``p`` unchanged.

    Works on single cells and on stacked blocks (leading ``cells`` axis). Raises
    ``ValueError`` naming the parameter, the offending value and what is allowed.
    """
    d = p._asdict()
    for name in SPECS:
        if name not in VECTOR_FIELDS:
            _check_spec(name, d[name])
    _check_vectors(d)
    _check_cross(d)
    _check_psd(d)
    return p


def make_params(values: Mapping[str, Any] | None = None, *, base: ModelParams | None = None,
                validate: bool = True) -> ModelParams:
    """Build :class:`ModelParams` from a mapping (e.g. a resolved Hydra config).

    Unknown keys raise ``ValueError`` naming the key. Vector fields become float
    arrays, scalars become Python floats.
    """
    base = ModelParams() if base is None else base
    fields = base._asdict()
    for key, value in dict(values or {}).items():
        if key not in fields:
            raise ValueError(
                f"unknown model parameter {key!r}; allowed: {', '.join(ModelParams._fields)}")
        fields[key] = value
    out = {}
    for key, value in fields.items():
        if key in VECTOR_FIELDS:
            try:
                out[key] = np.asarray(list(value) if not isinstance(value, np.ndarray) else value,
                                      dtype=float)
            except (TypeError, ValueError):
                raise ValueError(f"model parameter {key}={value!r} is not a list of numbers; "
                                 "allowed: a list of numbers") from None
        else:
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"model parameter {key}={value!r} is not a number; "
                                 "allowed: a number") from None
    params = ModelParams(**out)
    return validate_params(params) if validate else params


def stack_params(cells: list[ModelParams]) -> ModelParams:
    """Stack single-cell parameters into a block with a leading ``cells`` axis."""
    if not cells:
        raise ValueError("a block needs at least one cell")
    return ModelParams(*(np.stack([np.asarray(getattr(c, f), dtype=float) for c in cells])
                         for f in ModelParams._fields))


def repeat_params(params: ModelParams, n: int) -> ModelParams:
    """``n`` copies of single-cell ``params`` as a block (leading ``cells`` axis, float64);
    the same as ``stack_params([params] * n)``, without a Python loop over cells."""
    if n < 1:
        raise ValueError("a block needs at least one cell")
    return ModelParams(*(np.repeat(np.asarray(v, dtype=float)[None], n, axis=0)
                         for v in params))


def baseline() -> ModelParams:
    """The neutral calibration: Oct-2025 leverage (1), correlation 0.5, no Fed put, the
    Basel floor (integration 0), a modest trigger jump."""
    return make_params({})


def oct2025() -> ModelParams:
    """The 10-11 October 2025 episode: :func:`baseline` plus :data:`OCT2025`."""
    return make_params(OCT2025)
