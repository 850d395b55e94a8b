"""The report's "adaptive sweep" section: where the cells went, and why the waves stopped.

For a cube of ``sweep.method=adaptive``: the waves (new points, extra paths, how far the
frontier moved, the share of the box the surrogate is undecided about) from the cube's
``adaptive`` attr; how close each wave's new points came to the frontier (their distance
in leverage to the surrogate's critical leverage at their other coordinates); and a
figure of the cells over leverage x integration (or the first two axes) coloured by wave,
with the surrogate's frontier and its 95 % band at the report's reference values.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from .cube import axes_of, cell_table
from .levelset import cube_fit
from .report_text import held_fixed, pct, style_axis

__all__ = ["adaptive_html", "distance_to_frontier"]

log = logging.getLogger(__name__)

NEAR = 0.25  # in leverage: a point "near the frontier"


def _state(ds: xr.Dataset) -> dict:
    raw = ds.attrs.get("adaptive")
    return json.loads(raw) if isinstance(raw, str) else dict(raw or {})


def distance_to_frontier(ds: xr.Dataset, var: str, level: float,
                         axis: str = "leverage") -> np.ndarray:
    """Per cell: |its ``axis`` value - the surrogate's critical ``axis`` at its other
    coordinates| (NaN where the surrogate never reaches ``level`` along ``axis``)."""
    X, _, axes = cell_table(ds)
    fit, lo, hi = cube_fit(ds, var)
    j = axes.index(axis)
    line = np.linspace(lo[j], hi[j], 121)
    span = np.where(hi > lo, hi - lo, 1.0)
    out = np.full(len(X), np.nan)
    for s in range(0, len(X), 256):
        P = np.repeat(X[s:s + 256], len(line), axis=0)
        P[:, j] = np.tile(line, min(256, len(X) - s))
        p = fit.probability((P - lo) / span)[0].reshape(-1, len(line))
        reach = p >= level
        crit = np.where(reach.any(axis=1), line[reach.argmax(axis=1)], np.nan)
        out[s:s + 256] = np.abs(X[s:s + 256, j] - crit)
    return out


def adaptive_html(ds: xr.Dataset, level: float, var: str,
                  neutral: Mapping[str, float]) -> tuple[str, Figure | None]:
    """``(html, figure)`` of the section (figure None without two axes)."""
    esc = html.escape
    state = _state(ds)
    waves = state.get("waves", [])
    if not waves:
        return "<p>No adaptive waves are recorded in this cube.</p>", None
    settings = state.get("settings", {})
    if settings.get("var") != var or float(settings.get("level", level)) != level:
        note = (f"<p class='warn'>The waves sought {esc(str(settings.get('var')))} = "
                f"{pct(float(settings.get('level', 0)))}; this report reads {esc(var)} = "
                f"{pct(level)}, so the cells are placed for another level set.</p>")
    else:
        note = ""
    wave = np.asarray(ds["wave"].values, int)
    rep = np.asarray(ds["replicate"].values, int)
    rows = "".join(
        f"<tr><td>{w['k']}</td><td>{w['stop']}</td><td>{w['new_points']}</td>"
        f"<td>{w['more_paths']}</td><td>{'' if w.get('flips') is None else pct(w['flips'])}"
        f"</td><td>{'' if w.get('undecided') is None else pct(w['undecided'])}</td></tr>"
        for w in waves)
    near_text = ""
    if "leverage" in axes_of(ds):
        d = distance_to_frontier(ds, var, level)
        first, later = (wave == 1) & (rep == 0), (wave > 1) & (rep == 0)
        if later.any():  # a point where the frontier lies outside the box is not near it
            near_text = (
                f" New points within {NEAR:g} in leverage of the surrogate's frontier: "
                f"{pct(np.mean(d[first] <= NEAR))} of wave 1's (a space-filling design) and "
                f"{pct(np.mean(d[later] <= NEAR))} of the later waves' (a point whose "
                "line never reaches the level counts as far).")
    text = (
        f"{note}<p>This cube is an adaptive sweep: {len(wave)} cells at "
        f"{waves[-1].get('points', '?')} points in {len(waves)} waves, each cell "
        f"{ds.attrs.get('n_paths', '?')} paths; {int(np.sum(rep > 0))} cells are extra paths "
        f"at earlier points (up to {int(rep.max()) + 1} sets at a point, pooled).{near_text} "
        f"Criterion: {esc(str(state.get('criterion', '')))}. Stopped: "
        f"{esc(str(state.get('stopped') or 'not yet (rerun to continue)'))}. Frontiers and "
        f"bands in this report come from the surrogate (a Gaussian process on logit p with "
        f"each point's binomial variance); its band holds the Monte Carlo and the surrogate "
        f"error.</p><table><tr><th>wave</th><th>cells</th><th>new points</th>"
        f"<th>more paths</th><th>frontier moved</th><th>undecided</th></tr>{rows}</table>")
    return text, _cells_figure(ds, level, var, neutral, wave, rep)


def _cells_figure(ds, level, var, neutral, wave, rep) -> Figure | None:
    from .intervals import surface_band
    from .plots import _draw_frontier
    from .surfaces import frontier, surface

    axes = axes_of(ds)
    pair = [a for a in ("leverage", "integration") if a in axes]
    pair += [a for a in axes if a not in pair][: 2 - len(pair)]
    if len(pair) < 2:
        return None
    x, y = pair
    fixed = {k: v for k, v in neutral.items() if k not in pair}
    fig = Figure(figsize=(7.2, 5.0), layout="constrained")
    ax = fig.add_subplot()
    X = np.column_stack([np.asarray(ds[a].values, float) for a in pair])
    sc = ax.scatter(X[rep == 0, 0], X[rep == 0, 1], c=wave[rep == 0], cmap="viridis", s=12,
                    label="new point")
    if (rep > 0).any():
        ax.scatter(X[rep > 0, 0], X[rep > 0, 1], c=wave[rep > 0], cmap="viridis", s=40,
                   marker="D", edgecolors="k", linewidths=0.6, label="extra paths")
    fig.colorbar(sc, ax=ax, label="wave")
    try:
        surf = surface(ds, var, x, y, fixed=fixed)
        _draw_frontier(ax, frontier(surf, x, y, level), color="k", lw=2,
                       label=f"frontier {var} = {pct(level)}")
        lo, hi = surface_band(ds, var, x, y, fixed=fixed)
        for s, lab in ((lo, "95 % band"), (hi, None)):
            _draw_frontier(ax, frontier(s, x, y, level), color="k", lw=1, ls="--", label=lab)
    except (ValueError, KeyError) as exc:
        log.info("no frontier on the cells figure: %s", exc)
    style_axis(ax.xaxis, x, ds[x].attrs)
    style_axis(ax.yaxis, y, ds[y].attrs)
    ax.set_title(f"where the cells went\n(frontier held fixed: {held_fixed(fixed)})",
                 fontsize="medium")
    ax.legend(loc="best", fontsize="small")
    return fig
