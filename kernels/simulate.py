"""Entry points: one cell over paths, and a block of cells x paths in one jitted call.

``simulate_block`` compiles once per static shape ``(n_cells, n_paths, n_steps,
t_dof, dtype, bucket sizes, return_paths)``; a second call with the same shapes
reuses the executable (``COMPILE_COUNTER`` counts traces, XLA compiles and loads from
the persistent compilation cache, :mod:`kernels.compilecache`). Under common random
numbers the draws are made once per block and shared by its cells.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .cascade import DayState, init_state, step
from .compilecache import COMPILE_COUNTER, count_compile
from .compilecache import enable as enable_compile_cache
from .outputs import PATH_OUTPUTS, PROBABILITIES
from .params import ModelParams, validate_params
from .sectors.banks import capital as bank_capital
from .sectors.banks import wholesale as bank_wholesale
from .sectors.perps import notionals as perps_notionals
from .sectors.perps import open_interest as perps_total
from .shocks import Shocks, draw_normals, prepare, returns
from .stats import cell_statistics, with_intervals

log = logging.getLogger(__name__)



class BlockResult(NamedTuple):
    stats: dict[str, np.ndarray]  # var -> (n_cells, len(STATS))
    probs: dict[str, np.ndarray]  # name -> (n_cells,)
    paths: dict[str, np.ndarray] | None  # var -> (n_cells, n_paths)
    prices: np.ndarray | None = None  # (n_cells, n_steps, n_paths, 3) log prices, on request


def _outputs(p: ModelParams, s: DayState, n_steps: int) -> dict[str, jax.Array]:
    """Per-path outputs (docs/model.md section 6) from the end-of-day state."""
    dtype = s.fund.dtype
    exo = s.exo_maxdd[0]
    oi = perps_total(p)
    long_n, short_n = perps_notionals(p)
    closed = (jnp.sum(long_n[:, None] * s.long_sold, axis=0)
              + jnp.sum(short_n[:, None] * s.short_sold, axis=0))
    cap = bank_capital(p)
    cap_share = cap / jnp.sum(cap)
    banks_failed = jnp.sum(s.failed.astype(dtype) * cap_share[:, None], axis=0)
    funding = bank_wholesale(p)
    total_funding = jnp.sum(funding)
    ran = jnp.sum(s.run * (p.run_share * funding)[:, None], axis=0)
    run_share = jnp.where(total_funding > 0, ran / jnp.where(total_funding > 0, total_funding, 1.0),
                          0.0)
    # a relative slack of 1e-6 keeps a threshold equal to a sum of capital shares (0.04 +
    # 0.06 = 0.1) from depending on the dtype's rounding of that sum
    slack = 1.0 - 1e-6
    systemic = ((banks_failed >= slack * p.systemic_bank_share)
                | (s.maxdd[2] >= p.systemic_eq_drawdown)
                | (run_share >= slack * p.systemic_run_share))
    return {
        "drawdown_btc": s.maxdd[0],
        "drawdown_alt": s.maxdd[1],
        "drawdown_eq": s.maxdd[2],
        "exo_drawdown_btc": exo,
        "exo_drawdown_alt": s.exo_maxdd[1],
        "exo_drawdown_eq": s.exo_maxdd[2],
        "amplification": jnp.where(exo > 0, s.maxdd[0] / jnp.where(exo > 0, exo, 1.0), 1.0),
        "liquidated_long": s.liq_long,
        "liquidated_short": s.liq_short,
        "defi_liquidated": s.cum_defi.sum(0),
        "treasury_sold": s.cum_treasury,
        "fund_equity_sold": s.fund_eq,
        "fund_crypto_sold": s.fund_crypto.sum(0),
        "collateral_liquidated": s.col_sold,
        "bank_equity_sold": s.bank_eq,
        "bank_loss": s.bank_loss,
        "bank_crypto_loss": s.bank_crypto_loss,
        "run_share": run_share,
        "banks_failed": banks_failed,
        "fed_fired": s.fed_on,
        "fed_bought": s.fed_bought,
        "cascade_rounds_max": s.rounds_max,
        "capped_steps": s.capped / n_steps,
        "oi_closed": jnp.where(oi > 0, closed / jnp.where(oi > 0, oi, 1.0), 0.0),
        "time_to_trough": s.trough_step * p.step_hours,
        "systemic": systemic.astype(dtype),
    }


PATH_CHUNK = int(os.environ.get("KERNELS_PATH_CHUNK", "512"))
"""Paths per cascade sweep: a cell's paths run in chunks of this many, one after another.

