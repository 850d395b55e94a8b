"""Monte Carlo intervals of the cube's probabilities.

Every probability ``p_x`` of a farm cube comes with its Wilson 95 % interval, stored as
``p_x_lo`` and ``p_x_hi`` (:data:`kernels.outputs.PROBABILITIES`). The bounds are not
metrics of their own: lists of metrics use :func:`probability_names` (bounds left
out), and bands (around a frontier, a critical leverage) use :func:`probability_bounds`.
A cube written before the bounds were stored gets them from ``p_x`` and the cube's
``n_paths`` with the same Wilson formula (:func:`wilson`), so a band is drawn either way.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "BOUND_SUFFIXES",
    "WILSON_Z",
    "bound_names",
    "critical_leverage_band",
    "is_bound",
    "probability_bounds",
    "probability_names",
    "surface_band",
    "wilson",
    "with_probability_bounds",
]

BOUND_SUFFIXES = ("_lo", "_hi")
WILSON_Z = 1.959963984540054  # two-sided 95 %, as kernels.stats


def wilson(p_hat: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score 95 % interval of a proportion ``p_hat`` over ``n`` paths (NaN stays
    NaN); the formula of ``kernels.stats.wilson``, without importing JAX."""
    p = np.asarray(p_hat, dtype=np.float64)
    z2 = WILSON_Z**2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    with np.errstate(invalid="ignore"):
        half = WILSON_Z / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def bound_names(var: str) -> tuple[str, str]:
    """``("p_x_lo", "p_x_hi")`` for probability ``p_x``."""
    return f"{var}_lo", f"{var}_hi"


def is_bound(ds: xr.Dataset, name: str) -> bool:
    """True for ``p_x_lo`` / ``p_x_hi`` when ``p_x`` is a variable of ``ds`` as well."""
    return any(name.endswith(s) and name[: -len(s)] in ds for s in BOUND_SUFFIXES)


def probability_names(ds: xr.Dataset) -> list[str]:
    """The cube's probabilities (``p_*`` without a ``stat`` dim), interval bounds left out."""
    return [str(n) for n, da in ds.data_vars.items()
            if str(n).startswith("p_") and "stat" not in da.dims and not is_bound(ds, str(n))]


def probability_bounds(ds: xr.Dataset, var: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Wilson 95 % bounds of probability ``var``: the stored ``var_lo``/``var_hi`` when
    the cube has them, else computed from ``var`` and the cube's ``n_paths`` attr.

    Raises ``KeyError`` when ``var`` is not in the cube, ``ValueError`` when it is not a
    probability or (fallback only) the cube records no ``n_paths``.
    """
    if var not in ds:
        raise KeyError(f"variable {var!r} not in cube")
    lo_name, hi_name = bound_names(var)
    if lo_name in ds and hi_name in ds:
        return ds[lo_name], ds[hi_name]
    da = ds[var]
    if not var.startswith("p_") or "stat" in da.dims:
        raise ValueError(f"{var!r} is not a probability: it has no Monte Carlo interval")
    try:
        n = int(ds.attrs["n_paths"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"the cube stores no {lo_name}/{hi_name} and no n_paths attr: "
                         f"no interval for {var}") from None
    lo, hi = wilson(da.values, n)
    out = []
    for name, arr, side in ((lo_name, lo, "lower"), (hi_name, hi, "upper")):
        b = xr.DataArray(arr.astype(np.float32), dims=da.dims, coords=da.coords, name=name)
        b.attrs = {"units": da.attrs.get("units", "probability"),
                   "description": f"Wilson 95 % {side} bound of {var} "
                                  f"(computed from {n} paths)"}
        out.append(b)
    return out[0], out[1]


def with_probability_bounds(ds: xr.Dataset, var: str) -> xr.Dataset:
    """``ds`` with ``var_lo``/``var_hi`` (stored, or computed by :func:`probability_bounds`),
    so that surfaces and frontiers can be drawn on the bounds like on ``var``."""
    lo, hi = probability_bounds(ds, var)
    if lo.name in ds and hi.name in ds:
        return ds
    return ds.assign({str(lo.name): lo, str(hi.name): hi})


def _surrogate_band(ds: xr.Dataset, var: str, kwargs: dict[str, Any]) -> bool:
    """Whether a band is the level-set surrogate's (an adaptive cube's probability, with
    no other method asked for) rather than the Wilson bounds' surfaces."""
    from ._scatter import default_method

    method = kwargs.pop("method", None)
    if method in ("gp_lower", "gp_upper"):
        raise ValueError(f"method={method!r} is one end of a band already; a band takes "
                         "method='gp' (or an interpolation method for the Wilson bounds)")
    if method is not None and method != "gp":
        kwargs["method"] = method
        return False
    return default_method(ds, var) == "gp" or method == "gp"


def critical_leverage_band(ds: xr.Dataset, level: float = 0.5, var: str = "p_systemic",
                           axis: str = "leverage", **kwargs: Any
                           ) -> tuple[xr.DataArray, xr.DataArray]:
    """Monte Carlo 95 % band of :func:`analysis.critical_leverage`: ``(early, late)``, the
    critical ``axis`` of the upper Wilson bound of ``var`` (it reaches ``level`` first)
    and of the lower bound (last). NaN where a bound never reaches ``level``. Keyword
    arguments go to :func:`analysis.critical_leverage`. For an adaptive cube (method
    ``gp``) the bounds are the surrogate's 95 % band: Monte Carlo and surrogate error."""
    from .surfaces import critical_leverage

    if _surrogate_band(ds, var, kwargs):  # the surrogate's band: Monte Carlo + surrogate
        return (critical_leverage(ds, level, var, axis, method="gp_upper", **kwargs),
                critical_leverage(ds, level, var, axis, method="gp_lower", **kwargs))
    dsb = with_probability_bounds(ds, var)
    lo, hi = bound_names(var)
    return (critical_leverage(dsb, level, hi, axis, **kwargs),
            critical_leverage(dsb, level, lo, axis, **kwargs))


def surface_band(ds: xr.Dataset, var: str, x: str, y: str, **kwargs: Any
                 ) -> tuple[xr.DataArray, xr.DataArray]:
    """``(lower, upper)`` Wilson-bound surfaces of probability ``var`` over ``(y, x)``
    (:func:`analysis.surface` keywords), e.g. for a heatmap's frontier band."""
    from .surfaces import surface

    if _surrogate_band(ds, var, kwargs):
        return (surface(ds, var, x, y, method="gp_lower", **kwargs),
                surface(ds, var, x, y, method="gp_upper", **kwargs))
    dsb = with_probability_bounds(ds, var)
    lo, hi = bound_names(var)
    return surface(dsb, lo, x, y, **kwargs), surface(dsb, hi, x, y, **kwargs)
