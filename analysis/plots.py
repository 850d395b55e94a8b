"""Figures: heatmaps with frontiers, frontier families, sensitivity bars,
critical-leverage lines and fan charts of sample paths.

Every function returns a :class:`matplotlib.figure.Figure` built with the
object-oriented API and no pyplot state: figures render with the Agg canvas
(``fig.savefig(...)``) on headless machines and in worker threads, and importing
this module does not change the user's matplotlib backend (notebooks display the
returned figures as usual).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure

from .report_text import held_fixed, style_axis, value_label
from .surfaces import frontier

__all__ = [
    "plot_critical_leverage",
    "plot_critical_leverage_bands",
    "plot_fan_chart",
    "plot_frontiers",
    "plot_heatmap",
    "plot_sensitivity",
]

log = logging.getLogger(__name__)


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges of a heatmap axis: midpoints between the values, the outer edges at the
    first and last value (no cell reaches beyond the data; uneven axes stay uneven)."""
    v = np.asarray(values, float)
    if len(v) < 2:
        return np.array([v[0] - 0.5, v[0] + 0.5]) if len(v) else v
    return np.concatenate([v[:1], (v[1:] + v[:-1]) / 2, v[-1:]])


def _attrs(obj, name: str) -> dict:
    try:
        return dict(obj[name].attrs)
    except (KeyError, AttributeError):
        return {}


def _draw_frontier(ax, fr: xr.DataArray, **style) -> None:
    pts = np.asarray(fr.values)
    label = style.pop("label", None)
    for i, seg in enumerate(np.unique(fr["segment"].values)):
        p = pts[fr["segment"].values == seg]
        ax.plot(p[:, 0], p[:, 1], label=label if i == 0 else None, **style)


def plot_heatmap(
    surf: xr.DataArray,
    *,
    level: float | None = 0.5,
    title: str | None = None,
    cmap: str = "magma_r",
    vmin: float | None = None,
    vmax: float | None = None,
    band: tuple[xr.DataArray, xr.DataArray] | None = None,
) -> Figure:
    """Heatmap of a 2-D surface (dims ``(y, x)``, from :func:`analysis.surface`) with the
    frontier contour where it crosses ``level`` (None: no contour) and, with ``band``
    (the surfaces of the probability's Wilson bounds, :func:`analysis.surface_band`),
    the frontiers of the bounds dashed: the Monte Carlo 95 % band of the frontier."""
    y, x = (str(d) for d in surf.dims)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    name = str(surf.name or surf.attrs.get("var", ""))
    if value_label(name, surf.attrs).endswith("probability [%]"):
        vmin, vmax = (0.0 if vmin is None else vmin), (1.0 if vmax is None else vmax)
    mesh = ax.pcolormesh(
        _edges(surf[x].values),
        _edges(surf[y].values),
        np.ma.masked_invalid(surf.values),
        shading="flat",
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    bar = fig.colorbar(mesh, ax=ax)
    style_axis(bar.ax.yaxis, name, surf.attrs, value=True)
    if level is not None:
        fr = frontier(surf, x=x, y=y, level=level)
        drawn = bool(fr.sizes["point"])
        if drawn:
            _draw_frontier(ax, fr, color="cyan", lw=2.0, label=f"frontier ({level:.0%})")
        labelled = False
        for bound in band or ():
            fb = frontier(bound.transpose(y, x), x=x, y=y, level=level)
            if fb.sizes["point"]:
                _draw_frontier(ax, fb, color="cyan", lw=1.0, ls="--",
                               label=None if labelled else "95 % band")
                labelled = drawn = True
        if drawn:
            ax.legend(loc="upper right", fontsize="small")
    style_axis(ax.xaxis, x, _attrs(surf, x))
    style_axis(ax.yaxis, y, _attrs(surf, y))
    fixed = surf.attrs.get("fixed") or {}
    sub = f" (held fixed: {held_fixed(fixed)})" if fixed else ""
    ax.set_title(title or f"{name}{sub}", fontsize="medium")
    return fig


def plot_frontiers(
    ds: xr.Dataset,
    x: str,
    y: str,
    by: str = "fed_put",
    values: Sequence[float] | None = None,
    *,
    level: float = 0.5,
    var: str = "p_systemic",
    fixed: Mapping[str, float] | None = None,
    title: str | None = None,
    **surface_kw,
) -> Figure:
    """Frontier lines in the (x, y) plane, one per value of axis ``by`` (default: all
    grid values, or 5 evenly spaced values for sampled cubes)."""
    if values is None:
        vals = np.unique(np.asarray(ds[by].values, float))
        values = vals if len(vals) <= 8 else np.linspace(vals.min(), vals.max(), 5)
    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, max(len(values), 1)))
    drawn = 0
    for v, c in zip(values, colors, strict=False):
        fr = frontier(
            ds, x, y, level=level, var=var, fixed={**(fixed or {}), by: float(v)}, **surface_kw
        )
        if fr.sizes["point"]:
            _draw_frontier(ax, fr, color=c, lw=2.0, label=held_fixed({by: float(v)}))
            drawn += 1
    if drawn:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, f"{var} never crosses {level:g}", ha="center", transform=ax.transAxes)
    ax.set_xlim(float(ds[x].min()), float(ds[x].max()))
    ax.set_ylim(float(ds[y].min()), float(ds[y].max()))
    style_axis(ax.xaxis, x, _attrs(ds, x))
    style_axis(ax.yaxis, y, _attrs(ds, y))
    sub = f"\nheld fixed: {held_fixed(fixed)}" if fixed else ""
    ax.set_title(title or f"frontier {var} = {level:g} by {by}{sub}", fontsize="medium")
    return fig


