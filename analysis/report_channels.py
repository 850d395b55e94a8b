"""Report section: which channel carries the shock, and how the frontier moves with the
thresholds that define a systemic event (:mod:`analysis.ablation` on a cube's model).

The cube stores statistics for the model as configured; these tables re-run the
kernel along the cube's own leverage axis with each channel switched off, at the
integration levels where the cube has a frontier, with the cube's model values,
seed, steps and (at most 640) paths. A few hundred cells: tens of seconds.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from .ablation import channel_ablation, threshold_sensitivity
from .cube import axes_of, cube_info
from .report_text import fmt_value, pct
from .surfaces import critical_leverage

__all__ = ["ChannelTables", "channel_tables", "channels_html", "frontier_integrations"]

log = logging.getLogger(__name__)

MAX_PATHS = 640


class ChannelTables:
    """The ablation and threshold tables of a cube, with the settings they ran with."""

    def __init__(self, channels: pd.DataFrame, thresholds: pd.DataFrame,
                 settings: dict[str, Any]):
        self.channels = channels
        self.thresholds = thresholds
        self.settings = settings


def _model(ds: xr.Dataset) -> dict[str, Any]:
    info = cube_info(ds)
    try:
        model = dict((yaml.safe_load(info.config) or {}).get("model") or {})
    except (yaml.YAMLError, AttributeError):
        model = {}
    return model


def frontier_integrations(ds: xr.Dataset, level: float, var: str, fixed: dict[str, float],
                          most: int = 2) -> list[float]:
    """Integration values where the cube's ``var`` crosses ``level`` along leverage (at
    ``fixed`` values of the other axes): the places that have a frontier to explain; the
    largest ``most`` of them (at least the top of the axis)."""
    r = np.asarray(ds["integration"].values, float) if "integration" in axes_of(ds) else None
    if r is None:
        return [float(fixed.get("integration", 0.0))]
    cl = critical_leverage(ds, level=level, var=var,
                           fixed={k: v for k, v in fixed.items()
                                  if k not in ("leverage", "integration")})
    finite = [float(v) for v, c in zip(r, np.asarray(cl, float).ravel(), strict=False)
              if np.isfinite(c)]
    picked = sorted(set(finite[:1] + finite[-1:])) if finite else [float(r.max())]
    return picked[-most:]


def channel_tables(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic",
                   fixed: dict[str, float] | None = None) -> ChannelTables:
    """Run :func:`channel_ablation` and :func:`threshold_sensitivity` for a cube."""
    info = cube_info(ds)
    fixed = dict(fixed or {})
    model = _model(ds)
    model.update({k: v for k, v in fixed.items() if k not in ("leverage", "integration")})
    lev = (np.asarray(ds["leverage"].values, float) if "leverage" in axes_of(ds)
           else np.round(np.linspace(0.0, 3.0, 16), 3))
    integ = frontier_integrations(ds, level, var, fixed)
    settings = {"integration": integ, "leverage": (float(lev.min()), float(lev.max()), len(lev)),
                "n_paths": min(int(info.n_paths or MAX_PATHS), MAX_PATHS),
                "n_steps": int(info.n_steps or 96), "seed": int(info.root_seed or 0),
                "fixed": {k: v for k, v in model.items()
                          if k in ("correlation", "fed_put") and isinstance(v, (int, float))}}
    kw = {"integration": integ, "leverage": tuple(lev), "level": level,
          "n_paths": settings["n_paths"], "n_steps": settings["n_steps"], "seed": settings["seed"]}
    return ChannelTables(channel_ablation(model, **kw), threshold_sensitivity(model, **kw),
                         settings)


def _cl_text(v: float, top: float) -> str:
    return f"beyond {top:g}" if not np.isfinite(v) else f"{v:.2f}"


def _pivot(tab: pd.DataFrame, index: str, top: float) -> pd.DataFrame:
    cells = tab.assign(text=[f"{_cl_text(c, top)} [{_cl_text(lo, top)}, {_cl_text(hi, top)}]"
                             for c, lo, hi in zip(tab["critical"], tab["band_lo"],
                                                  tab["band_hi"], strict=True)])
    out = cells.pivot_table(index=index, columns="integration", values="text",
                            aggfunc="first", sort=False)
    out.columns = [f"integration = {pct(c)}" for c in out.columns]
    return out


def channels_html(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic",
                  fixed: dict[str, float] | None = None) -> str:
    """The report section (HTML): both tables with a sentence each, or a sentence saying
    why they could not be computed."""
    esc = html.escape
    try:
        t = channel_tables(ds, level, var, fixed)
    except Exception as err:  # a report must not die on one section
        log.exception("channel ablation failed")
        return f"<p class='warn'>Channel ablation unavailable: {esc(str(err))}</p>"
    top = t.settings["leverage"][1]
    s = t.settings
    intro = (
        f"<p>Critical leverage (x Oct 2025, where {esc(var)} reaches {pct(level)}; in brackets "
        f"its Monte Carlo 95 % band from the Wilson bounds) with every channel on and with each "
        f"channel switched off, re-simulated along leverage {s['leverage'][0]:g}-{top:g} "
        f"({s['leverage'][2]} points) with the cube's model, seed {s['seed']}, {s['n_paths']} "
        f"paths x {s['n_steps']} steps. A channel whose removal pushes the critical leverage "
        f"far out (or beyond {top:g}) carries the shock there. Where p_systemic jumps from "
        f"~0 to ~1 between two grid points the crossing is located only to the grid's "
        f"spacing ({(top - s['leverage'][0]) / max(s['leverage'][2] - 1, 1):.2g}), however "
        f"narrow its Monte Carlo band.</p>")
    carriers = _carriers(t.channels)
    summary = f"<p>{esc(carriers)}</p>" if carriers else ""
    thresholds = (
        "<p>How the frontier moves with the thresholds that define a systemic event (one "
        "threshold at a time, the other two at the model's values, marked (model)).</p>")
    th = t.thresholds.copy()
    th["threshold"] = [f"{n} = {fmt_value(n, v)}" + (" (model)" if own else "")
                       for n, v, own in zip(th["threshold"], th["value"], th["model value"],
                                            strict=True)]
    return (intro + _pivot(t.channels, "channel off", top).to_html(escape=True) + summary
            + thresholds + _pivot(th, "threshold", top).to_html(escape=True))


def _carriers(tab: pd.DataFrame) -> str:
    """One sentence per integration level naming the channels that carry the frontier."""
    parts = []
    for r, g in tab.groupby("integration", sort=True):
        base = g[g["channel off"].str.startswith("none")]["critical"].iloc[0]
        rest = g[~g["channel off"].str.startswith("none")]
        if not np.isfinite(base):
            continue
        vital = rest[~np.isfinite(rest["critical"])]["channel off"].tolist()
        strong = rest[np.isfinite(rest["critical"]) & (rest["shift"] >= 0.1)]["channel off"]
        text = f"At integration {pct(r)} (critical leverage {base:.2f})"
        text += (f" the frontier vanishes without {', '.join(vital)}" if vital
                 else " no single channel is indispensable")
        if len(strong):
            text += f"; it moves out by 0.1 or more without {', '.join(strong)}"
        parts.append(text + ".")
    return " ".join(parts)
