"""Self-contained HTML report of a cube: headline answers, figures, tables.

:func:`headlines` computes the answers to the tool's question from the cube (where
the frontier lies, how integration shifts it, what the Fed put buys, which
parameters matter most); :func:`build_report` writes them with the figures (base64
PNG, no external files) to one HTML page. Every section degrades to a sentence
when its axis is absent (e.g. a smoke sweep without ``fed_put``) or its computation
fails; the failure is logged and the rest of the report is still written.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr
import yaml
from matplotlib.figure import Figure

from kernels.cubeformat import DRAW_DIM

from . import plots
from .cube import axes_of, cell_values, cube_info, is_grid
from .discovery import boxes_table, prim_boxes
from .intervals import (
    bound_names,
    critical_leverage_band,
    probability_bounds,
    probability_names,
    surface_band,
)
from .sensitivity import sensitivity
from .surfaces import critical_leverage, profile, surface, value_at

__all__ = ["NEUTRAL", "build_report", "figure_to_base64", "headlines", "neutral_values"]

log = logging.getLogger(__name__)

NEUTRAL: dict[str, float] = {
    "leverage": 1.0,
    "correlation": 0.5,
    "fed_put": 0.0,
    "integration": 0.0,
}
"""Neutral values of the four card axes (docs/model.md section 8: the baseline)."""


def neutral_values(ds: xr.Dataset) -> dict[str, float]:
    """Neutral value of every axis: the card's table, else the model value in the cube's
    resolved config, else the median of the swept values; snapped to the nearest grid
    value (grid cubes) or clipped to the sampled range."""
    try:
        model = (yaml.safe_load(cube_info(ds).config) or {}).get("model", {}) or {}
    except (yaml.YAMLError, AttributeError):
        model = {}
    out = {}
    grid = is_grid(ds)
    for a in axes_of(ds):
        vals = np.asarray(ds[a].values, float)
        v = NEUTRAL.get(a, model.get(a) if isinstance(model.get(a), (int, float)) else None)
        v = float(np.median(vals)) if v is None else float(v)
        out[a] = (
            float(vals[np.argmin(np.abs(vals - v))])
            if grid
            else float(np.clip(v, vals.min(), vals.max()))
        )
    return out


def _fmt(v: float, nd: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{nd}g}"


def _at(ds: xr.Dataset, var: str, point: Mapping[str, float], stat: str | None = None) -> float:
    return value_at(ds, var, {k: v for k, v in point.items() if k in axes_of(ds)}, stat)


def headlines(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic") -> dict[str, str]:
    """Sentences answering the tool's questions, keyed by topic (frontier, integration,
    fed_put, sensitivity; plus ``cell`` for a one-cell cube). Missing axes give a
    sentence saying so."""
    axes = axes_of(ds)
    neutral = neutral_values(ds)
    out: dict[str, str] = {}
    if not axes:
        out["cell"] = _single_cell_text(ds)
    sections: dict[str, Callable[[], str]] = {
        "frontier": lambda: _frontier_text(ds, axes, neutral, level, var),
        "integration": lambda: _integration_text(ds, axes, neutral, level, var),
        "fed_put": lambda: _fed_put_text(ds, axes, neutral, var),
        "sensitivity": lambda: _sensitivity_text(ds, axes, var),
    }
    for key, fn in sections.items():
        try:
            out[key] = fn()
        except Exception as err:  # a report must not die on one section
            log.exception("report section %s failed", key)
            out[key] = f"Could not compute the {key} answer: {err}"
    return out


def _interval_text(ds: xr.Dataset, name: str) -> str:
    """`` (95 % interval 0.21 to 0.29)`` of a one-cell probability, ``""`` without one."""
    try:
        lo, hi = probability_bounds(ds, name)
    except (KeyError, ValueError):
        return ""
    return f" (95 % interval {_fmt(float(lo.mean()), 2)} to {_fmt(float(hi.mean()), 2)})"


def _single_cell_text(ds: xr.Dataset) -> str:
    first = ("p_systemic", "p_btc_crash", "p_fed_fired")
    names = [n for n in first if n in ds]
    names += [n for n in probability_names(ds) if n not in first]
    parts = [
        f"{name} = {_fmt(float(cell_values(ds, name).mean()))}{_interval_text(ds, name)}"
        for name in names
    ]
    parts += [
        f"mean {name} = {_fmt(float(cell_values(ds, name, 'mean').mean()))}"
        for name in ("drawdown_btc", "drawdown_eq", "amplification")
        if name in ds
    ]
    return "One cell with the model's own parameter values: " + ", ".join(parts) + "."


def _neutral_desc(neutral: Mapping[str, float], skip: tuple[str, ...]) -> str:
    items = [f"{k} = {_fmt(v)}" for k, v in neutral.items() if k not in skip]
    return ", ".join(items) if items else "no other axes"


def _cl(ds, neutral, level, var, **pin) -> float:
    fixed = {k: v for k, v in {**neutral, **pin}.items() if k != "leverage"}
    return float(critical_leverage(ds, level=level, var=var, fixed=fixed))


def _band_text(ds, neutral, level, var) -> str:
    """The critical leverage's Monte Carlo band (:func:`critical_leverage_band`: stored
    Wilson bounds, else computed from ``n_paths``); "" when ``var`` has no interval."""
    fixed = {k: v for k, v in neutral.items() if k != "leverage"}
    try:
        band = critical_leverage_band(ds, level, var, fixed=fixed)
    except (KeyError, ValueError):
        return ""
    top = _fmt(float(np.asarray(ds["leverage"].values, float).max()))
    early, late = (f"{float(b):.2f}" if np.isfinite(float(b)) else f"beyond {top}" for b in band)
    source = ("stored in the cube" if all(n in ds for n in bound_names(var))
              else f"computed from its {ds.attrs.get('n_paths', '?')} paths")
    return (f" Monte Carlo 95 % band, from the Wilson bounds of {var} ({source}): "
            f"{early} to {late}.")


def _frontier_text(ds, axes, neutral, level, var) -> str:
    if "leverage" not in axes:
        return (
            f"leverage is not swept in this cube (axes: {', '.join(axes) or 'none'}), "
            "so the critical leverage cannot be located."
        )
    cl = _cl(ds, neutral, level, var)
    where = _neutral_desc(neutral, ("leverage",))
    lev = np.asarray(ds["leverage"].values, float)
    p1 = _at(ds, var, {**neutral, "leverage": 1.0})
    tail = f" At the Oct-2025 leverage (1) {var} is {_fmt(p1, 2)}."
    if not np.isfinite(cl):
        top = _at(ds, var, {**neutral, "leverage": float(lev.max())})
        return (
            f"At neutral values ({where}), {var} does not reach {level:g} anywhere in the "
            f"swept leverage range {_fmt(lev.min())} to {_fmt(lev.max())} (it is "
            f"{_fmt(top, 2)} at leverage {_fmt(lev.max())})." + tail
        )
    return (
        f"At neutral values ({where}), {var} reaches {level:g} at a leverage of "
        f"{cl:.2f} times the Oct-2025 calibration (critical leverage)."
        + _band_text(ds, neutral, level, var) + tail
    )


def _integration_text(ds, axes, neutral, level, var) -> str:
    if "integration" not in axes or "leverage" not in axes:
        missing = [a for a in ("leverage", "integration") if a not in axes]
        return (
            f"{' and '.join(missing)} not swept: the shift of the frontier with "
            "regulatory integration cannot be measured."
        )
    r = np.asarray(ds["integration"].values, float)
    lo, hi = float(r.min()), float(r.max())
    c0, c1 = (
        _cl(ds, neutral, level, var, integration=lo),
        _cl(ds, neutral, level, var, integration=hi),
    )
    head = f"Raising regulatory integration from {_fmt(lo)} to {_fmt(hi)}"
    lmax = float(np.asarray(ds["leverage"].values, float).max())
    p0 = _at(ds, var, {**neutral, "leverage": lmax, "integration": lo})
    p1 = _at(ds, var, {**neutral, "leverage": lmax, "integration": hi})
    at_top = f"; at leverage {_fmt(lmax)} it takes {var} from {_fmt(p0, 2)} to {_fmt(p1, 2)}"
    if np.isfinite(c0) and np.isfinite(c1):
        return (
            f"{head} moves the critical leverage from {c0:.2f} to {c1:.2f} "
            f"({c1 - c0:+.2f}){at_top}."
        )
    return (
        f"{head}: critical leverage {_fmt(c0)} -> {_fmt(c1)} (n/a: {var} never reaches "
        f"{level:g} in the swept leverage range){at_top}."
    )


def _fed_put_text(ds, axes, neutral, var) -> str:
    if "fed_put" not in axes:
        return "fed_put is not swept in this cube: what the Fed put buys cannot be measured."
    f = np.asarray(ds["fed_put"].values, float)
    lo, hi = float(f.min()), float(f.max())
    texts = []
    for where_pt in (neutral, {}):  # at neutral values, then averaged over the other axes
        parts = []
        for name, stat in ((var, None), ("drawdown_eq", "mean")):
            if name not in ds:
                continue
            a = _at(ds, name, {**where_pt, "fed_put": lo}, stat)
            b = _at(ds, name, {**where_pt, "fed_put": hi}, stat)
            label = name if stat is None else f"mean {name}"
            parts.append(f"{label} {_fmt(a)} -> {_fmt(b)} ({b - a:+.3g})")
        texts.append("; ".join(parts))
    where = _neutral_desc(neutral, ("fed_put",))
    return (
        f"Raising the Fed put from {_fmt(lo)} to {_fmt(hi)} at neutral values ({where}) "
        f"changes {texts[0]}. Averaged over the other swept axes: {texts[1]}."
    )


def _sensitivity_text(ds, axes, var) -> str:
    if len(axes) < 2:
        return "Fewer than two axes swept: no sensitivity ranking."
    tab = sensitivity(ds, var)
    ranked = ", ".join(f"{i} ({tab.at[i, 'total']:.2f})" for i in tab.index)
    return (
        f"Parameters ranked by total effect on the variance of {var}: {ranked} "
        f"[{tab.attrs.get('method', '')}]."
    )


def figure_to_base64(fig: Figure, dpi: int = 96) -> str:
    """PNG of ``fig`` as a base64 string (for ``<img src="data:image/png;base64,...">``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figures(ds: xr.Dataset, level: float, var: str, fan_paths) -> list[tuple[str, Figure]]:
    axes, neutral = axes_of(ds), neutral_values(ds)
    figs: list[tuple[str, Callable[[], Figure]]] = []
    pair = [a for a in ("leverage", "integration") if a in axes]
    pair += [a for a in axes if a not in pair][: 2 - len(pair)]
    if len(pair) == 2:
        fixed = {k: v for k, v in neutral.items() if k not in pair}
        figs.append(
            (
                f"{var} over {pair[0]} x {pair[1]} (others at neutral values)",
                lambda: plots.plot_heatmap(
                    surface(ds, var, pair[0], pair[1], fixed=fixed),
                    level=level,
                    band=_band_surfaces(ds, var, pair, fixed),
                ),
            )
        )
        if "fed_put" in axes and "fed_put" not in pair:
            rest = {k: v for k, v in fixed.items() if k != "fed_put"}
            figs.append(
                (
                    f"frontier {var} = {level:g} for several Fed-put strengths",
                    lambda: plots.plot_frontiers(
                        ds, pair[0], pair[1], "fed_put", level=level, var=var, fixed=rest
                    ),
                )
            )
    if "leverage" in axes and len(axes) >= 2:
        other = next(a for a in ("integration", *axes) if a in axes and a != "leverage")
        fixed = {k: v for k, v in neutral.items() if k not in ("leverage", other)}
        figs.append(
            (
                f"critical leverage against {other}",
                lambda: plots.plot_critical_leverage(
                    critical_leverage(ds, level, var, fixed=fixed)
                ),
            )
        )
    if len(axes) == 1:
        figs.append((f"{var} along {axes[0]}", lambda: _profile_fig(ds, var, axes[0])))
    if len(axes) >= 2:
        figs.append(("sensitivity", lambda: plots.plot_sensitivity(sensitivity(ds, var))))
    if fan_paths is not None:
        figs.append(("sample paths", lambda: plots.plot_fan_chart(fan_paths)))
    out = []
    for title, make in figs:
        try:
            out.append((title, make()))
        except Exception:
            log.exception("figure %r failed", title)
    return out


def _band_surfaces(ds, var, pair, fixed) -> tuple[xr.DataArray, xr.DataArray] | None:
    """The heatmap's frontier band: surfaces of ``var``'s Wilson bounds, or None."""
    try:
        return surface_band(ds, var, pair[0], pair[1], fixed=fixed)
    except (KeyError, ValueError):
        return None


def _profile_fig(ds: xr.Dataset, var: str, x: str) -> Figure:
    prof = profile(ds, var, x)
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(prof[x], prof, marker="o")
    ax.set_xlabel(x)
    ax.set_ylabel(var)
    return fig


_CSS = (
    "body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}"
    "img{max-width:100%}.warn{color:#a30}"
)


def build_report(
    ds: xr.Dataset,
    out_html: str | Path,
    *,
    level: float = 0.5,
    var: str = "p_systemic",
    title: str = "Crypto-crisis systemic risk: scenario farm report",
    fan_paths: np.ndarray | Mapping[str, np.ndarray] | None = None,
    channels: bool = True,
) -> Path:
    """Write the HTML report of cube ``ds`` to ``out_html`` and return its path.

    ``fan_paths``: optional sample price paths (array (n_paths, n_times) or name ->
    array) re-simulated for a cell, drawn as a fan chart. ``channels``: re-simulate the
    frontier with each channel off and with other systemic thresholds
    (:mod:`analysis.report_channels`, tens of seconds).
    """
    info = cube_info(ds)
    esc = html.escape
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p>Design <b>{esc(info.method)}</b> over axes "
        f"<b>{esc(', '.join(info.axes) or 'none')}</b>: {info.n_cells} cells "
        f"({info.n_done} done, of which {info.n_flagged} flagged; {info.n_pending} pending, "
        f"{info.n_failed} failed), "
        f"{info.n_paths} paths x {info.n_steps} steps, seed {info.root_seed} "
        f"({esc(str(info.seeding))}); git {esc(info.git_commit[:12])}, "
        f"created {esc(info.created)}.</p>",
    ]
    if info.n_flagged:
        body.append(
            f"<p class='warn'>{info.n_flagged} cells are flagged (status 3): their cascade "
            "hit max_rounds on more than capped_limit of the path-steps, so their numbers "
            "are not converged; they are used below. Raise model.max_rounds and rerun to "
            "remove the flag.</p>"
        )
    if not info.complete:
        body.append(
            f"<p class='warn'>{info.n_cells - info.n_done} cells are not done; "
            "they are left out of every number below.</p>"
        )
    body.append("<h2>Answers</h2><ul>")
    body += [f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in headlines(ds, level, var).items()]
    body.append("</ul>")
    if DRAW_DIM in ds.dims and "leverage" in info.axes:
        from .report_uncertainty import uncertainty_html

        body.append("<h2>Parameter uncertainty (posterior draws)</h2>")
        try:
            text, fig = uncertainty_html(ds, level, var, neutral_values(ds))
            body.append(text)
            if fig is not None:
                body.append("<img alt='critical leverage with its bands' "
                            f"src='data:image/png;base64,{figure_to_base64(fig)}'/>")
        except Exception as err:  # a report must not die on one section
            log.exception("parameter uncertainty section failed")
            body.append(f"<p class='warn'>unavailable: {esc(str(err))}</p>")
    body.append("<h2>Figures</h2>")
    for fig_title, fig in _figures(ds, level, var, fan_paths):
        body.append(
            f"<h3>{esc(fig_title)}</h3><img alt='{esc(fig_title)}' "
            f"src='data:image/png;base64,{figure_to_base64(fig)}'/>"
        )
    body.append(f"<h2>Scenario discovery (PRIM, cells with {esc(var)} &ge; {level:g})</h2>")
    try:
        if not info.axes:
            body.append("<p>No swept axes: there is no parameter space to search.</p>")
        else:
            table = boxes_table(prim_boxes(ds, var, level))
            body.append(
                table.to_html(float_format="%.3g")
                if len(table)
                else "<p>No box of systemic cells reaches the density threshold.</p>"
            )
    except Exception as err:
        log.exception("PRIM failed")
        body.append(f"<p class='warn'>PRIM unavailable: {esc(str(err))}</p>")
    if channels and "leverage" in info.axes:
        from .report_channels import channels_html

        body.append("<h2>Which channel carries the shock</h2>")
        body.append(channels_html(ds, level, var, fixed=neutral_values(ds)))
    if info.failed_blocks:
        body.append(
            "<h2>Failed blocks</h2><ul>"
            + "".join(
                f"<li>block {k}: {esc(v)}</li>" for k, v in sorted(info.failed_blocks.items())
            )
            + "</ul>"
        )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    out = Path(out_html)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    log.info("report written to %s", out)
    return out
