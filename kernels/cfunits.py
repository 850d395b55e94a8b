"""UDUNITS spellings of the model's units, for CF-style attributes on the cube.

The model's own texts keep their readable units ("share", "x Oct 2025"); a cube carries
the UDUNITS form (``units``) that xarray, cf-xarray and netCDF tools understand, and
the readable meaning in ``long_name``.
"""

from __future__ import annotations

_UDUNITS = {
    "share": "1", "fraction": "1", "ratio": "1", "probability": "1", "0/1": "1",
    "of capital": "1", "fraction of capital": "1", "x": "1", "x Oct 2025": "1",
    "rounds": "1", "log return": "1", "log price": "1", "step": "1", "1": "1",
    "USD": "USD", "h": "h", "hours": "h", "days": "d", "days/year": "d/year",
    "1/sqrt(year)": "year-1/2", "per 15 min": "1",
}


def udunits(unit: str) -> str:
    """The UDUNITS string of a model unit (dimensionless quantities are ``"1"``)."""
    return _UDUNITS.get(unit, unit)


def unit_note(unit: str) -> str:
    """What a dimensionless ``"1"`` stands for, to go into ``long_name`` (or "")."""
    if udunits(unit) != "1" or unit in ("1", "share", "fraction", "probability"):
        return ""
    return {"x Oct 2025": "multiple of Oct 2025", "x": "multiple", "0/1": "0 or 1",
            "of capital": "share of capital", "fraction of capital": "share of capital",
            "per 15 min": "per 15 minutes"}.get(unit, unit)