def plot_critical_leverage(cl: xr.DataArray, *, title: str | None = None) -> Figure:
    """Critical leverage (from :func:`analysis.critical_leverage`) against its first
    dimension, one line per value of a second one (if any)."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    fixed = dict(cl.attrs.get("fixed") or {})
    if cl.ndim == 0:
        ax.axhline(float(cl), color="C0")
    else:
        x = str(cl.dims[0])
        rest = cl.isel({d: 0 for d in cl.dims[2:]}) if cl.ndim > 2 else cl
        fixed.update({str(d): float(cl[d].values[0]) for d in cl.dims[2:]})
        sub = f" ({held_fixed(fixed)})" if fixed else ""
        if rest.ndim == 1:
            ax.plot(rest[x], rest, marker="o", label=f"held fixed: {held_fixed(fixed)}")
        else:
            z = str(rest.dims[1])
            for v in rest[z].values:
                ax.plot(rest[x], rest.sel({z: v}), marker="o",
                        label=f"{held_fixed({z: float(v)})}{sub}")
        ax.legend(fontsize="small")
        style_axis(ax.xaxis, x, _attrs(cl, x))
    axis = cl.attrs.get("axis", "leverage")
    ax.set_ylabel(f"critical {axis}" + (" [x Oct 2025]" if axis == "leverage" else ""))
    sub = f"\nheld fixed: {held_fixed(fixed)}" if fixed else ""
    ax.set_title(title or cl.attrs.get("description", "critical leverage") + sub,
                 fontsize="medium")
    return fig


def plot_sensitivity(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Bars of first-order and total indices (columns ``first_order``, ``total`` and
    optional ``*_conf``, from :func:`analysis.sensitivity`)."""
    fig = Figure(figsize=(6.4, 0.6 * len(table) + 1.6), layout="constrained")
    ax = fig.add_subplot()
    pos = np.arange(len(table))
    h = 0.38
    for k, (col, color) in enumerate((("first_order", "C0"), ("total", "C1"))):
        err = table.get(f"{col}_conf")
        ax.barh(
            pos + (k - 0.5) * h,
            table[col].to_numpy(),
            height=h,
            color=color,
            xerr=None if err is None else err.to_numpy(),
            label=col.replace("_", " "),
        )
    ax.set_yticks(pos, [str(i) for i in table.index])
    ax.invert_yaxis()
    ax.set_xlabel("share of variance")
    ax.legend(fontsize="small")
    ax.set_title(title or table.attrs.get("method", "sensitivity"), fontsize="medium")
    return fig


