"""Words and numbers of the report and its figures: units, labels, percentages.

A cube's coordinates and variables carry CF ``long_name`` and UDUNITS ``units``; a
dimensionless ``"1"`` does not say whether a number is a share (shown as a percentage)
or a multiple (leverage, x Oct 2025). The model's own readable unit
(:data:`kernels.paramspec.SPECS`, :data:`kernels.outputs.PATH_OUTPUTS`) says it, so it
is asked first, the attributes second. Shares, fractions and probabilities print as
percentages with a precision that fits their size (``-0.04 %``, ``3.5 %``, ``62 %``).
"""

from __future__ import annotations

import html
import math
import re
import textwrap
from collections.abc import Mapping

from matplotlib.ticker import PercentFormatter

from kernels.outputs import PATH_OUTPUTS, PROBABILITIES
from kernels.paramspec import SPECS

__all__ = ["axis_label", "explore_html", "fmt_value", "held_fixed", "is_percent",
           "is_probability", "limits_text", "pct", "prim_html", "style_axis", "value_label"]

_PERCENT = {"share", "fraction", "probability", "fraction of capital", "of capital"}


def _unit(name: str, attrs: Mapping | None = None) -> str:
    """The readable unit of a parameter or output (``share``, ``x Oct 2025``, ``USD``)."""
    if name in SPECS:
        return SPECS[name].unit
    spec = PATH_OUTPUTS.get(name) or PROBABILITIES.get(name)
    if spec is not None:
        return spec.units
    attrs = attrs or {}
    if [float(v) for v in attrs.get("valid_range", [])] == [0.0, 1.0]:
        return "probability"
    return str(attrs.get("units", ""))


def is_probability(name: str, attrs: Mapping | None = None) -> bool:
    return _unit(name, attrs) == "probability"


def is_percent(name: str, attrs: Mapping | None = None) -> bool:
    """Shares, fractions and probabilities: printed as percentages."""
    return _unit(name, attrs) in _PERCENT


def pct(v: float, signed: bool = False, unit: str = " %") -> str:
    """``0.0254`` -> ``"2.5 %"``, ``-0.000353`` -> ``"-0.04 %"``, ``0.62`` -> ``"62 %"``;
    ``signed`` puts a ``+`` on rises (for differences, with ``unit=" pp"``)."""
    if v is None or not math.isfinite(v):
        return "n/a"
    p = 100.0 * float(v)
    nd = 0 if abs(p) >= 10 else 1 if abs(p) >= 0.1 else 2
    text = f"{p:+.{nd}f}" if signed else f"{p:.{nd}f}"
    if float(text) == 0:
        text = "0"
    return text + unit


def fmt_value(name: str, v: float, attrs: Mapping | None = None) -> str:
    """One value of a parameter or output with its unit: ``40 %``, ``2.5 x Oct 2025``,
    ``$1.2 bn``, ``0.4``."""
    if v is None or not math.isfinite(v):
        return "n/a"
    unit = _unit(name, attrs)
    if unit in _PERCENT:
        return pct(v)
    if unit == "x Oct 2025":
        return f"{v:.3g} x Oct 2025"
    if unit == "USD":
        return f"${v / 1e9:.3g} bn"
    if unit in ("hours", "h"):
        return f"{v:.3g} h"
    return f"{v:.3g}"


def held_fixed(fixed: Mapping[str, float]) -> str:
    """``"correlation = 0.4, fed_put = 0 %"`` (or ``"nothing"``)."""
    items = [f"{k} = {fmt_value(k, float(v))}" for k, v in fixed.items()]
    return ", ".join(items) if items else "nothing"


def _short(name: str, attrs: Mapping | None) -> str:
    """The long name up to its first colon or bracket (``"crypto leverage"``)."""
    long = str((attrs or {}).get("long_name", ""))
    if not long:
        spec = SPECS.get(name) or PATH_OUTPUTS.get(name) or PROBABILITIES.get(name)
        long = getattr(spec, "description", "") if spec is not None else ""
    short = re.split(r":|;| \(", long, maxsplit=1)[0].strip()
    if not short:
        return name
    return short if name.replace("_", " ").lower() in short.lower() else f"{name}: {short}"


def axis_label(name: str, attrs: Mapping | None = None, width: int = 52) -> str:
    """Axis title with its unit: ``"crypto leverage [x Oct 2025]"``, ``"... [%]"``."""
    unit = _unit(name, attrs)
    if unit in _PERCENT:
        tail = " [%]"
    elif unit in ("1", "", "x", "ratio"):
        tail = ""
    else:
        tail = f" [{unit}]"
    return textwrap.fill(_short(name, attrs) + tail, width)


def value_label(name: str, attrs: Mapping | None = None, stat: str = "") -> str:
    """Title of a colour bar or value axis; a probability says so."""
    if is_probability(name, attrs):
        return f"{name}: probability [%]"
    return (f"{stat} " if stat else "") + axis_label(name, attrs)


def style_axis(axis, name: str, attrs: Mapping | None = None, *, value: bool = False) -> None:
    """Label a matplotlib axis (``ax.xaxis``, ``ax.yaxis``, a colour bar's axis) and tick
    percentages on shares."""
    axis.set_label_text(value_label(name, attrs) if value else axis_label(name, attrs))
    if is_percent(name, attrs):
        axis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))


def limits_text(name: str, lo: float, hi: float) -> str:
    """A box limit, its unit in the column head: ``"1.6 to 3"``, ``"80 % to 100 %"``;
    ``"= 1"`` when degenerate."""
    def one(v: float) -> str:
        return pct(v) if is_percent(name) else f"{v:.3g}"

    if math.isclose(lo, hi, rel_tol=1e-9, abs_tol=1e-12):
        return f"= {one(lo)}"
    return f"{one(lo)} to {one(hi)}"


def prim_html(boxes: list, var: str, level: float) -> str:
    """The PRIM boxes as a table with one line explaining each statistic."""
    esc = html.escape
    if not boxes:
        return "<p>No box of systemic cells reaches the density threshold.</p>"
    axes = list(dict.fromkeys(a for b in boxes for a in b.restricted))
    head = "".join(f"<th>{esc(axis_label(a))}</th>" for a in axes)
    rows = []
    for i, b in enumerate(boxes, 1):
        cells = "".join(
            f"<td>{esc(limits_text(a, *b.limits[a])) if a in b.restricted else 'any'}</td>"
            for a in axes)
        rows.append(f"<tr><td>{i}</td><td>{pct(b.coverage)}</td><td>{pct(b.density)}</td>"
                    f"<td>{pct(b.mass)}</td>{cells}</tr>")
    legend = (
        f"<ul><li><b>coverage</b>: the share of all cells with {esc(var)} &ge; {pct(level)} "
        "that lie inside the box.</li>"
        f"<li><b>density</b>: the share of the box's cells that have {esc(var)} &ge; "
        f"{pct(level)}.</li>"
        "<li><b>mass</b>: the share of all cells of the cube that lie inside the box.</li></ul>")
    return ("<table class='prim'><tr><th>box</th><th>coverage</th><th>density</th>"
            f"<th>mass</th>{head}</tr>{''.join(rows)}</table>{legend}")


def explore_html(store: str | None) -> str:
    """The paragraph pointing to the interactive explorer of the same cube."""
    cmd = f"farm explore {store or 'STORE'} -o explore.html"
    return (f"<p>Explore interactively: <code>{html.escape(cmd)}</code> writes one "
            "self-contained page to slice the cube along any axis, pick the variable and "
            "click a cell for its fan chart.</p>")
