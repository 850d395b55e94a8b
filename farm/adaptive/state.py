"""An adaptive sweep's record in its cube (the ``adaptive`` attr) and its stopping rule.

:class:`WaveRecord` is one wave's decisions and results; the attr (JSON) holds the
settings, the criterion in words, every wave's record and why the waves stopped
(docs/internal-contracts.md). Written by the driver under the store lock.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from farm.plan.adaptivespec import AdaptiveSpec
from farm.store.cube import Cube

__all__ = ["REFERENCE_POINTS", "REFERENCE_SEED", "STATE_ATTR", "WaveRecord", "criterion",
           "read_state", "stop_reason", "write_state"]

STATE_ATTR = "adaptive"
REFERENCE_POINTS = 4096  # Sobol' points the stopping criterion is measured on
REFERENCE_SEED = 20251010


@dataclass
class WaveRecord:
    """One wave: cells ``[start, stop)`` of the cube, ``new_points`` new positions and
    ``more_paths`` cells of extra paths; after it ran: ``flips`` (share of reference points
    whose side of the level the wave changed; None for wave 1), ``undecided`` (share of
    reference points where the surrogate's 95 % band holds the level), ``points`` (distinct
    positions so far), ``path_steps`` (all waves so far) and its wall ``seconds``."""

    k: int
    start: int
    stop: int
    new_points: int
    more_paths: int
    straddling: int = 0
    done: bool = False
    flips: float | None = None
    undecided: float | None = None
    failed_cells: int = 0
    points: int = 0
    path_steps: int = 0
    seconds: float = 0.0


def read_state(cube: Cube) -> dict[str, Any] | None:
    raw = cube.attrs.get(STATE_ATTR)
    return json.loads(raw) if isinstance(raw, str) else raw


def write_state(cube: Cube, spec: AdaptiveSpec, waves: list[WaveRecord], stopped: str) -> None:
    cube._update_attrs({STATE_ATTR: json.dumps(
        {"settings": spec.to_dict(), "criterion": criterion(spec),
         "waves": [asdict(w) for w in waves], "stopped": stopped})})


def criterion(spec: AdaptiveSpec) -> str:
    return (f"stop when {spec.stop_waves} wave(s) in a row change the side of "
            f"{spec.var} >= {spec.level} at fewer than {100 * spec.stop_flips:g} % of "
            f"{REFERENCE_POINTS} Sobol' reference points, or at {spec.max_cells} cells, "
            f"{spec.max_waves} waves" + (f" or {spec.max_minutes:g} minutes"
                                         if spec.max_minutes else ""))


def stop_reason(waves: list[WaveRecord], spec: AdaptiveSpec) -> str:
    last = waves[-1]
    recent = [w.flips for w in waves[-spec.stop_waves:] if w.flips is not None]
    if len(recent) == spec.stop_waves and max(recent) < spec.stop_flips:
        return (f"the frontier stopped moving: the last {spec.stop_waves} wave(s) changed "
                f"the side of the level at {', '.join(f'{100 * f:.2g} %' for f in recent)} "
                f"of the reference points (< {100 * spec.stop_flips:g} %)")
    if last.stop + spec.wave_cells > spec.max_cells:  # only whole waves: a larger budget
        # then continues exactly the waves an uninterrupted run with it makes
        return f"the cell budget is spent ({last.stop} of max_cells={spec.max_cells})"
    if last.k >= spec.max_waves:
        return f"max_waves={spec.max_waves} reached"
    spent = sum(w.seconds for w in waves)
    if spec.max_minutes and spent >= 60 * spec.max_minutes:
        return f"the time budget is spent ({spent / 60:.1f} of max_minutes={spec.max_minutes:g})"
    return ""
