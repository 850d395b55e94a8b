"""The report's "parameter uncertainty" section, for cubes swept over posterior draws.

The headline critical leverage at the neutral point with its parameter band (5 / 50 /
95 % over draws) and its Monte Carlo band, a figure of the critical leverage against
the integration level (or the next axis) with both bands, and the Sobol indices of the
critical leverage with respect to the uncertain parameters (:mod:`analysis.bands`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Mapping

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from kernels.cubeformat import DRAW_DIM

from .bands import critical_leverage_sobol, critical_leverage_uncertainty, draw_parameters
from .cube import axes_of
from .plots import plot_critical_leverage_bands
from .report_text import fmt_value, held_fixed

__all__ = ["uncertainty_html"]

log = logging.getLogger(__name__)


def _fmt(v: float, top: float) -> str:
    return f"{v:.2f}" if np.isfinite(v) else f"beyond {top:g}"


def uncertainty_html(ds: xr.Dataset, level: float, var: str,
                     neutral: Mapping[str, float]) -> tuple[str, Figure | None]:
    """``(html, figure)`` of the section; the figure is None when no second axis exists."""
    esc = html.escape
    axes = [a for a in axes_of(ds) if a not in ("leverage", DRAW_DIM)]
    top = float(np.asarray(ds["leverage"].values, float).max())
    fixed = {a: neutral[a] for a in axes if a in neutral}
    point = critical_leverage_uncertainty(ds, level, var=var, fixed=fixed)
    q = point["parameter_band"].values
    parts = [f"<p>At the reference values ({esc(held_fixed(fixed))}"
             f") the critical leverage is {_fmt(q[1], top)} at the median of "
             f"{point.attrs['n_draws']} posterior draws, with a parameter band (5-95 %) of "
             f"{_fmt(q[0], top)} to {_fmt(q[2], top)}"]
    if "mc_low" in point:
        parts.append(f" and a Monte Carlo band (95 %) of {_fmt(float(point['mc_low']), top)} to "
                     f"{_fmt(float(point['mc_high']), top)}")
    parts.append(".</p>")
    try:
        idx = critical_leverage_sobol(ds, level, fixed=fixed, var=var).table()
        names = ", ".join(f"{k} ({v:.2f})" for k, v in idx["total"].sort_values(
            ascending=False).items())
        parts.append(f"<p>What the band comes from (total Sobol index of the critical "
                     f"leverage, {esc(idx.attrs['method'])}): {esc(names)}.</p>")
    except (ValueError, np.linalg.LinAlgError) as err:
        parts.append(f"<p>Sobol indices over the draws unavailable: {esc(str(err))}.</p>")
    params = draw_parameters(ds)
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{v.min():.3g}</td><td>{v.max():.3g}</td></tr>"
                   for k, v in params.items())
    parts.append("<table><tr><th>uncertain parameter</th><th>min over draws</th>"
                 f"<th>max over draws</th></tr>{rows}</table>")
    fig = None
    if axes:
        x = "integration" if "integration" in axes else axes[0]
        rest = {a: v for a, v in fixed.items() if a != x}
        try:
            along = critical_leverage_uncertainty(ds, level, var=var, fixed=rest)
            parts.append(_band_table(along, x, top))
            fig = plot_critical_leverage_bands(along, x)
        except Exception:  # a report must not die on one figure
            log.exception("critical leverage band figure failed")
    return "".join(parts), fig


def _band_table(band: xr.Dataset, x: str, top: float) -> str:
    """The critical leverage against ``x``: median draw, parameter band, Monte Carlo band."""
    rows, esc = [], html.escape
    for v in band[x].values:
        q = band["parameter_band"].sel({x: v}).values
        mc = ("" if "mc_low" not in band else
              f"{_fmt(float(band['mc_low'].sel({x: v})), top)} to "
              f"{_fmt(float(band['mc_high'].sel({x: v})), top)}")
        rows.append(f"<tr><td>{esc(fmt_value(x, float(v)))}</td><td>{_fmt(q[1], top)}</td>"
                    f"<td>{_fmt(q[0], top)} to "
                    f"{_fmt(q[2], top)}</td><td>{mc}</td></tr>")
    return (f"<table><tr><th>{html.escape(x)}</th><th>critical leverage (median draw)</th>"
            "<th>parameter band 5-95 %</th><th>Monte Carlo band 95 %</th></tr>"
            + "".join(rows) + "</table>")
