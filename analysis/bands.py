"""Critical leverage with its two uncertainty bands: parameters and Monte Carlo.

A cube swept over posterior draws of the uncertain parameters has a ``draw``
dimension (:data:`DRAW_DIM`; one value per draw, with each uncertain parameter as a
coordinate along it, e.g. ``depth_btc(draw)``). For every combination of the other
axes the critical leverage is computed per draw (:func:`analysis.critical_leverage`),
then summarised:

- the **parameter band**: quantiles over draws (default 5 / 50 / 95 %). A draw for which
  ``var`` never reaches ``level`` within the swept leverage counts as *beyond the swept
  range* (``+inf`` while ranking), so the band's upper end reads NaN ("beyond") when more
  than 5 % of the draws never tip, instead of silently dropping them;
- the **Monte Carlo band**: the crossings of the Wilson 95 % bounds of the probability
  (:func:`analysis.intervals.critical_leverage_band`: the upper bound reaches the level
  first, so it gives the low end), for the median draw (the one at the parameter
  band's 50 %), so that it brackets the median.

:func:`critical_leverage_sobol` apportions the spread over draws to the uncertain
parameters with a polynomial chaos expansion fitted on the draws
(:func:`analysis.sensitivity.sobol_pce`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from kernels.cubeformat import DRAW_DIM

from .intervals import critical_leverage_band
from .sensitivity import SobolIndices, sobol_pce
from .surfaces import critical_leverage

__all__ = [
    "DRAW_DIM",
    "critical_leverage_sobol",
    "critical_leverage_uncertainty",
    "draw_parameters",
    "frontier_band",
    "parameter_band",
]



def parameter_band(da: xr.DataArray, dim: str = DRAW_DIM,
                   q: Sequence[float] = (0.05, 0.5, 0.95)) -> xr.DataArray:
    """Quantiles of ``da`` over ``dim`` (new dim ``quantile``); NaN entries (never tips
    within the swept range) rank as +inf, and a quantile that lands on them is NaN."""
    ranked = da.fillna(np.inf)
    out = ranked.quantile(list(q), dim=dim, method="lower")
    out = out.where(np.isfinite(out))
    out.attrs.update(da.attrs)
    out.attrs["band"] = f"quantiles {list(q)} over {dim!r}; NaN: beyond the swept range"
    return out


def critical_leverage_uncertainty(ds: xr.Dataset, level: float = 0.5, *, var: str = "p_systemic",
                           axis: str = "leverage", fixed: Mapping[str, float] | None = None,
                           q: Sequence[float] = (0.05, 0.5, 0.95)) -> xr.Dataset:
    """``critical`` (per draw), ``parameter_band`` (quantiles over draws), ``mc_low`` and
    ``mc_high`` (the Monte Carlo band at the median over draws), over the other axes.

    A cube without a ``draw`` dimension has a zero-width parameter band (one parameter
    set): say so rather than reading it as certainty.
    """
    central = critical_leverage(ds, level, var, axis, fixed=fixed)
    out = {"critical": central}
    has_draws = DRAW_DIM in central.dims
    if has_draws:
        out["parameter_band"] = parameter_band(central, DRAW_DIM, q)
    if var.startswith("p_"):  # a probability: its Wilson bounds give the Monte Carlo band
        mc_low, mc_high = critical_leverage_band(ds, level, var, axis, fixed=fixed)
        if has_draws:  # the Monte Carlo band of the median draw (the parameter band's 50 %)
            median = _median_draw(central)
            mc_low, mc_high = mc_low.isel({DRAW_DIM: median}), mc_high.isel({DRAW_DIM: median})
            mc_low, mc_high = mc_low.drop_vars(DRAW_DIM), mc_high.drop_vars(DRAW_DIM)
        out["mc_low"], out["mc_high"] = mc_low, mc_high
    result = xr.Dataset(out)
    result.attrs.update({"var": var, "level": level, "axis": axis,
                         "n_draws": int(ds.sizes.get(DRAW_DIM, 1)),
                         "axis_max": float(np.nanmax(np.asarray(ds[axis].values, float))),
                         "parameter_uncertainty": "draws" if has_draws else "none (one "
                         "parameter set: the parameter band is not measured)"})
    return result


def frontier_band(ds: xr.Dataset, x: str, y: str, level: float = 0.5, *,
                  var: str = "p_systemic", fixed: Mapping[str, float] | None = None,
                  q: Sequence[float] = (0.05, 0.5, 0.95)) -> dict[float, xr.DataArray]:
    """The tipping frontier in the ``(x, y)`` plane at quantiles ``q`` over draws:
    ``{q: frontier}`` where each frontier (:func:`analysis.frontier`) is the contour of
    the pointwise ``q``-quantile over draws of ``var`` (grid cubes). Where ``var`` rises
    with ``x``, the 0.95 quantile surface tips first, so its frontier is the fragile
    edge of the band."""
    from .surfaces import frontier, regrid

    da = regrid(ds, var)
    for k, v in dict(fixed or {}).items():
        da = da.sel({k: v}, method="nearest")
    left = set(da.dims) - {x, y, DRAW_DIM}
    if left:
        raise ValueError(f"pin every axis but {x!r}, {y!r} and {DRAW_DIM!r} with fixed=; "
                         f"left: {sorted(left)}")
    quant = da.quantile(list(q), dim=DRAW_DIM)
    return {float(p): frontier(quant.sel(quantile=p).drop_vars("quantile").transpose(y, x),
                               level=level) for p in q}


def _median_draw(central: xr.DataArray) -> xr.DataArray:
    """Per point of the other axes, the index of the draw at the 50 % of the parameter
    band (:func:`parameter_band`'s 'lower' quantile; never tipping ranks last)."""
    ranked = central.fillna(np.inf).transpose(..., DRAW_DIM)
    order = np.argsort(ranked.values, axis=-1, kind="stable")
    k = int(np.floor(0.5 * (central.sizes[DRAW_DIM] - 1)))
    dims = [d for d in ranked.dims if d != DRAW_DIM]
    return xr.DataArray(order[..., k], dims=dims, coords={d: ranked[d] for d in dims})


def draw_parameters(ds: xr.Dataset) -> dict[str, np.ndarray]:
    """The uncertain parameters' values per draw: every coordinate along ``draw`` only."""
    return {str(name): np.asarray(c.values, float) for name, c in ds.coords.items()
            if c.dims == (DRAW_DIM,) and name != DRAW_DIM}


def critical_leverage_sobol(ds: xr.Dataset, level: float = 0.5, *,
                            fixed: Mapping[str, float], var: str = "p_systemic",
                            axis: str = "leverage") -> SobolIndices:
    """Sobol indices of the critical leverage (at the point ``fixed`` of the other axes)
    with respect to the uncertain parameters of the draws (PCE on the draws; draws that
    never tip are left out). ``fixed`` must pin every other axis but ``draw``."""
    crit = critical_leverage(ds, level, var, axis, fixed=fixed)
    if crit.dims != (DRAW_DIM,):
        raise ValueError(f"fix every axis but {axis!r} and {DRAW_DIM!r}; left: {crit.dims}")
    params = draw_parameters(ds)
    if not params:
        raise ValueError(f"the cube has no parameter coordinates along {DRAW_DIM!r}")
    names = tuple(params)
    X = np.column_stack([params[n] for n in names])
    return sobol_pce(X, np.asarray(crit.values, float), names)


def summary_table(ds: xr.Dataset, level: float = 0.5, *, x: str = "integration",
                  fixed: Mapping[str, float] | None = None) -> str:
    """A markdown table of the critical leverage against ``x``: the median over draws,
    the parameter band (5-95 %) and the Monte Carlo band (95 %)."""
    band = critical_leverage_uncertainty(ds, level, fixed=fixed)
    top = float(np.asarray(ds["leverage"].values, float).max())

    def f(v: float) -> str:
        return f"{v:.2f}" if np.isfinite(v) else f"> {top:g}"

    rows = [f"| {x} | critical leverage (median draw) | parameter band 5-95 % | "
            "Monte Carlo band 95 % |", "|---|---|---|---|"]
    for v in band[x].values:
        q = band["parameter_band"].sel({x: v}).values
        mc = (float(band["mc_low"].sel({x: v})), float(band["mc_high"].sel({x: v})))
        rows.append(f"| {v:g} | {f(q[1])} | {f(q[0])} to {f(q[2])} | {f(mc[0])} to {f(mc[1])} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.bands STORE [LEVEL] [--figure PNG]``: the critical leverage
    with its bands (and the figure of them against integration)."""
    import sys

    from .cube import open_cube

    args = list(sys.argv[1:] if argv is None else argv)
    figure = None
    if "--figure" in args:
        i = args.index("--figure")
        figure = args[i + 1] if i + 1 < len(args) else None
        del args[i:i + 2]
    if not args or ("--figure" in (argv or sys.argv) and figure is None):
        sys.stderr.write("usage: python -m analysis.bands STORE [LEVEL] [--figure PNG]\n")
        return 2
    ds = open_cube(args[0])
    level = float(args[1]) if len(args) > 1 else 0.5
    sys.stdout.write(summary_table(ds, level) + "\n")
    if figure:
        from .plots import plot_critical_leverage_bands

        plot_critical_leverage_bands(critical_leverage_uncertainty(ds, level),
                                     "integration").savefig(figure, dpi=96)
        sys.stdout.write(f"figure written to {figure}\n")
    others = {a: float(ds[a].values[-1]) for a in ("integration",) if a in ds.dims}
    try:
        idx = critical_leverage_sobol(ds, level, fixed=others).table()
        sys.stdout.write(f"\nat {others}: {idx.attrs['method']}\n{idx.round(3).to_string()}\n")
    except ValueError as err:
        sys.stdout.write(f"\nSobol indices unavailable: {err}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
