"""Targets of calibration episodes and their implausibility: plain Python and numpy.

:class:`Target` (a public figure with its uncertainty), :data:`QUANTITIES` (the per-path
quantities a target may name), :func:`per_path_quantities` (them, from the kernel's
per-path outputs) and :func:`implausibility` (docs/calibration.md). Re-exported by
:mod:`farm.plan.episodes`, which reads episodes from the configuration; this module
imports no config library, so the run's texts (:mod:`farm.run.texts`) can use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from farm.errors import ConfigError

__all__ = ["KINDS", "PLAUSIBLE", "QUANTITIES", "Target", "implausibility", "is_number",
           "per_path_quantities"]

KINDS = ("value", "lower_bound")
PLAUSIBLE = 3.0
"""A target is plausible when its implausibility is at most this (the 3-sigma rule)."""

QUANTITIES: dict[str, tuple[str, str]] = {
    "liquidations_usd": ("USD", "perp positions liquidated in the day: liquidated_long + "
                         "liquidated_short"),
    "long_share": ("share", "liquidated_long / liquidations_usd (0 on a path where "
                   "nothing was liquidated)"),
    "drawdown_btc": ("fraction", "peak-to-trough fall of btc"),
    "drawdown_alt": ("fraction", "peak-to-trough fall of the altcoin basket"),
    "drawdown_eq": ("fraction", "peak-to-trough fall of the AI/tech equity index"),
    "oi_closed": ("fraction", "share of leveraged perp notional liquidated"),
}
"""Per-path quantities a target may name: name -> (unit, meaning)."""


def is_number(v: Any) -> bool:
    """An int or float (not a bool)."""
    return isinstance(v, int | float) and not isinstance(v, bool)


@dataclass(frozen=True)
class Target:
    """One public figure: ``observed`` +- ``sd`` (unit of ``quantity``), ``kind`` value or
    lower_bound. Checked on construction (ConfigError naming ``episode.targets.NAME.FIELD``)."""

    name: str
    quantity: str
    observed: float
    sd: float
    kind: str

    def __post_init__(self) -> None:
        key = f"episode.targets.{self.name}"
        if self.quantity not in QUANTITIES:
            raise ConfigError(f"{key}.quantity", self.quantity, " | ".join(QUANTITIES))
        if not is_number(self.observed) or not math.isfinite(self.observed):
            raise ConfigError(f"{key}.observed", self.observed, "a finite number")
        if not is_number(self.sd) or not math.isfinite(self.sd) or self.sd <= 0:
            raise ConfigError(f"{key}.sd", self.sd, "a finite number > 0 (the figure's "
                              "uncertainty, in its unit)")
        if self.kind not in KINDS:
            raise ConfigError(f"{key}.kind", self.kind, " | ".join(KINDS))


def per_path_quantities(paths: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The :data:`QUANTITIES` (float64, one value per path) from the kernel's per-path
    outputs (``liquidated_long``, ``drawdown_btc``, ...: USD and fractions). A quantity
    whose inputs are missing from ``paths`` is left out."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in paths.items()}
    out: dict[str, np.ndarray] = {}
    if "liquidated_long" in p and "liquidated_short" in p:
        liq = p["liquidated_long"] + p["liquidated_short"]
        out["liquidations_usd"] = liq
        some = liq > 0
        out["long_share"] = np.where(some, p["liquidated_long"] / np.where(some, liq, 1.0), 0.0)
    for name in ("drawdown_btc", "drawdown_alt", "drawdown_eq", "oi_closed"):
        if name in p:
            out[name] = p[name]
    return out


def implausibility(sim: np.ndarray, target: Target, var_model: float = 0.0) -> float:
    """I = |mean(sim) - observed| / sqrt(sd^2 + Var_MC + var_model), Var_MC = var(sim) / n
    (numpy's var, ddof 0); for a ``lower_bound`` the numerator is max(0, observed -
    mean(sim)). ``sim``: per-path values of ``target.quantity`` (its unit); ``var_model``:
    model-discrepancy variance (unit squared, >= 0). No or non-finite values -> inf."""
    if not is_number(var_model) or not math.isfinite(var_model) or var_model < 0:
        raise ValueError(f"var_model={var_model!r} is out of range; allowed: a finite "
                         "number >= 0")
    x = np.asarray(sim, dtype=np.float64).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        return math.inf
    mean, var = float(x.mean()), float(x.var())
    if not (math.isfinite(mean) and math.isfinite(var)):  # values near the float64 limit
        return math.inf
    gap = (target.observed - mean) if target.kind == "lower_bound" else abs(mean - target.observed)
    scale = math.sqrt(target.sd ** 2 + var / x.size + var_model)
    return max(gap, 0.0) / scale
