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
from matplotlib.figure import Figure

from kernels.cubeformat import DRAW_DIM

from . import plots
from .cube import axes_of, cube_info, is_adaptive
from .discovery import prim_boxes
from .intervals import surface_band
from .report_headlines import NEUTRAL, headlines, neutral_values, reference_html
from .report_text import explore_html, held_fixed, pct, prim_html, style_axis
from .sensitivity import sensitivity
from .surfaces import critical_leverage, profile, surface

__all__ = ["NEUTRAL", "build_report", "figure_to_base64", "headlines", "neutral_values",
           "report_figures"]

log = logging.getLogger(__name__)


def figure_to_base64(fig: Figure, dpi: int = 96) -> str:
    """PNG of ``fig`` as a base64 string (for ``<img src="data:image/png;base64,...">``)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def report_figures(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic",
                   fan_paths=None, fan_times=None,
                   fan_cell: Mapping[str, float] | None = None) -> list[tuple[str, Figure]]:
    """The report's figures as ``(title, figure)``; one that fails is logged and left out."""
    axes, ref = axes_of(ds), neutral_values(ds)
    figs: list[tuple[str, Callable[[], Figure]]] = []
    pair = [a for a in ("leverage", "integration") if a in axes]
    pair += [a for a in axes if a not in pair][: 2 - len(pair)]
    if len(pair) == 2:
        fixed = {k: v for k, v in ref.items() if k not in pair}
        figs.append((
            f"{var} over {pair[0]} x {pair[1]} (held fixed: {held_fixed(fixed)})",
            lambda: plots.plot_heatmap(surface(ds, var, pair[0], pair[1], fixed=fixed),
                                       level=level, band=_band_surfaces(ds, var, pair, fixed))))
        if "fed_put" in axes and "fed_put" not in pair:
            rest = {k: v for k, v in fixed.items() if k != "fed_put"}
            figs.append((
                f"frontier {var} = {pct(level)} for several Fed-put strengths (held fixed: "
                f"{held_fixed(rest)})",
                lambda: plots.plot_frontiers(ds, pair[0], pair[1], "fed_put", level=level,
                                             var=var, fixed=rest)))
    if "leverage" in axes and len(axes) >= 2:
        other = next(a for a in ("integration", *axes) if a in axes and a != "leverage")
        fixed = {k: v for k, v in ref.items() if k not in ("leverage", other)}
        figs.append((
            f"critical leverage against {other} (held fixed: {held_fixed(fixed)})",
            lambda: plots.plot_critical_leverage(critical_leverage(ds, level, var, fixed=fixed))))
    if len(axes) == 1:
        figs.append((f"{var} along {axes[0]}", lambda: _profile_fig(ds, var, axes[0])))
    if len(axes) >= 2:
        figs.append(("sensitivity", lambda: plots.plot_sensitivity(sensitivity(ds, var))))
    if fan_paths is not None:
        cell = f" of the cell {held_fixed(fan_cell)}" if fan_cell else ""
        figs.append((f"sample paths{cell}", lambda: plots.plot_fan_chart(
            fan_paths, times=fan_times, xlabel="hours" if fan_times is not None else "step",
            title=f"sample paths{cell}".replace(" of the cell ", " of the cell\n"))))
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
    style_axis(ax.xaxis, x, ds[x].attrs)
    style_axis(ax.yaxis, var, ds[var].attrs, value=True)
    return fig


def _section(title: str, alt: str, make: Callable[[], tuple[str, Figure | None]]) -> list[str]:
    """A section's heading, text and figure; a section that fails says so in one line (a
    report must not die on one section) and the failure is logged."""
    out = [f"<h2>{html.escape(title)}</h2>"]
    try:
        text, fig = make()
    except Exception as err:
        log.exception("report section %r failed", title)
        return [*out, f"<p class='warn'>unavailable: {html.escape(str(err))}</p>"]
    out.append(text)
    if fig is not None:
        out.append(f"<img alt='{html.escape(alt)}' "
                   f"src='data:image/png;base64,{figure_to_base64(fig)}'/>")
    return out


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
    fan_times: np.ndarray | None = None,
    fan_cell: Mapping[str, float] | None = None,
    channels: bool = True,
    store: str | None = None,
) -> Path:
    """Write the HTML report of cube ``ds`` to ``out_html`` and return its path.

    ``fan_paths``: optional sample price paths (array (n_paths, n_times) or name ->
    array) re-simulated for the cell ``fan_cell`` (axis -> value, named in the title),
    drawn as a fan chart against ``fan_times`` (hours; default: step numbers).
    ``channels``: re-simulate the frontier with each channel off and with other systemic
    thresholds (:mod:`analysis.report_channels`, tens of seconds). ``store``: the cube's
    location, for the pointer to ``farm explore``.
    """
    info = cube_info(ds)
    esc = html.escape
    ref = neutral_values(ds)
    body = [
        f"<h1>{esc(title)}</h1>",
        f"<p>Design <b>{esc(info.method)}</b> over axes "
        f"<b>{esc(', '.join(info.axes) or 'none')}</b>: {info.n_cells} cells "
        f"({info.n_done} done, of which {info.n_flagged} flagged; {info.n_pending} pending, "
        f"{info.n_failed} failed), "
        f"{info.n_paths} paths x {info.n_steps} steps, seed {info.root_seed} "
        f"({esc(str(info.seeding))}); git {esc(info.git_commit[:12])}, "
        f"created {esc(info.created)}.</p>",
        reference_html(ds, ref),
        explore_html(store),
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

        body += _section("Parameter uncertainty (posterior draws)",
                         "critical leverage with its bands",
                         lambda: uncertainty_html(ds, level, var, ref))
    if is_adaptive(ds):
        from .report_adaptive import adaptive_html

        body += _section("Adaptive sweep: where the cells went",
                         "the cells by wave, with the frontier and its band",
                         lambda: adaptive_html(ds, level, var, ref))
    body.append("<h2>Figures</h2>")
    for fig_title, fig in report_figures(ds, level, var, fan_paths, fan_times, fan_cell):
        body.append(
            f"<h3>{esc(fig_title)}</h3><img alt='{esc(fig_title)}' "
            f"src='data:image/png;base64,{figure_to_base64(fig)}'/>"
        )
    body.append(f"<h2>Scenario discovery (PRIM, cells with {esc(var)} &ge; {pct(level)})</h2>")
    try:
        body.append(prim_html(prim_boxes(ds, var, level), var, level) if info.axes else
                    "<p>No swept axes: there is no parameter space to search.</p>")
    except Exception as err:
        log.exception("PRIM failed")
        body.append(f"<p class='warn'>PRIM unavailable: {esc(str(err))}</p>")
    if channels and "leverage" in info.axes:
        from .report_channels import channels_html

        body.append("<h2>Which channel carries the shock</h2>")
        body.append(channels_html(ds, level, var, fixed=ref))
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
