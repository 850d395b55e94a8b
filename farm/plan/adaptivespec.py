"""The validated settings of an adaptive sweep (``sweep.method=adaptive``).

:func:`adaptive_spec` reads ``sweep.adaptive`` (schema: :class:`farm.plan.schema.
AdaptiveConfig`) once, checks every value (a :class:`farm.errors.ConfigError` naming the
key, the value and what is allowed) and returns a frozen :class:`AdaptiveSpec`. The
waves themselves are :mod:`farm.adaptive`'s; wave 1 is
:func:`farm.plan.design.initial_unit_design`'s.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from farm.errors import ConfigError

__all__ = ["BUDGET_KEYS", "AdaptiveSpec", "adaptive_spec"]

BUDGET_KEYS = ("max_cells", "max_waves", "max_minutes", "stop_flips", "stop_waves")
"""When the waves stop, not which cells they add: not part of the sweep's identity (a
rerun with a larger budget or a stricter stopping rule continues the same waves, as a
longer calibration does)."""


@dataclass(frozen=True)
class AdaptiveSpec:
    """See :class:`farm.plan.schema.AdaptiveConfig` for each field's meaning."""

    var: str
    level: float
    initial_cells: int
    wave_cells: int
    block_cells: int
    max_cells: int
    max_waves: int
    max_paths: int
    paths_share: float
    stop_flips: float
    stop_waves: int
    max_minutes: float
    candidates: int
    axes: tuple[str, ...] = ()  # the swept axes and their box [lo, hi]
    lo: tuple[float, ...] = ()
    hi: tuple[float, ...] = ()

    @property
    def event(self) -> str:
        """The per-path event of ``var`` (``p_systemic`` -> ``systemic``)."""
        return self.var.removeprefix("p_")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """What decides the waves' cells (budgets left out: see :data:`BUDGET_KEYS`)."""
        return {k: v for k, v in asdict(self).items() if k not in BUDGET_KEYS}


def _int(key: str, v: Any, lo: int, what: str = "") -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"sweep.adaptive.{key}", v, what or f"an integer >= {lo}")
    return int(v)


def _float(key: str, v: Any, lo: float, hi: float, what: str) -> float:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    if not ok or not lo <= float(v) <= hi:
        raise ConfigError(f"sweep.adaptive.{key}", v, what)
    return float(v)


def adaptive_spec(node: Any, paths: int, box: Any = None) -> AdaptiveSpec:
    """Check ``sweep.adaptive`` (a mapping) for a sweep of ``paths`` paths per cell over
    ``box`` (axis -> [lo, hi], checked by farm.plan.validation)."""
    from kernels.outputs import PROBABILITY_BASES

    a = dict(node)
    if a.get("var") not in PROBABILITY_BASES:  # counts of paths: not their Wilson bounds
        raise ConfigError("sweep.adaptive.var", a.get("var"), " | ".join(PROBABILITY_BASES))
    level = _float("level", a.get("level"), 0.0, 1.0, "a probability strictly between 0 and 1")
    if not 0.0 < level < 1.0:
        raise ConfigError("sweep.adaptive.level", level, "a probability strictly between 0 and 1")
    block = _int("block_cells", a.get("block_cells"), 1)
    multiple = f"a multiple of sweep.adaptive.block_cells={block} (whole blocks per wave)"
    initial = _int("initial_cells", a.get("initial_cells"), max(block, 8),
                   f"an integer >= {max(block, 8)}, {multiple}")
    wave = _int("wave_cells", a.get("wave_cells"), block, f"an integer >= {block}, {multiple}")
    for key, v in (("initial_cells", initial), ("wave_cells", wave)):
        if v % block:
            raise ConfigError(f"sweep.adaptive.{key}", v, multiple)
    spec = AdaptiveSpec(
        var=str(a["var"]), level=level, initial_cells=initial, wave_cells=wave,
        block_cells=block,
        max_cells=_int("max_cells", a.get("max_cells"), initial,
                       f"an integer >= sweep.adaptive.initial_cells={initial}"),
        max_waves=_int("max_waves", a.get("max_waves"), 1),
        max_paths=_int("max_paths", a.get("max_paths"), paths,
                       f"an integer >= sweep.paths={paths} (paths at one point, pooled)"),
        paths_share=_float("paths_share", a.get("paths_share"), 0.0, 1.0, "a share in [0, 1]"),
        stop_flips=_float("stop_flips", a.get("stop_flips"), 0.0, 1.0, "a share in [0, 1]"),
        stop_waves=_int("stop_waves", a.get("stop_waves"), 1),
        max_minutes=_float("max_minutes", a.get("max_minutes"), 0.0, math.inf,
                           "minutes >= 0 (0: no time budget)"),
        candidates=_int("candidates", a.get("candidates"), wave,
                        f"an integer >= sweep.adaptive.wave_cells={wave}"),
        axes=tuple(str(a) for a in dict(box or {})),
        lo=tuple(float(v[0]) for v in dict(box or {}).values()),
        hi=tuple(float(v[1]) for v in dict(box or {}).values()),
    )
    return spec