Smaller chunks keep the cascade's working set in L1/L2 and let each chunk's
while loop stop when *its* slowest path has converged (not the whole cell's).
A path's numbers depend on the other paths only at the rounding level (chunk size,
compaction: :mod:`kernels.fixedpoint`), and the chunks of a cell are the same in every
block (bit-identity of a cell holds).
"""


def _simulate_paths(p: ModelParams, shocks: Shocks, return_prices: bool):
    """One chunk of paths: per-path outputs and (when asked) log prices ``(T, 3, n)``."""
    n_steps, _, n = shocks.z.shape
    state0 = init_state(n, p.bank_weights.shape[-1], shocks.z.dtype)
    final, info = lax.scan(lambda s, r: step(s, r, p), state0, returns(shocks, p))
    return _outputs(p, final, n_steps), (info.x if return_prices else None)


def chunk_shape(n: int) -> tuple[int, int]:
    """``(k, chunk)``: ``n`` paths run as ``k`` equal chunks of at most :data:`PATH_CHUNK`
    (640 paths run as 2 x 320)."""
    k = -(-n // PATH_CHUNK)
    return k, -(-n // k)


def prepare_chunks(normals: jax.Array, t_dof: int) -> Shocks:
    """Draws ``(n, T, 3 + t_dof)`` -> :class:`~kernels.shocks.Shocks` per chunk, with a
    leading chunk axis (the last chunk padded with copies of the first paths)."""
    n = normals.shape[0]
    k, chunk = chunk_shape(n)
    padded = jnp.concatenate([normals, normals[: k * chunk - n]], axis=0)
    return lax.map(lambda nm: prepare(nm, t_dof), padded.reshape((k, chunk, *normals.shape[1:])))


def simulate_prepared(p: ModelParams, shocks: Shocks, n: int, return_prices: bool = False):
    """One cell over the chunks of :func:`prepare_chunks` (``n`` paths; padding dropped)."""
    k, chunk = shocks.z.shape[0], shocks.z.shape[-1]
    n_steps = shocks.z.shape[1]
    outs, xs = lax.map(lambda sh: _simulate_paths(p, sh, return_prices), shocks)
    out = {name: v.reshape(-1)[:n] for name, v in outs.items()}
    if not return_prices:
        return out
    # (k, T, 3, chunk) -> (T, n, 3)
    xs = jnp.moveaxis(xs, 0, 2).reshape(n_steps, 3, k * chunk)[..., :n]
    return out, jnp.swapaxes(xs, 1, 2)


def simulate_cell(p: ModelParams, normals: jax.Array, t_dof: int = 4,
                  return_prices: bool = False):
    """Simulate one cell over all paths from draws ``(n_paths, n_steps, 3 + t_dof)``.

    Returns the per-path outputs (dict of ``(n_paths,)`` arrays) and, when
    ``return_prices``, the log prices ``(n_steps, n_paths, 3)`` relative to the start.
    Paths run in chunks of :data:`PATH_CHUNK` (the last chunk padded with copies of
    the first paths, whose results are dropped).
    """
    p = jax.tree.map(lambda v: jnp.asarray(v, normals.dtype), p)
    return simulate_prepared(p, prepare_chunks(normals, t_dof), normals.shape[0],
                             return_prices)


# XLA:CPU compiles the block ~25 % faster at LLVM optimisation level 1 than at its
# default, with the same run time (16 cells x 4,096 paths: first call 7.4 -> 6.6 s,
# 3.65 s per block either way; benchmarks/changes.md). Every caller on a backend gets
# the same options, so farm workers, tests and `analysis.resimulate` stay bit-identical.
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}
_STATIC = ("n_paths", "n_steps", "t_dof", "dtype", "per_cell_keys", "return_paths",
           "return_prices")


@functools.cache
def block_fn():
    """The jitted block function for JAX's default backend (built on first use, so
    importing this module does not initialise a backend)."""
    opts = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    return jax.jit(_block, static_argnames=_STATIC, compiler_options=opts)


def _block(params, key, *, n_paths, n_steps, t_dof, dtype, per_cell_keys, return_paths,
           return_prices=False):
    COMPILE_COUNTER["simulate_block"] += 1
    log.debug("compiling simulate_block for %d paths x %d steps", n_paths, n_steps)
    dt = jnp.dtype(dtype)

    def one_cell(p, shocks):
        out = simulate_prepared(p, shocks, n_paths, return_prices)
        paths, prices = out if return_prices else (out, None)
        stats, probs = cell_statistics(paths, p)
        return stats, probs, (paths if return_paths else None), prices

    # Cells run one after another through the *same* compiled body (lax.map), not
    # vmapped: XLA's rounding inside a vmapped cascade depends on the batch shape, and
    # near-critical cascades amplify that to visible differences. With lax.map a cell's
    # numbers are bit-identical whatever block it is computed in; SIMD comes from paths.
    # Under common random numbers the draws, their transposes and the Student-t scale
    # are made once per block and shared by its cells.
    def draws(key):
        return prepare_chunks(draw_normals(key, n_paths, n_steps, t_dof, dt), t_dof)

    if per_cell_keys:
        return lax.map(lambda a: one_cell(a[0], draws(a[1])), (params, key))
    shocks = draws(key)
    return lax.map(lambda p: one_cell(p, shocks), params)


def simulate_block(params: ModelParams, *, key: jax.Array, n_paths: int, n_steps: int = 96,
                   t_dof: int = 4, dtype: str = "float32", return_paths: bool = False,
                   return_prices: bool = False, validate: bool = True) -> BlockResult:
    """Run a block of cells (every leaf of ``params`` has a leading cells axis) x paths.

    ``key`` is one PRNG key (common random numbers: every cell sees the same
    shocks) or an array of one key per cell (independent seeding). Draws of path
    ``i`` depend only on ``(key, i)``. ``dtype`` is ``"float32"`` (default, fast)
    or ``"float64"`` (requires ``jax_enable_x64``). ``return_prices`` also returns
    every path's log prices (for fan charts; memory grows with cells x steps x paths).
    """
    if n_paths < 1:
        raise ValueError(f"n_paths={n_paths} is out of range; allowed: an integer >= 1")
    if n_steps < 1:
        raise ValueError(f"n_steps={n_steps} is out of range; allowed: an integer >= 1")
    if t_dof < 3:
        raise ValueError(f"t_dof={t_dof} is out of range; allowed: an integer >= 3 "
                         "(finite variance needs nu > 2)")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype={dtype!r} is not allowed; allowed: 'float32', 'float64'")
    if dtype == "float64" and not jax.config.jax_enable_x64:
        raise ValueError("dtype='float64' needs jax_enable_x64: call "
                         "jax.config.update('jax_enable_x64', True) first")
    if validate:
        validate_params(params)
    n_cells = np.shape(params.leverage)[0] if np.ndim(params.leverage) else None
    if n_cells is None:
        raise ValueError("params must be a block: stack cells with kernels.params.stack_params")
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    per_cell = key.ndim > (0 if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else 1)
    if per_cell and key.shape[0] != n_cells:
        raise ValueError(f"key has {key.shape[0]} per-cell keys but the block has {n_cells} cells")
    arrays = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)
    enable_compile_cache()
    with count_compile():
        stats, probs, paths, prices = block_fn()(
            arrays, key, n_paths=n_paths, n_steps=n_steps, t_dof=t_dof, dtype=dtype,
            per_cell_keys=bool(per_cell), return_paths=return_paths, return_prices=return_prices)
    stats = {k: np.asarray(stats[k]) for k in PATH_OUTPUTS}
    probs = with_intervals({k: np.asarray(v) for k, v in probs.items()}, n_paths)
    assert tuple(probs) == tuple(PROBABILITIES)
    paths = None if paths is None else {k: np.asarray(paths[k]) for k in PATH_OUTPUTS}
    return BlockResult(stats, probs, paths, None if prices is None else np.asarray(prices))
