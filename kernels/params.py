"""Typed model parameters: a NamedTuple pytree with documented units and defaults.

Every field is a float (or a float vector for the bucket tables), so that a block
of cells is the same pytree with a leading ``cells`` axis on every leaf. The
kernel never sees a config object: :func:`make_params` converts a mapping (for
example a resolved Hydra ``DictConfig``) into :class:`ModelParams` at the
boundary, and :func:`validate_params` checks ranges with messages that name
the parameter, the value and the allowed range.

Units: money in US dollars, prices as log prices, drawdowns and shares as
fractions (0.13 = 13 %), volatilities annualised, time in steps of
``step_hours`` hours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "ASSETS",
    "VECTOR_FIELDS",
    "ModelParams",
    "baseline",
    "make_params",
    "oct2025",
    "repeat_params",
    "stack_params",
    "validate_params",
]

ASSETS = ("btc", "alt", "eq")


class ModelParams(NamedTuple):
    """Parameters of the crypto-crisis cascade (DESIGN.md section 3).

    Scalars are Python/NumPy floats; the ``*_buckets``/``*_weights``/``bank_*``
    vector fields are 1-D arrays whose lengths are static shapes of the kernel.
    """

    # --- the four sweep axes (card parameters) ---------------------------------
    leverage: float = 1.0  # multiplier of borrowed money vs Oct-2025 (0 = nobody borrows)
    correlation: float = 0.5  # corr of crypto (btc) and equity exogenous shocks, [-1, 1]
    fed_put: float = 0.0  # share of equity fire-sale flow the Fed absorbs once fired, [0, 1]
    integration: float = 0.0  # bank crypto-collateral exposure as share of its maximum, [0, 1]

    # --- exogenous shocks (section 3.2) -----------------------------------------
    rho_ca: float = 0.85  # corr(btc, alt) of exogenous shocks
    corr_alt_eq: float = float("nan")  # corr(alt, eq); NaN = rho_ca x correlation
    vol_btc: float = 0.55  # annualised volatility of btc
    vol_alt: float = 0.85  # annualised volatility of the altcoin basket
    vol_eq: float = 0.25  # annualised volatility of the AI/tech equity index
    step_hours: float = 0.25  # length of one step in hours (96 steps = one day)
    jump_step: float = 4.0  # step index of the scheduled trigger jump
    jump_btc: float = -0.03  # log-return of the trigger jump, btc
    jump_alt: float = -0.06  # log-return of the trigger jump, alt
    jump_eq: float = -0.01  # log-return of the trigger jump, eq

    # --- market: depth, impact, evaporation (section 3.3) -----------------------
    depth_btc: float = 8.0e8  # $ that moves btc by 1 % (aggregate normal book)
    depth_alt: float = 2.0e8  # $ that moves the alt basket by 1 %
    depth_eq: float = 5.0e10  # $ that moves the equity index by 1 %
    impact_y: float = 1.0  # Y of the square-root law dx = -Y 0.01 sqrt(Q / depth)
    kappa: float = 0.15  # evaporation: depth_eff = depth exp(-kappa Q / depth0)
    depth_floor: float = 0.1  # depth_eff never falls below this share of normal depth
    depth_recovery: float = 0.05  # share of the gap to normal depth recovered per step
    perm_share: float = 0.5  # permanent share of price impact
    resilience: float = 0.9  # per-step survival factor of transient impact

    # --- perpetual futures (section 3.4.1) --------------------------------------
    perp_long_btc: float = 2.5e10  # leveraged long notional, btc perps ($ at leverage 1)
    perp_short_btc: float = 1.2e10  # leveraged short notional, btc perps ($)
    perp_long_alt: float = 3.0e10  # leveraged long notional, alt perps ($)
    perp_short_alt: float = 1.3e10  # leveraged short notional, alt perps ($)
    perp_leverage_buckets: Any = (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0)
    perp_long_weights: Any = (0.22, 0.18, 0.2, 0.18, 0.1, 0.06, 0.04, 0.02)
    perp_short_weights: Any = (0.3, 0.22, 0.2, 0.14, 0.07, 0.04, 0.02, 0.01)
    perp_cap_btc: float = 100.0  # venue leverage cap, btc
    perp_cap_alt: float = 50.0  # venue leverage cap, alt
    maint_margin: float = 0.005  # maintenance margin (share of notional)
    entry_dispersion: float = 0.5  # liquidation distances spread +-50 % around nominal

    # --- DeFi lending (section 3.4.2) -------------------------------------------
    defi_collateral_btc: float = 1.5e10  # $ btc-like collateral (wBTC, cbBTC, ...)
    defi_collateral_alt: float = 3.5e10  # $ alt collateral (ETH, LSTs, ...)
    defi_hf_buckets: Any = (1.1, 1.25, 1.5, 1.75, 2.0, 3.0, 4.0)  # health factors at lev 1
    defi_hf_weights: Any = (0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1)
    defi_liq_threshold: float = 0.83  # liquidation threshold (Aave v3 WETH)
    defi_close_factor: float = 0.5  # share of debt repaid when 0.95 <= HF < 1
    defi_full_hf: float = 0.95  # below this HF the whole debt is liquidated
    defi_bonus: float = 0.05  # liquidation bonus on seized collateral
    defi_selfref_share: float = 0.3  # share of collateral that is self-referential
    defi_selfref_beta: float = 1.0  # extra fall of self-referential collateral per unit drawdown

    # --- crypto treasury companies (section 3.4.3) ------------------------------
    treasury_btc: float = 1.1e11  # $ of btc held by treasury companies
    treasury_ltv: float = 0.08  # debt / btc holdings at leverage 1
    treasury_ltv_buckets: Any = (0.5, 1.0, 2.0, 4.0)  # LTV multiples across companies
    treasury_ltv_weights: Any = (0.55, 0.25, 0.15, 0.05)
    treasury_covenant: float = 0.5  # LTV at which a company must sell
    treasury_target: float = 0.3  # LTV it sells towards

    # --- leveraged multi-asset funds (section 3.4.4) ----------------------------
    fund_capital: float = 1.0e11  # $ equity of the funds
    fund_leverage: float = 3.0  # gross assets / equity at leverage 1
    fund_w_btc: float = 0.04  # portfolio weight of btc
    fund_w_alt: float = 0.01  # portfolio weight of alt
    fund_w_eq: float = 0.95  # portfolio weight of equities
    fund_max_ratio: float = 1.25  # lambda_max / initial leverage (sell trigger)
    fund_target_ratio: float = 1.0  # lambda_target / initial leverage (sell towards)

    # --- banks / money funds / repo (section 3.4.5) -----------------------------
    bank_capital: float = 1.2e12  # $ total capital of the banks
    bank_leverage: float = 10.0  # assets / capital at leverage 1
    bank_eq_share: float = 0.03  # equity holdings as share of assets
    bank_weights: Any = (0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04)  # capital shares
    bank_crypto_max: Any = (0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.2, 3.0)  # exposure / capital at r=1
    bank_crypto_btc_share: float = 0.7  # btc share of crypto collateral (rest alt)
    bank_haircut: float = 0.1  # collateral haircut: losses start past this fall
    bank_fail_floor: float = 0.6  # a bank fails when capital < floor x initial capital

    # --- Fed put (section 3.4.6) ------------------------------------------------
    fed_trigger: float = 0.07  # equity drawdown that arms the Fed put
    fed_ramp: float = 0.02  # eq drawdown past the trigger over which absorption ramps to fed_put

    # --- cascade and outcome thresholds -----------------------------------------
    tol: float = 1e-6  # fixed-point tolerance on log prices (floored at 8 eps of the dtype)
    max_rounds: float = 64.0  # maximum cascade rounds per step
    systemic_eq_drawdown: float = 0.2  # eq drawdown that counts as systemic
    crash_drawdown: float = 0.2  # btc drawdown that counts as a crash


VECTOR_FIELDS = tuple(
    name for name, default in ModelParams._field_defaults.items() if isinstance(default, tuple)
)
_PAIRED = {
    "perp_long_weights": "perp_leverage_buckets",
    "perp_short_weights": "perp_leverage_buckets",
    "defi_hf_weights": "defi_hf_buckets",
    "treasury_ltv_weights": "treasury_ltv_buckets",
    "bank_crypto_max": "bank_weights",
}

# (low, high, low_inclusive, high_inclusive); None = unbounded.
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "leverage": (0.0, None, True, False),
    "correlation": (-1.0, 1.0, True, True),
    "fed_put": (0.0, 1.0, True, True),
    "integration": (0.0, 1.0, True, True),
    "rho_ca": (-1.0, 1.0, True, True),
    "defi_liq_threshold": (0.0, 1.0, False, True),
    "step_hours": (0.0, None, False, False),
    "depth_floor": (0.0, 1.0, False, True),
    "depth_recovery": (0.0, 1.0, True, True),
    "perm_share": (0.0, 1.0, True, True),
    "resilience": (0.0, 1.0, True, True),
    "maint_margin": (0.0, 0.5, True, False),
    "entry_dispersion": (0.0, 1.0, False, False),
    "defi_close_factor": (0.0, 1.0, True, True),
    "defi_full_hf": (0.0, 1.0, False, True),
    "defi_bonus": (0.0, 1.0, True, True),
    "defi_selfref_share": (0.0, 1.0, True, True),
    "treasury_ltv": (0.0, None, True, False),
    "treasury_covenant": (0.0, 1.0, False, False),
    "treasury_target": (0.0, 1.0, True, False),
    "fund_leverage": (1.0, None, True, False),
    "fund_w_btc": (0.0, 1.0, True, True),
    "fund_w_alt": (0.0, 1.0, True, True),
    "fund_w_eq": (0.0, 1.0, True, True),
    "fund_max_ratio": (1.0, None, False, False),
    "fund_target_ratio": (0.0, 1.0, False, True),
    "bank_leverage": (1.0, None, True, False),
    "bank_eq_share": (0.0, 1.0, True, True),
    "bank_crypto_btc_share": (0.0, 1.0, True, True),
    "bank_haircut": (0.0, 1.0, True, False),
    "bank_fail_floor": (0.0, 1.0, True, True),
    "fed_trigger": (0.0, 1.0, True, False),
    "fed_ramp": (0.0, 1.0, False, True),
    "tol": (0.0, None, False, False),
    "max_rounds": (1.0, 10000.0, True, True),
    "systemic_eq_drawdown": (0.0, 1.0, False, True),
    "crash_drawdown": (0.0, 1.0, False, True),
}
_NON_NEGATIVE = (
    "vol_btc vol_alt vol_eq jump_step depth_btc depth_alt depth_eq impact_y kappa "
    "perp_long_btc perp_short_btc perp_long_alt perp_short_alt perp_cap_btc perp_cap_alt "
    "defi_collateral_btc defi_collateral_alt defi_selfref_beta treasury_btc fund_capital "
    "bank_capital"
).split()
_POSITIVE = ("depth_btc", "depth_alt", "depth_eq", "perp_cap_btc", "perp_cap_alt")


def _fmt_range(low, high, lo_inc, hi_inc) -> str:
    left = "[" if lo_inc else "("
    right = "]" if hi_inc else ")"
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    return f"{left}{lo}, {hi}{right}"


def _check_range(name: str, value: np.ndarray, rng) -> None:
    low, high, lo_inc, hi_inc = rng
    arr = np.asarray(value, dtype=float)
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr < low) if lo_inc else (arr <= low)
    if high is not None:
        bad |= (arr > high) if hi_inc else (arr >= high)
    if np.any(bad):
        shown = arr[bad].flat[0]
        raise ValueError(
            f"model parameter {name}={shown:g} is out of range; allowed: "
            f"{_fmt_range(low, high, lo_inc, hi_inc)}"
        )


def correlation_matrix(correlation, rho_ca, corr_alt_eq=float("nan")):
    """The 3x3 shock correlation matrix of (btc, alt, eq) as a NumPy array."""
    c = float(correlation)
    r = float(rho_ca)
    ae = r * c if np.isnan(corr_alt_eq) else float(corr_alt_eq)
    return np.array([[1.0, r, c], [r, 1.0, ae], [c, ae, 1.0]])


def validate_params(p: ModelParams) -> ModelParams:
    """Check every parameter against its allowed range; return ``p`` unchanged.

    Works on single cells and on stacked blocks (leading ``cells`` axis).
    Raises ``ValueError`` naming the parameter, the offending value and the range.
    """
    d = p._asdict()
    for name, rng in _RANGES.items():
        _check_range(name, d[name], rng)
    for name in _NON_NEGATIVE:
        _check_range(name, d[name], (0.0, None, True, False))
    for name in _POSITIVE:
        _check_range(name, d[name], (0.0, None, False, False))
    for name in VECTOR_FIELDS:
        arr = np.asarray(d[name], dtype=float)
        if arr.shape[-1:] == (0,) or arr.ndim == 0:
            raise ValueError(f"model parameter {name} must be a non-empty list of numbers")
        if name in _PAIRED and np.shape(d[_PAIRED[name]])[-1] != arr.shape[-1]:
            raise ValueError(
                f"model parameter {name} has {arr.shape[-1]} entries but "
                f"{_PAIRED[name]} has {np.shape(d[_PAIRED[name]])[-1]}; they must match"
            )
        if name.endswith("_weights") or name == "bank_weights":
            _check_range(name, arr, (0.0, 1.0, True, True))
            total = arr.sum(axis=-1)
            if np.any(np.abs(total - 1.0) > 1e-6):
                raise ValueError(
                    f"model parameter {name} sums to {np.ravel(total)[0]:g}; weights must sum to 1"
                )
    _check_range("perp_leverage_buckets", d["perp_leverage_buckets"], (1.0, None, True, False))
    _check_range("defi_hf_buckets", d["defi_hf_buckets"], (1.0, None, False, False))
    _check_range("treasury_ltv_buckets", d["treasury_ltv_buckets"], (0.0, None, True, False))
    _check_range("bank_crypto_max", d["bank_crypto_max"], (0.0, None, True, False))
    w_sum = np.asarray(d["fund_w_btc"]) + np.asarray(d["fund_w_alt"]) + np.asarray(d["fund_w_eq"])
    if np.any(np.abs(w_sum - 1.0) > 1e-6):
        raise ValueError(
            f"model parameters fund_w_btc + fund_w_alt + fund_w_eq = {np.ravel(w_sum)[0]:g}; "
            "they must sum to 1"
        )
    if np.any(np.asarray(d["treasury_target"]) >= np.asarray(d["treasury_covenant"])):
        raise ValueError(
            f"model parameter treasury_target={np.ravel(d['treasury_target'])[0]:g} must be below "
            f"treasury_covenant={np.ravel(d['treasury_covenant'])[0]:g}"
        )
    ae_all = np.asarray(d["corr_alt_eq"], dtype=float)
    if np.any(np.isfinite(ae_all)):
        _check_range("corr_alt_eq", ae_all[np.isfinite(ae_all)], (-1.0, 1.0, True, True))
    lev_max = np.max(np.asarray(d["perp_leverage_buckets"], dtype=float))
    mm = np.max(np.asarray(d["maint_margin"], dtype=float))
    if lev_max * mm >= 1.0:
        raise ValueError(
            f"model parameter perp_leverage_buckets has {lev_max:g}x with maint_margin={mm:g}: "
            "every bucket leverage must be below 1 / maint_margin"
        )
    corr = np.atleast_1d(np.asarray(d["correlation"], dtype=float))
    rho = np.broadcast_to(np.asarray(d["rho_ca"], dtype=float), corr.shape)
    ae = np.broadcast_to(ae_all, corr.shape)
    for c, r, a in zip(corr.ravel(), rho.ravel(), ae.ravel(), strict=True):
        eig = np.linalg.eigvalsh(correlation_matrix(c, r, a))
        if eig.min() < -1e-12:
            raise ValueError(
                f"model parameters correlation={c:g}, rho_ca={r:g}, corr_alt_eq={a:g} give a "
                f"shock correlation matrix that is not positive semi-definite (smallest "
                f"eigenvalue {eig.min():.3g}); allowed: correlations for which the matrix "
                "[[1, rho_ca, c], [rho_ca, 1, corr_alt_eq], [c, corr_alt_eq, 1]] is positive "
                "semi-definite (leave corr_alt_eq unset for rho_ca x correlation, always valid)"
            )
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
                f"unknown model parameter {key!r}; allowed: {', '.join(ModelParams._fields)}"
            )
        fields[key] = value
    out = {}
    for key, value in fields.items():
        if key in VECTOR_FIELDS:
            out[key] = np.asarray(list(value) if not isinstance(value, np.ndarray) else value,
                                  dtype=float)
        else:
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                raise ValueError(
                    f"model parameter {key}={value!r} is not a number"
                ) from None
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
    """The neutral calibration: leverage 1, correlation 0.5, no Fed put, no integration."""
    return make_params({})


def oct2025() -> ModelParams:
    """The 10-11 October 2025 episode (DESIGN.md section 7; sources in docs/model.md).

    BTC-Nasdaq correlation ~0.8 in late 2025; a larger tariff-headline trigger.
    """
    return make_params({
        "correlation": 0.8,
        "jump_btc": -0.04,
        "jump_alt": -0.09,
        "jump_eq": -0.02,
    })
