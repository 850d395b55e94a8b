"""The report's answers: one sentence per question, each saying what it holds fixed.

Where the critical leverage lies (at the integration levels where ``var`` crosses the
level at all, not only at the baseline, where on the default sweep nothing happens),
how integration moves it, what the Fed put buys where it matters most, which
parameters matter most. An axis that a sentence does not vary sits at its reference
value (:func:`neutral_values`, explained by :func:`reference_html`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping

import numpy as np
import xarray as xr
import yaml

from .cube import axes_of, cell_values, cube_info, is_adaptive, is_grid
from .intervals import bound_names, critical_leverage_band, probability_bounds, probability_names
from .report_text import fmt_value, held_fixed, pct
from .sensitivity import sensitivity
from .surfaces import critical_leverage, surface, value_at

__all__ = ["NEUTRAL", "headlines", "neutral_values", "reference_html"]

log = logging.getLogger(__name__)

NEUTRAL: dict[str, float] = {"leverage": 1.0, "correlation": 0.5, "fed_put": 0.0,
                             "integration": 0.0}
"""Reference values of the four card axes: the model's baseline (Oct 2025 leverage, no Fed
put, bank crypto exposure at the Basel floor)."""

_MEANING = {"leverage": "Oct 2025 leverage", "fed_put": "no Fed put",
            "integration": "bank crypto exposure at the Basel floor",
            "correlation": "the model's baseline correlation"}


def _config(ds: xr.Dataset) -> dict:
    try:
        return yaml.safe_load(cube_info(ds).config) or {}
    except (yaml.YAMLError, AttributeError):
        return {}


def _design_range(ds: xr.Dataset, axis: str) -> tuple[float, float]:
    """A sampled axis's ``[lo, hi]`` from the resolved config, else the sampled extremes."""
    box = ((_config(ds).get("sweep") or {}).get("axes") or {}).get(axis)
    if isinstance(box, list) and len(box) == 2:
        return float(box[0]), float(box[1])
    vals = np.asarray(ds[axis].values, float)
    return float(vals.min()), float(vals.max())


def neutral_values(ds: xr.Dataset) -> dict[str, float]:
    """Reference value of every axis: the baseline (:data:`NEUTRAL`, else the model value
    in the cube's config, else the median). Grid cubes: the nearest grid value. Sampled
    cubes: the baseline itself when the design's range holds it (within 2 % of the range:
    a Latin hypercube's lowest sample of ``[0, 1]`` is not 0), else the range's lower end."""
    model = _config(ds).get("model") or {}
    out = {}
    for a in axes_of(ds):
        vals = np.asarray(ds[a].values, float)
        v = NEUTRAL.get(a, model.get(a) if isinstance(model.get(a), (int, float)) else None)
        v = float(np.median(vals)) if v is None else float(v)
        if is_grid(ds):
            out[a] = float(vals[np.argmin(np.abs(vals - v))])
        else:
            lo, hi = _design_range(ds, a)
            tol = 0.02 * (hi - lo)
            out[a] = v if lo - tol <= v <= hi + tol else lo
    return out


def reference_html(ds: xr.Dataset, ref: Mapping[str, float]) -> str:
    """One paragraph: what "held fixed" means in this report."""
    if not ref:
        return ""
    parts = []
    for a, v in ref.items():
        meaning = _MEANING.get(a, "the model's value") if a in NEUTRAL or not is_grid(ds) else ""
        parts.append(f"{a} = {fmt_value(a, v)}" + (f" ({meaning})" if meaning else ""))
    how = ("the grid value nearest to the model's baseline" if is_grid(ds) else
           "the baseline itself when the sampled range holds it, else the lower end of the "
           "sampled range; on this sampled design, values there are read off a surface "
           "fitted to the sampled cells, not one cell")
    return (f"<p><b>Reference values.</b> An axis that a sentence or figure does not vary is "
            f"held fixed at its reference value, {how}: {html.escape('; '.join(parts))}.</p>")


