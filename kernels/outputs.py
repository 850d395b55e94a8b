"""Names, units and descriptions of the kernel's outputs (docs/model.md sections 6-7).

This module is the contract between the kernel, the cube and the analysis: the
farm writes one cube variable per entry of :data:`PATH_OUTPUTS` (with a ``stat``
dimension labelled by :data:`STATS`) and one per entry of :data:`PROBABILITIES`
(each probability ``p_x`` comes with its Wilson 95 % interval ``p_x_lo``, ``p_x_hi``).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "PATH_OUTPUTS",
    "PROBABILITIES",
    "PROBABILITY_BASES",
    "STATS",
    "STAT_INDEX",
    "OutputSpec",
]


class OutputSpec(NamedTuple):
    units: str
    description: str


PATH_OUTPUTS: dict[str, OutputSpec] = {
    "drawdown_btc": OutputSpec("fraction", "peak-to-trough fall of btc over the day"),
    "drawdown_alt": OutputSpec("fraction", "peak-to-trough fall of the altcoin basket"),
    "drawdown_eq": OutputSpec("fraction", "peak-to-trough fall of the AI/tech equity index"),
    "exo_drawdown_btc": OutputSpec("fraction", "btc drawdown of the same shocks, no forced flows"),
    "exo_drawdown_alt": OutputSpec("fraction", "alt drawdown without forced flows"),
    "exo_drawdown_eq": OutputSpec("fraction", "eq drawdown without forced flows"),
    "amplification": OutputSpec("ratio", "drawdown_btc / exo_drawdown_btc (1 when exo is 0)"),
    "liquidated_long": OutputSpec("USD", "perp longs liquidated (btc + alt), at their price"),
    "liquidated_short": OutputSpec("USD", "perp shorts liquidated (btc + alt), at their price"),
    "defi_liquidated": OutputSpec("USD", "DeFi collateral seized and sold (incl. bonus)"),
    "treasury_sold": OutputSpec("USD", "btc sold by treasury companies"),
    "fund_equity_sold": OutputSpec("USD", "equities sold by leveraged funds (before the Fed)"),
    "fund_crypto_sold": OutputSpec("USD", "crypto sold by leveraged funds deleveraging"),
    "collateral_liquidated": OutputSpec(
        "USD", "crypto collateral sold into the crypto market by banks, money funds and repo"),
    "bank_equity_sold": OutputSpec("USD", "equities sold by banks (after the Fed forestalls)"),
    "bank_loss": OutputSpec("fraction of capital", "bank losses from all causes, system, peak"),
    "bank_crypto_loss": OutputSpec("fraction of capital", "the part from crypto collateral"),
    "run_share": OutputSpec("fraction", "share of system wholesale funding that ran"),
    "banks_failed": OutputSpec("fraction of capital", "share of system capital in failed banks"),
    "fed_fired": OutputSpec("0/1", "1 when the Fed put fired during the day"),
    "fed_bought": OutputSpec("USD", "equity fire-sale flow bought by the Fed"),
    "cascade_rounds_max": OutputSpec("rounds", "largest number of cascade rounds in a step"),
    "capped_steps": OutputSpec("fraction", "share of steps whose cascade hit max_rounds"),
    "oi_closed": OutputSpec("fraction", "share of leveraged perp notional liquidated"),
    "time_to_trough": OutputSpec("hours", "time from the start to the btc trough"),
    "systemic": OutputSpec(
        "0/1", "1 when failed banks hold >= systemic_bank_share of capital, the equity "
        "drawdown reaches systemic_eq_drawdown or >= systemic_run_share of funding ran"),
}

STATS: tuple[str, ...] = ("mean", "std", "se", "q05", "q50", "q95", "q99", "es99")
"""Per-cell statistics over paths. ``se`` = std / sqrt(paths), the standard error of the
mean; ``es99`` is the mean of the worst (largest) 1 % of paths."""

STAT_INDEX: dict[str, int] = {name: i for i, name in enumerate(STATS)}

PROBABILITY_BASES: dict[str, OutputSpec] = {
    "p_systemic": OutputSpec("probability", "share of paths with a systemic event"),
    "p_fed_fired": OutputSpec("probability", "share of paths on which the Fed put fired"),
    "p_btc_crash": OutputSpec("probability", "share of paths with btc drawdown >= crash_drawdown"),
}

PROBABILITIES: dict[str, OutputSpec] = {}
for _name, _spec in PROBABILITY_BASES.items():
    PROBABILITIES[_name] = _spec
    PROBABILITIES[f"{_name}_lo"] = OutputSpec("probability",
                                              f"Wilson 95 % lower bound of {_name}")
    PROBABILITIES[f"{_name}_hi"] = OutputSpec("probability",
                                              f"Wilson 95 % upper bound of {_name}")
del _name, _spec
