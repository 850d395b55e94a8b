"""Every model parameter, declared once: default, unit, allowed range, description.

:data:`SPECS` is the single source from which :class:`kernels.params.ModelParams`
(the kernel's pytree), the range checks of :func:`kernels.params.validate_params`,
the Hydra model files ``conf/model/*.yaml`` (``python -m farm.plan.modelyaml``) and the
parameter tables of ``docs/model.md`` (``python -m farm.plan.modelyaml --docs``) are all
generated. Change a default here and regenerate; ``tests/farm/test_config.py`` fails
while the generated files disagree.

Units: money in US dollars, prices as log prices, drawdowns and shares as
fractions (0.13 = 13 %), volatilities annualised, time in hours, days or steps as
stated. Ranges are intervals in the usual notation (``[0, 1)``); every value must be
finite unless the parameter says that NaN has a meaning.
"""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

__all__ = ["SECTIONS", "SPECS", "Interval", "Spec", "parse_interval"]


class Interval(NamedTuple):
    low: float
    high: float
    low_inclusive: bool
    high_inclusive: bool

    def contains(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = value >= self.low if self.low_inclusive else value > self.low
        below = value <= self.high if self.high_inclusive else value < self.high
        return above and below

    def __str__(self) -> str:
        lo = "-inf" if self.low == -math.inf else f"{self.low:g}"
        hi = "inf" if self.high == math.inf else f"{self.high:g}"
        left = "[" if self.low_inclusive else "("
        right = "]" if self.high_inclusive else ")"
        return f"{left}{lo}, {hi}{right}"


def parse_interval(text: str) -> Interval:
    """``"[0, 1)"`` -> :class:`Interval`; ``inf`` / ``-inf`` for open ends."""
    m = re.fullmatch(r"\s*([\[(])\s*([^,]+?)\s*,\s*([^\])]+?)\s*([\])])\s*", text)
    if not m:
        raise ValueError(f"not an interval: {text!r}")
    return Interval(float(m.group(2)), float(m.group(3)), m.group(1) == "[", m.group(4) == "]")


class Spec(NamedTuple):
    """One model parameter. ``default`` is a float, or a tuple for a bucket table."""

    name: str
    default: Any
    unit: str
    range: Interval
    description: str
    section: str
    nan_allowed: bool = False

    @property
    def is_vector(self) -> bool:
        return isinstance(self.default, tuple)


SECTIONS: dict[str, str] = {
    "axes": "The four sweep axes",
    "shocks": "Exogenous shocks",
    "market": "Market: depth, impact, evaporation",
    "perps": "Perpetual futures",
    "defi": "DeFi lending",
    "treasury": "Crypto treasury companies",
    "funds": "Leveraged multi-asset funds",
    "banks": "Banks, money funds and repo",
    "fed": "Fed put",
    "channels": "Channel switches (1 = on, 0 = off; values in between scale the channel)",
    "outcomes": "Outcome thresholds",
    "numerics": "Numerics",
}

_UNIT = "[0, 1]"
_SHARE = "share"

_TABLE: list[tuple] = [
    # name, default, unit, range, description
    ("axes", [
        ("leverage", 1.0, "x Oct 2025", "[0, 10]",
         "crypto leverage: scales money borrowed against crypto (perp notional, DeFi debt, "
         "treasury-company debt, funds' crypto books, crypto lending by banks); 0 = nobody "
         "borrows, 1 = Oct 2025"),
        ("correlation", 0.5, "1", "[-1, 1]", "correlation of btc and equity exogenous shocks"),
        ("fed_put", 0.0, _SHARE, _UNIT,
         "share of equity fire-sale flow the Fed absorbs (and of bank fire sales it forestalls) "
         "once equities are down past fed_trigger"),
        ("integration", 0.0, _SHARE, _UNIT,
         "regulatory integration: bank crypto-collateral exposure between the Basel floor (0) "
         "and its maximum (1)"),
    ]),
    ("shocks", [
        ("rho_ca", 0.85, "1", "[-1, 1]", "correlation of btc and alt exogenous shocks"),
        ("corr_alt_eq", math.nan, "1", "[-1, 1]",
         "correlation of alt and equity shocks; NaN (default) = rho_ca x correlation"),
        ("vol_btc", 0.55, "1/sqrt(year)", "[0, 5]", "annualised volatility of btc (365-day year)"),
        ("vol_alt", 0.85, "1/sqrt(year)", "[0, 5]",
         "annualised volatility of the altcoin basket (365-day year)"),
        ("vol_eq", 0.25, "1/sqrt(year)", "[0, 5]",
         "annualised volatility of the AI/tech equity index (eq_trading_days-day year)"),
        ("eq_trading_days", 252.0, "days/year", "[1, 366]",
         "trading days in an equity year: the day's equity variance is vol_eq^2 / eq_trading_days"),
        ("step_hours", 0.25, "h", "(0, 24]", "length of one step (96 steps of 0.25 h = one day)"),
        ("jump_step", 4.0, "step", "[0, 100000]", "step index of the scheduled trigger jump"),
        ("jump_btc", -0.03, "log return", "[-3, 3]", "trigger jump of btc"),
        ("jump_alt", -0.06, "log return", "[-3, 3]", "trigger jump of the altcoin basket"),
        ("jump_eq", -0.01, "log return", "[-3, 3]", "trigger jump of the equity index"),
    ]),
    ("market", [
        ("depth_btc", 5.0e8, "USD", "[1e4, 1e15]",
         "normal 1 % depth of btc: flow that moves it 1 %"),
        ("depth_alt", 1.8e8, "USD", "[1e4, 1e15]", "normal 1 % depth of the altcoin basket"),
        ("depth_eq", 5.0e10, "USD", "[1e4, 1e15]", "normal 1 % depth of the equity index"),
        ("impact_y", 1.0, "1", "[0, 10]", "Y of the square-root law dx = -Y 0.01 sqrt(Q / depth)"),
        ("kappa", 0.05, "1", "[0, 100]",
         "evaporation: depth_eff = depth exp(-kappa Q / depth0) for a step's flow Q"),
        ("depth_floor", 0.1, _SHARE, "(0, 1]", "effective depth never falls below this share"),
        ("depth_recovery", 0.05, "per 15 min", _UNIT,
         "share of the depth gap recovered per 15 minutes"),
        ("perm_share", 0.5, _SHARE, _UNIT, "permanent share of price impact"),
        ("resilience", 0.8, "per 15 min", _UNIT,
         "survival factor of transient impact per 15 minutes"),
    ]),
    ("perps", [
        ("perp_long_btc", 5.0e10, "USD", "[0, 1e14]", "leveraged long notional in btc perps"),
        ("perp_short_btc", 1.6e10, "USD", "[0, 1e14]", "leveraged short notional in btc perps"),
        ("perp_long_alt", 6.5e10, "USD", "[0, 1e14]", "leveraged long notional in alt perps"),
        ("perp_short_alt", 1.4e10, "USD", "[0, 1e14]", "leveraged short notional in alt perps"),
        ("perp_leverage_buckets", (2.0, 3.0, 5.0, 10.0, 20.0, 25.0, 50.0, 100.0), "x",
         "[1, 1000]", "position leverage of each bucket"),
        ("perp_long_weights", (0.53, 0.28, 0.12, 0.04, 0.013, 0.01, 0.005, 0.002), _SHARE, _UNIT,
         "share of long notional in each bucket"),
        ("perp_short_weights", (0.62, 0.26, 0.09, 0.021, 0.005, 0.003, 0.0007, 0.0003), _SHARE,
         _UNIT,
         "share of short notional in each bucket"),
        ("perp_cap_btc", 100.0, "x", "[1, 1000]", "venue leverage cap on btc perps"),
        ("perp_cap_alt", 50.0, "x", "[1, 1000]", "venue leverage cap on alt perps"),
        ("maint_margin", 0.005, _SHARE, "[0, 0.5)", "maintenance margin (share of notional)"),
        ("perp_holding_days", 12.0, "days", "[0.01, 1000]",
         "mean holding time of a position: sets how far surviving positions sit from liquidation"),
    ]),
    ("defi", [
        ("defi_collateral_btc", 5.0e9, "USD", "[0, 1e14]", "btc-like collateral (wBTC, cbBTC)"),
        ("defi_collateral_alt", 1.0e10, "USD", "[0, 1e14]", "alt collateral (ETH, LSTs, ...)"),
        ("defi_hf_buckets", (1.1, 1.25, 1.5, 1.75, 2.0, 3.0, 4.0), "1", "(1, 100]",
         "health factor of each bucket at leverage 1"),
        ("defi_hf_weights", (0.05, 0.1, 0.15, 0.2, 0.2, 0.2, 0.1), _SHARE, _UNIT,
         "share of collateral in each bucket"),
        ("defi_liq_threshold", 0.83, _SHARE, "(0, 1]", "liquidation threshold (Aave v3 WETH)"),
        ("defi_close_factor", 0.5, _SHARE, _UNIT,
         "share of debt repaid when defi_full_hf <= HF < 1"),
        ("defi_full_hf", 0.95, "1", "(0, 1]", "below this health factor all the debt is repaid"),
        ("defi_bonus", 0.05, _SHARE, _UNIT, "liquidation bonus on seized collateral"),
        ("defi_selfref_share", 0.3, _SHARE, _UNIT, "self-referential share of collateral"),
        ("defi_selfref_beta", 1.0, "1", "[0, 10]",
         "extra fall of self-referential collateral per unit of drawdown"),
        ("dispersion", 0.5, _SHARE, "[0, 1)",
         "thresholds of DeFi loans, treasury covenants, funds, collateral calls and runs are "
         "spread uniformly over +-dispersion around their nominal value"),
    ]),
    ("treasury", [
        ("treasury_btc", 1.1e11, "USD", "[0, 1e14]", "btc held by treasury companies"),
        ("treasury_ltv", 0.08, _SHARE, "[0, 1)",
         "debt / btc holdings at leverage 1 (mean company)"),
        ("treasury_ltv_buckets", (0.5, 1.0, 1.4, 1.75), "1", "[0, 100]",
         "LTV multiples across companies"),
        ("treasury_ltv_weights", (0.55, 0.25, 0.15, 0.05), _SHARE, _UNIT,
         "share of holdings in each LTV bucket"),
        ("treasury_covenant", 0.5, _SHARE, "(0, 1)", "LTV at which a company must sell btc"),
        ("treasury_target", 0.3, _SHARE, "[0, 1)", "LTV a company sells towards"),
    ]),
    ("funds", [
        ("fund_capital", 1.5e11, "USD", "[1e6, 1e14]", "equity capital of the leveraged funds"),
        ("fund_eq_leverage", 2.0, "x", "[0, 100]", "equity holdings / fund capital"),
        ("fund_crypto_book", 6.0e10, "USD", "[0, 1e14]",
         "notional of the funds' margined crypto book at leverage 1"),
        ("fund_crypto_btc_share", 0.8, _SHARE, _UNIT, "btc share of the crypto book (rest alt)"),
        ("fund_buffer", 0.04, _SHARE, "[0, 10]",
         "cash headroom for crypto margin calls, share of the crypto book"),
        ("fund_eq_sale_share", 0.6, _SHARE, _UNIT,
         "share of margin-call cash raised by selling equities (the rest: Treasuries)"),
        ("fund_max_ratio", 1.25, "1", "(1, 100]",
         "funds deleverage when leverage passes this multiple of its initial value"),
        ("fund_target_ratio", 1.0, "1", "(0, 1]",
         "and sell towards this multiple of the initial leverage"),
    ]),
    ("banks", [
        ("bank_capital", 1.2e12, "USD", "[1e6, 1e15]", "total capital of the banks"),
        ("bank_weights", (0.25, 0.2, 0.15, 0.12, 0.1, 0.08, 0.06, 0.04), _SHARE, _UNIT,
         "capital share of each bank (banks, money funds, repo desks)"),
        ("bank_leverage", 10.0, "x", "[1, 100]", "assets / capital (balance-sheet leverage)"),
        ("bank_eq_share", 0.03, _SHARE, _UNIT, "equity holdings, share of assets"),
        ("bank_eq_sale_share", 0.1, _SHARE, _UNIT,
         "share of a bank's asset sales that are equities (the rest: other assets)"),
        ("bank_crypto_floor", 0.005, "of capital", "[0, 10]",
         "crypto-collateral exposure at integration 0 and leverage 1 (Basel: <= 1 % of Tier 1)"),
        ("bank_crypto_cap", 0.02, "of capital", "[0, 10]",
         "hard cap on the integration-0 exposure at any leverage (Basel: 2 % of Tier 1)"),
        ("bank_crypto_max", (0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9, 1.2), "of capital", "[0, 100]",
         "crypto-collateral exposure of each bank at integration 1 and leverage 1"),
        ("bank_crypto_btc_share", 0.7, _SHARE, _UNIT, "btc share of crypto collateral (rest alt)"),
        ("bank_haircut", 0.2, _SHARE, "[0, 1)",
         "collateral haircut: the lender loses once collateral has fallen past it"),
        ("bank_margin_call", 0.12, _SHARE, "(0, 1)",
         "collateral drawdown at which the lender liquidates the collateral"),
        ("bank_wholesale_share", 0.25, _SHARE, _UNIT,
         "short-term wholesale funding (money funds, repo), share of liabilities"),
        ("bank_liquid_share", 0.08, _SHARE, _UNIT,
         "liquid assets (cash, Treasuries) that pay a run before any fire sale, share of assets"),
        ("run_threshold", 0.25, "of capital", "(0, 10]",
         "loss (share of capital) at which wholesale funders run"),
        ("run_share", 0.5, _SHARE, _UNIT, "share of wholesale funding withdrawn in a full run"),
        ("run_discount", 0.08, _SHARE, _UNIT, "fire-sale discount on other assets sold in a run"),
        ("bank_fail_floor", 0.6, _SHARE, "[0, 1)",
         "a bank has failed once its capital is below this share of its initial capital"),
    ]),
    ("fed", [
        ("fed_trigger", 0.07, _SHARE, "[0, 1)", "equity drawdown that arms the Fed put"),
        ("fed_ramp", 0.02, _SHARE, "(0, 1]",
         "equity drawdown past the trigger over which the Fed's share ramps to fed_put"),
    ]),
    ("channels", [
        ("channel_perps", 1.0, _SHARE, _UNIT, "perp liquidations"),
        ("channel_defi", 1.0, _SHARE, _UNIT, "DeFi liquidations"),
        ("channel_treasury", 1.0, _SHARE, _UNIT, "treasury-company covenant sales"),
        ("channel_fund_margin", 1.0, _SHARE, _UNIT,
         "funds meet crypto margin calls by selling equities (crypto -> equities)"),
        ("channel_fund_delever", 1.0, _SHARE, _UNIT, "funds deleverage past their limit"),
        ("channel_collateral", 1.0, _SHARE, _UNIT,
         "banks' crypto collateral: losses and its liquidation into crypto (crypto -> banks)"),
        ("channel_runs", 1.0, _SHARE, _UNIT, "wholesale runs on banks with large losses"),
        ("channel_bank_sales", 1.0, _SHARE, _UNIT,
         "banks restore leverage by selling equities (banks -> equities)"),
    ]),
    ("outcomes", [
        ("systemic_bank_share", 0.15, "of capital", "(0, 1]",
         "systemic when failed banks hold at least this share of system capital"),
        ("systemic_eq_drawdown", 0.1, _SHARE, "(0, 1]",
         "systemic when the equity drawdown reaches this"),
        ("systemic_run_share", 0.25, _SHARE, "(0, 1]",
         "systemic when this share of system wholesale funding has run"),
        ("crash_drawdown", 0.2, _SHARE, "(0, 1]", "btc drawdown that counts as a crash"),
    ]),
    ("numerics", [
        ("tol", 1e-6, "log price", "(0, 1]",
         "cascade stops when the estimated error of every log price is below this "
         "(floored at 8 machine epsilons of the dtype)"),
        ("max_rounds", 1000.0, "rounds", "[1, 100000]", "cascade rounds allowed per step"),
        ("capped_limit", 0.001, _SHARE, _UNIT,
         "a cell whose share of capped path-steps exceeds this is flagged in its status"),
    ]),
]

NAN_ALLOWED = {"corr_alt_eq"}

SPECS: dict[str, Spec] = {}
for _section, _rows in _TABLE:
    for _name, _default, _unit, _range, _desc in _rows:
        if _name in SPECS:  # pragma: no cover - a typo in the table
            raise RuntimeError(f"parameter {_name} declared twice")
        SPECS[_name] = Spec(_name, _default, _unit, parse_interval(_range), _desc, _section,
                            _name in NAN_ALLOWED)
del _section, _rows, _name, _default, _unit, _range, _desc