def headlines(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic") -> dict[str, str]:
    """Sentences answering the tool's questions, keyed by topic (frontier, integration,
    fed_put, sensitivity; plus ``cell`` for a one-cell cube)."""
    axes, ref = axes_of(ds), neutral_values(ds)
    out: dict[str, str] = {}
    if not axes:
        out["cell"] = _single_cell_text(ds)
    sections: dict[str, Callable[[], str]] = {
        "frontier": lambda: _frontier_text(ds, axes, ref, level, var),
        "integration": lambda: _integration_text(ds, axes, ref, level, var),
        "fed_put": lambda: _fed_put_text(ds, axes, ref, var),
        "sensitivity": lambda: _sensitivity_text(ds, axes, var),
    }
    for key, fn in sections.items():
        try:
            out[key] = fn()
        except Exception as err:  # a report must not die on one section
            log.exception("report section %s failed", key)
            out[key] = f"Could not compute the {key} answer: {err}"
    return out


def _single_cell_text(ds: xr.Dataset) -> str:
    first = ("p_systemic", "p_btc_crash", "p_fed_fired")
    names = [n for n in first if n in ds] + [n for n in probability_names(ds) if n not in first]
    parts = []
    for name in names:
        text = f"{name} = {pct(float(cell_values(ds, name).mean()))}"
        try:
            lo, hi = probability_bounds(ds, name)
            text += f" (95 % interval {pct(float(lo.mean()))} to {pct(float(hi.mean()))})"
        except (KeyError, ValueError):
            pass
        parts.append(text)
    parts += [f"mean {n} = {fmt_value(n, float(cell_values(ds, n, 'mean').mean()))}"
              for n in ("drawdown_btc", "drawdown_eq", "amplification") if n in ds]
    return "One cell with the model's own parameter values: " + ", ".join(parts) + "."


def _others(ref: Mapping[str, float], *varied: str) -> dict[str, float]:
    return {k: v for k, v in ref.items() if k not in varied}


def _band_text(ds, fixed, level, var) -> str:
    """The critical leverage's Monte Carlo 95 % band at ``fixed``; "" without bounds."""
    try:
        band = critical_leverage_band(ds, level, var, fixed=fixed)
    except (KeyError, ValueError):
        return ""
    top = float(np.asarray(ds["leverage"].values, float).max())
    early, late = (f"{float(b):.2f}" if np.isfinite(float(b)) else f"beyond {top:g}"
                   for b in band)
    at = f" at integration {pct(fixed['integration'])}" if "integration" in fixed else ""
    if is_adaptive(ds):
        return (f" (95 % band{at} of the adaptive sweep's surrogate of {var}, Monte Carlo and "
                f"surrogate error: {early} to {late})")
    source = ("stored in the cube" if all(n in ds for n in bound_names(var))
              else f"computed from its {ds.attrs.get('n_paths', '?')} paths")
    return (f" (Monte Carlo 95 % band{at} from the Wilson bounds of {var}, {source}: {early} "
            f"to {late})")


def _pick(values: np.ndarray, most: int = 4) -> list[int]:
    idx = np.unique(np.linspace(0, len(values) - 1, min(most, len(values))).round().astype(int))
    return [int(i) for i in idx]


def _frontier_text(ds, axes, ref, level, var) -> str:
    if "leverage" not in axes:
        return (f"leverage is not swept in this cube (axes: {', '.join(axes) or 'none'}), "
                "so the critical leverage cannot be located.")
    top = float(np.asarray(ds["leverage"].values, float).max())
    if "integration" not in axes:
        fixed = _others(ref, "leverage")
        cl = float(critical_leverage(ds, level=level, var=var, fixed=fixed))
        where = f" (held fixed: {held_fixed(fixed)})"
        if np.isfinite(cl):
            return (f"{var} reaches {pct(level)} at a critical leverage of {cl:.2f} x Oct 2025"
                    f"{where}" + _band_text(ds, fixed, level, var) + ".")
        return (f"{var} stays below {pct(level)} for leverage up to {top:g} x Oct 2025{where}; "
                f"it is {pct(value_at(ds, var, {**fixed, 'leverage': top}))} at {top:g}.")
    fixed = _others(ref, "leverage", "integration")
    cl = critical_leverage(ds, level=level, var=var, fixed=fixed)
    r, c = np.asarray(cl["integration"].values, float), np.asarray(cl.values, float)
    ok = np.isfinite(c)
    where = f"held fixed: {held_fixed(fixed)}"
    if not ok.any():
        return (f"{var} stays below {pct(level)} for leverage up to {top:g} x Oct 2025 at every "
                f"integration level from {pct(r.min())} to {pct(r.max())} ({where}).")
    rs, cs = r[ok], c[ok]
    listed = "; ".join(f"{cs[i]:.2f} at integration {pct(rs[i])}" for i in _pick(rs))
    below = np.flatnonzero(~ok & (r < rs.min()))
    tail = (f"; at integration {pct(r[below].max())} and below it stays under {pct(level)} up "
            f"to leverage {top:g}" if below.size else "")
    band = _band_text(ds, {**fixed, "integration": float(rs.max())}, level, var)
    return (f"{var} reaches {pct(level)} at a critical leverage (x Oct 2025) of {listed}"
            f"{band}{tail} ({where}).")


def _integration_text(ds, axes, ref, level, var) -> str:
    if "integration" not in axes or "leverage" not in axes:
        missing = [a for a in ("leverage", "integration") if a not in axes]
        return (f"{' and '.join(missing)} not swept: the shift of the frontier with "
                "regulatory integration cannot be measured.")
    fixed = _others(ref, "leverage", "integration")
    cl = critical_leverage(ds, level=level, var=var, fixed=fixed)
    r, c = np.asarray(cl["integration"].values, float), np.asarray(cl.values, float)
    top = float(np.asarray(ds["leverage"].values, float).max())
    lo, hi = float(r.min()), float(r.max())

    def cl_text(v: float) -> str:
        return f"{v:.2f}" if np.isfinite(v) else f"beyond {top:g}"

    p0, p1 = (value_at(ds, var, {**fixed, "leverage": top, "integration": v}) for v in (lo, hi))
    first = (f"; {var} first reaches {pct(level)} within the swept leverage at integration "
             f"{pct(r[np.isfinite(c)].min())}" if np.isfinite(c[1:]).any()
             and not np.isfinite(c[0]) else "")
    return (f"Raising regulatory integration from {pct(lo)} to {pct(hi)} moves the critical "
            f"leverage from {cl_text(c[0])} to {cl_text(c[-1])}{first}; at leverage {top:g} it "
            f"takes {var} from {pct(p0)} to {pct(p1)} (held fixed: {held_fixed(fixed)}).")


def _fed_put_text(ds, axes, ref, var) -> str:
    if "fed_put" not in axes:
        return "fed_put is not swept in this cube: what the Fed put buys cannot be measured."
    f = np.asarray(ds["fed_put"].values, float)
    lo, hi = float(f.min()), float(f.max())
    site = [a for a in ("leverage", "integration") if a in axes]
    fixed = _others(ref, "fed_put", *site)
    point, moved = ((_fed_site(ds, site, fixed, var, lo, hi)) if len(site) == 2 else
                    ({**fixed, **{a: ref[a] for a in site}}, True))

    def change(where: Mapping[str, float], names) -> str:
        parts = []
        for name, stat in names:
            if name in ds:
                a, b = (value_at(ds, name, {**where, "fed_put": v}, stat) for v in (lo, hi))
                label = name if stat is None else f"mean {name}"
                parts.append(f"{label} from {pct(a)} to {pct(b)} ({pct(b - a, True, ' pp')})")
        return " and ".join(parts) or "nothing stored"

    both = ((var, None), ("drawdown_eq", "mean"))
    at = held_fixed({a: point[a] for a in site})
    head = f"Raising the Fed put from {pct(lo)} to {pct(hi)}"
    avg = f" Averaged over all other swept axes it changes {change({}, both)}."
    if not moved:
        return (f"{head} moves {var} by less than 0.5 pp anywhere in {' x '.join(site)} "
                f"(held fixed: {held_fixed(fixed)}); where equities fall most ({at}) it changes "
                f"{change(point, both[1:])}." + avg)
    return (f"{head} where it matters most ({at}; held fixed: {held_fixed(fixed)}) changes "
            f"{change(point, both)}." + avg)


def _fed_site(ds, site, fixed, var, lo, hi) -> tuple[dict[str, float], bool]:
    """The (leverage, integration) point where the Fed put moves ``var`` most, and True;
    where it moves it nowhere by 0.5 pp, the point with the deepest mean equity drawdown
    and False."""
    x, y = site
    a, b = (surface(ds, var, x, y, fixed={**fixed, "fed_put": v}) for v in (lo, hi))
    gain = np.abs(np.nan_to_num((b - a).values))
    moved = bool(gain.max() >= 0.005)
    if not moved and "drawdown_eq" in ds:
        gain = np.nan_to_num(surface(ds, "drawdown_eq", x, y, "mean",
                                     fixed={**fixed, "fed_put": lo}).values)
    i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
    found = {str(a.dims[0]): float(a[a.dims[0]].values[i]),
             str(a.dims[1]): float(a[a.dims[1]].values[j])}
    return {**fixed, **{k: found[k] for k in site}}, moved


def _sensitivity_text(ds, axes, var) -> str:
    if len(axes) < 2:
        return "Fewer than two axes swept: no sensitivity ranking."
    tab = sensitivity(ds, var)
    ranked = ", ".join(f"{i} ({pct(tab.at[i, 'total'])})" for i in tab.index)
    return (f"Parameters ranked by their total effect on the variance of {var} over the whole "
            f"cube (nothing held fixed): {ranked} [{tab.attrs.get('method', '')}].")
