"""Which channel carries the shock: the tipping frontier with each channel switched off.

Every channel of the model has a switch (``channel_*``, docs/model.md section 4).
:func:`channel_ablation` re-runs the kernel along the leverage axis at a few
integration levels, once with every channel on and once with each channel off, and
reports the critical leverage (where ``p_systemic`` first reaches ``level``) with its
Monte Carlo band (where the Wilson 95 % interval straddles the level). A channel
whose removal moves the critical leverage far, or makes it vanish (``inf``: never
reached on the grid), carries the shock there.

:func:`threshold_sensitivity` does the same for the thresholds that define a
systemic event (``systemic_bank_share``, ``systemic_eq_drawdown``,
``systemic_run_share``): it needs no re-run, since ``systemic`` is re-evaluated from
the per-path outputs with each alternative threshold.

Both run the kernel (JAX) on the model values of a cube's configuration (or any
mapping of model parameters); a few hundred cells, tens of seconds on one core.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CHANNELS", "THRESHOLDS", "channel_ablation", "critical_from_curve",
           "systemic_from_paths", "threshold_sensitivity"]

CHANNELS: dict[str, str] = {
    "perp liquidations": "channel_perps",
    "DeFi liquidations": "channel_defi",
    "treasury-company sales": "channel_treasury",
    "fund margin calls (crypto -> equities)": "channel_fund_margin",
    "fund deleveraging": "channel_fund_delever",
    "bank crypto collateral (crypto -> banks)": "channel_collateral",
    "wholesale runs": "channel_runs",
    "bank equity fire sales": "channel_bank_sales",
}
"""Row label -> the model's switch for that channel."""

THRESHOLDS: dict[str, tuple[float, ...]] = {
    "systemic_bank_share": (0.1, 0.15, 0.25, 0.4),
    "systemic_eq_drawdown": (0.05, 0.1, 0.2),
    "systemic_run_share": (0.1, 0.25, 0.5),
}
"""Alternative values of each systemic threshold shown by :func:`threshold_sensitivity`."""

LEVERAGE_GRID = tuple(np.round(np.linspace(0.0, 3.0, 25), 3))
_SLACK = 1.0 - 1e-6  # as the kernel: shares equal to a sum of bank weights count


def systemic_from_paths(paths: Mapping[str, np.ndarray], *, systemic_bank_share: float,
                        systemic_eq_drawdown: float, systemic_run_share: float) -> np.ndarray:
    """The ``systemic`` indicator of docs/model.md section 6 from per-path outputs."""
    return ((np.asarray(paths["banks_failed"]) >= _SLACK * systemic_bank_share)
            | (np.asarray(paths["drawdown_eq"]) >= systemic_eq_drawdown)
            | (np.asarray(paths["run_share"]) >= _SLACK * systemic_run_share))


def critical_from_curve(leverage: Sequence[float], p: np.ndarray, level: float) -> float:
    """Smallest leverage at which ``p`` reaches ``level`` (linear interpolation between
    grid points); ``inf`` when it never does on the grid, ``leverage[0]`` if it starts there."""
    lev = np.asarray(leverage, float)
    p = np.asarray(p, float)
    hit = np.flatnonzero(p >= level)
    if hit.size == 0:
        return float("inf")
    i = int(hit[0])
    if i == 0:
        return float(lev[0])
    p0, p1 = p[i - 1], p[i]
    return float(lev[i - 1] + (level - p0) / (p1 - p0) * (lev[i] - lev[i - 1]))


def _wilson(p: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    from kernels.stats import wilson

    return wilson(p, n)


def _run(model: Mapping[str, Any], cells: list[dict[str, float]], n_paths: int, n_steps: int,
         seed: int) -> dict[str, np.ndarray]:
    import jax

    from kernels import make_params, simulate_block, stack_params

    values = {k: v for k, v in dict(model).items() if k != "t_dof"}
    t_dof = int(dict(model).get("t_dof", 4))
    block = stack_params([make_params({**values, **c}) for c in cells])
    res = simulate_block(block, key=jax.random.key(seed), n_paths=n_paths, n_steps=n_steps,
                         t_dof=t_dof, return_paths=True)
    return {k: np.asarray(v) for k, v in res.paths.items()}


def _curve_row(lev, p, n_paths, level) -> tuple[float, float, float]:
    lo, hi = _wilson(p, n_paths)
    return (critical_from_curve(lev, p, level), critical_from_curve(lev, hi, level),
            critical_from_curve(lev, lo, level))


def channel_ablation(model: Mapping[str, Any], *, integration: Sequence[float] = (0.5, 1.0),
                     leverage: Sequence[float] = LEVERAGE_GRID, level: float = 0.5,
                     n_paths: int = 640, n_steps: int = 96, seed: int = 0) -> pd.DataFrame:
    """Critical leverage with every channel on and with each channel off.

    Returns a table with one row per (channel off, integration): ``critical`` (the
    leverage where ``p_systemic`` reaches ``level``; ``inf`` if never on the grid),
    ``band_lo`` / ``band_hi`` (the same for the Wilson upper / lower bounds: the Monte
    Carlo band) and ``shift`` (critical leverage minus the all-on value).
    """
    rows = []
    lev = list(leverage)
    variants = {"none (all channels on)": None, **CHANNELS}
    for r in integration:
        base = None
        for label, switch in variants.items():
            cells = [{"leverage": float(x), "integration": float(r),
                      **({switch: 0.0} if switch else {})} for x in lev]
            paths = _run(model, cells, n_paths, n_steps, seed)
            p = np.asarray(paths["systemic"], float).mean(axis=1)
            crit, band_lo, band_hi = _curve_row(lev, p, n_paths, level)
            base = crit if switch is None else base
            rows.append({"channel off": label, "integration": float(r), "critical": crit,
                         "band_lo": band_lo, "band_hi": band_hi,
                         "shift": crit - base if np.isfinite(crit) and np.isfinite(base)
                         else (0.0 if crit == base else float("inf"))})
    return pd.DataFrame(rows)


def threshold_sensitivity(model: Mapping[str, Any], *, integration: Sequence[float] = (0.5, 1.0),
                          leverage: Sequence[float] = LEVERAGE_GRID, level: float = 0.5,
                          thresholds: Mapping[str, Sequence[float]] | None = None,
                          n_paths: int = 640, n_steps: int = 96, seed: int = 0) -> pd.DataFrame:
    """Critical leverage when one systemic threshold takes other values (the others at
    the model's own), from one run per integration level."""
    thresholds = dict(THRESHOLDS if thresholds is None else thresholds)
    values = dict(model)
    from kernels.paramspec import SPECS

    own = {k: float(values.get(k, SPECS[k].default)) for k in THRESHOLDS}
    lev = list(leverage)
    rows = []
    for r in integration:
        paths = _run(model, [{"leverage": float(x), "integration": float(r)} for x in lev],
                     n_paths, n_steps, seed)
        for name, alternatives in thresholds.items():
            for value in alternatives:
                rule = {**own, name: float(value)}
                p = systemic_from_paths(paths, **rule).mean(axis=1)
                crit, band_lo, band_hi = _curve_row(lev, p, n_paths, level)
                rows.append({"threshold": name, "value": float(value),
                             "model value": value == own[name], "integration": float(r),
                             "critical": crit, "band_lo": band_lo, "band_hi": band_hi})
    return pd.DataFrame(rows)
