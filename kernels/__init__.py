"""Pure JAX kernels of the crypto-crisis cascade model (no Hydra, Ray or I/O)."""

from .outputs import PATH_OUTPUTS, PROBABILITIES, STATS
from .params import ModelParams, baseline, make_params, oct2025, stack_params, validate_params
from .simulate import COMPILE_COUNTER, BlockResult, simulate_block, simulate_cell

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
