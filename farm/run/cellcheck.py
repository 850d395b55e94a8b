"""Per-cell checks of a block's results, made by the worker before it writes the status.

NaN never becomes a number: a cell any of whose statistics or probabilities is NaN or
inf (the kernel returns NaN for such a cell) is **failed** (status 2), with a message
naming the cell and the offending outputs; the block's other cells are written as
usual. A cell whose mean ``capped_steps`` (share of path-steps whose cascade hit
``max_rounds``) exceeds its ``capped_limit`` is **flagged** (status 3): done, with a
warning in ``farm status``, ``farm report`` and ``analysis.cube_info``.

NumPy only: workers import this next to the kernel, the driver to word messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from farm.store.layout import STATUS_DONE, STATUS_FAILED, STATUS_FLAGGED
from kernels.outputs import STAT_INDEX, STATS

__all__ = ["block_failure_message", "cell_failure_message", "check_cells"]

MAX_OUTPUTS_NAMED = 4  # per cell, in a failure message
MAX_CELLS_NAMED = 8  # per block, in a failure message


def check_cells(stats: Mapping[str, Any], probs: Mapping[str, Any],
                capped_limit: Any) -> tuple[np.ndarray, dict[int, list[str]]]:
    """``(status, bad)`` for ``n`` cells (rows of ``stats[var]`` ``(n, len(STATS))`` and
    ``probs[name]`` ``(n,)``): ``status`` int8 per cell (1 done, 3 flagged, 2 failed) and
    ``bad[row]``, the non-finite outputs of each failed row (``"drawdown_btc[mean]=nan"``).

    ``capped_limit`` is the cells' ``ModelParams.capped_limit`` (scalar or ``(n,)``).
    """
    n = len(np.asarray(next(iter(probs.values()))))
    bad: dict[int, list[str]] = {}
    for name, values in stats.items():
        v = np.asarray(values)
        for row in np.flatnonzero(~np.isfinite(v).all(axis=-1)):
            j = int(np.flatnonzero(~np.isfinite(v[row]))[0])
            bad.setdefault(int(row), []).append(f"{name}[{STATS[j]}]={v[row, j]}")
    for name, values in probs.items():
        v = np.asarray(values)
        for row in np.flatnonzero(~np.isfinite(v)):
            bad.setdefault(int(row), []).append(f"{name}={v[row]}")
    status = np.full(n, STATUS_DONE, dtype=np.int8)
    capped = np.asarray(stats["capped_steps"], dtype=float)[:, STAT_INDEX["mean"]]
    limit = np.broadcast_to(np.asarray(capped_limit, dtype=float), (n,))
    with np.errstate(invalid="ignore"):
        status[capped > limit] = STATUS_FLAGGED
    status[sorted(bad)] = STATUS_FAILED
    return status, bad


def cell_failure_message(cell: int, point: Mapping[str, float], outputs: Sequence[str]) -> str:
    """One failed cell: ``cell 5 (leverage=1, vol_btc=0): non-finite outputs a, b and 3
    more``; ``point`` is the cell's swept parameter values (its coordinates)."""
    where = ", ".join(f"{k}={float(v):g}" for k, v in point.items()) or "no swept axes"
    shown = ", ".join(outputs[:MAX_OUTPUTS_NAMED])
    if len(outputs) > MAX_OUTPUTS_NAMED:
        shown += f" and {len(outputs) - MAX_OUTPUTS_NAMED} more"
    return f"cell {int(cell)} ({where}): non-finite outputs {shown}"


def block_failure_message(failed: Sequence[tuple[int, str]], n_cells: int) -> str:
    """A block's message from its failed cells' ``(cell, message)``."""
    head = f"{len(failed)} of {n_cells} cells failed (NaN or inf outputs, status 2): "
    text = "; ".join(msg for _, msg in failed[:MAX_CELLS_NAMED])
    if len(failed) > MAX_CELLS_NAMED:
        text += f"; and {len(failed) - MAX_CELLS_NAMED} more cells"
    return head + text
