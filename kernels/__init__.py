"""Pure JAX kernels of the crypto-crisis cascade model (no Hydra, Ray or I/O).

The output contract and the parameters import without JAX; the simulation entry
points (``simulate_block``, ``simulate_cell``, ``COMPILE_COUNTER``, ``BlockResult``)
import JAX lazily on first use, so tools such as ``farm status`` start fast.
"""

from __future__ import annotations

from typing import Any

from .outputs import PATH_OUTPUTS, PROBABILITIES, STATS
from .params import ModelParams, baseline, make_params, oct2025, stack_params, validate_params

_LAZY = {"COMPILE_COUNTER", "BlockResult", "simulate_block", "simulate_cell"}

__all__ = [
    "COMPILE_COUNTER",
    "PATH_OUTPUTS",
    "PROBABILITIES",
    "STATS",
    "BlockResult",
    "ModelParams",
    "baseline",
    "make_params",
    "oct2025",
    "simulate_block",
    "simulate_cell",
    "stack_params",
    "validate_params",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import simulate

        return getattr(simulate, name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