def plot_fan_chart(
    paths: np.ndarray | Mapping[str, np.ndarray],
    *,
    times: np.ndarray | None = None,
    quantiles: Sequence[float] = (0.05, 0.25, 0.5, 0.75, 0.95),
    n_lines: int = 8,
    ylabel: str = "price (start = 1)",
    xlabel: str = "hours",
    title: str | None = None,
) -> Figure:
    """Fan chart of sample paths: shaded quantile bands, the median and a few paths.

    ``paths``: (n_paths, n_times) array, or a mapping name -> such array (one panel
    each, e.g. ``{"btc": ..., "eq": ...}``). ``times``: (n_times,) x values (default
    0, 1, ...). ``quantiles`` must be symmetric pairs around the median (0.5).
    """
    panels = dict(paths) if isinstance(paths, Mapping) else {"": np.asarray(paths)}
    fig = Figure(figsize=(6.4, 3.2 * len(panels)), layout="constrained")
    axs = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    qs = sorted(quantiles)
    for ax, (name, arr) in zip(axs, panels.items(), strict=True):
        arr = np.atleast_2d(np.asarray(arr, float))
        t = np.arange(arr.shape[1]) if times is None else np.asarray(times)
        band = np.nanquantile(arr, qs, axis=0)
        for i in range(len(qs) // 2):
            alpha = 0.15 + 0.25 * i / max(len(qs) // 2 - 1, 1)
            ax.fill_between(
                t,
                band[i],
                band[-1 - i],
                color="C0",
                alpha=alpha,
                lw=0,
                label=f"{qs[i]:.0%}-{qs[-1 - i]:.0%}",
            )
        ax.plot(t, np.nanmedian(arr, axis=0), color="C0", lw=2, label="median")
        for row in arr[: min(n_lines, len(arr))]:
            ax.plot(t, row, color="0.3", lw=0.6, alpha=0.6)
        ax.set_ylabel(f"{name} {ylabel}".strip())
        ax.legend(fontsize="x-small", loc="lower left")
    axs[-1].set_xlabel(xlabel)
    axs[0].set_title(title or "sample paths", fontsize="medium")
    return fig


def plot_critical_leverage_bands(band: xr.Dataset, x: str) -> Figure:
    """Median critical leverage over draws against ``x``, the 5-95 % parameter band
    shaded, the Monte Carlo band as dashed lines."""
    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.add_subplot()
    q = band["parameter_band"]
    xs = np.asarray(q[x].values, float)
    top = float(band.attrs.get("axis_max", np.nan))
    if not np.isfinite(top):
        top = float(np.nanmax([np.nanmax(q.values), 1.0]))

    def clip(v: xr.DataArray) -> np.ndarray:  # beyond the swept range: drawn at its top
        return np.where(np.isfinite(v.values), v.values, top)

    ax.fill_between(xs, clip(q.sel(quantile=0.05)), clip(q.sel(quantile=0.95)), alpha=0.3,
                    color="C0", label="parameter band (5-95 % of draws)")
    ax.plot(xs, clip(q.sel(quantile=0.5)), marker="o", color="C0", label="median draw")
    if "mc_low" in band:
        ax.plot(xs, clip(band["mc_low"]), "--", color="C1", label="Monte Carlo 95 % band")
        ax.plot(xs, clip(band["mc_high"]), "--", color="C1")
    ax.axhline(top, color="grey", lw=0.8, ls=":")
    ax.text(xs.min(), top, f" at {top:g}: does not tip within the swept leverage",
            va="bottom", fontsize="small", color="grey")
    ax.set_ylim(0, top * 1.1)
    style_axis(ax.xaxis, x, _attrs(band, x))
    ax.set_ylabel("critical leverage (x Oct 2025)")
    ax.set_title(f"critical leverage against {x}, {band.attrs.get('n_draws')} posterior draws",
                 fontsize="medium")
    ax.legend(fontsize="small")
    return fig
