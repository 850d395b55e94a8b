"""Names, units and descriptions of the kernel's outputs (DESIGN.md sections 3.6-3.7).

This module is the contract between the kernel, the cube and the analysis: the
farm writes one cube variable per entry of :data:`PATH_OUTPUTS` (with a ``stat``
dimension labelled by :data:`STATS`) and one per entry of :data:`PROBABILITIES`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["PATH_OUTPUTS", "PROBABILITIES", "STATS", "OutputSpec"]


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
    "liquidated_long": OutputSpec("USD", "perp long notional liquidated (btc + alt)"),
    "liquidated_short": OutputSpec("USD", "perp short notional liquidated (btc + alt)"),
    "defi_liquidated": OutputSpec("USD", "DeFi collateral seized and sold (incl. bonus)"),
    "treasury_sold": OutputSpec("USD", "btc sold by treasury companies"),
    "fund_equity_sold": OutputSpec("USD", "equities sold by leveraged multi-asset funds"),
    "bank_loss": OutputSpec("fraction of capital", "bank losses from all causes, peak"),
    "bank_crypto_loss": OutputSpec("fraction of capital", "bank losses on crypto collateral"),
    "banks_failed": OutputSpec("fraction of banks", "share of banks with capital below floor"),
    "fed_fired": OutputSpec("0/1", "1 when the Fed put fired during the day"),
    "fed_bought": OutputSpec("USD", "equity forced flow absorbed by the Fed"),
    "cascade_rounds_max": OutputSpec("rounds", "largest number of cascade rounds in a step"),
    "nonconverged_steps": OutputSpec("steps", "steps whose cascade hit max_rounds"),
    "oi_closed": OutputSpec("fraction", "share of leveraged perp notional liquidated"),
    "time_to_trough": OutputSpec("hours", "time from the start to the btc trough"),
    "systemic": OutputSpec("0/1", "1 when a bank failed or eq drawdown >= threshold"),
}

STATS: tuple[str, ...] = ("mean", "std", "q05", "q50", "q95", "q99", "es99")
"""Per-cell statistics over paths. ``es99`` is the mean of the worst (largest) 1 %."""

PROBABILITIES: dict[str, OutputSpec] = {
    "p_systemic": OutputSpec("probability", "share of paths with a systemic event"),
    "p_fed_fired": OutputSpec("probability", "share of paths on which the Fed put fired"),
    "p_btc_crash": OutputSpec("probability", "share of paths with btc drawdown >= crash_drawdown"),
}
