"""Work per path-step, counted by XLA's cost model, and the fraction of peak it reaches.

One cascade round (forced flows of every sector + impact + convergence test +
masked updates) is lowered on its own and XLA's ``cost_analysis`` counts its
floating-point operations and transcendentals (exp, sqrt); a step costs
``iterations x round`` plus the per-step bookkeeping, which is small. The peak
assumes ``FLOPS_PER_CYCLE`` float32 flops per cycle per core (2 x 256-bit FMA
pipes, as on AMD Zen 4; a CPU with two full 512-bit FMA units has twice that).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from kernels import market
from kernels.cascade import forced_flows, init_state, tolerance
from kernels.params import oct2025

FLOPS_PER_CYCLE = 32  # float32, per core: 2 FMA pipes x 8 lanes x 2 flops
TRANSCENDENTAL_FLOPS = 10  # flop-equivalents charged per exp/sqrt (polynomial + range reduction)


def _cost(compiled) -> dict:
    c = compiled.cost_analysis()
    return c[0] if isinstance(c, list) else c


def round_cost(n_paths: int = 4096) -> dict:
    """Flops and transcendentals of one cascade round, per path."""
    p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), oct2025())
    s = init_state(n_paths, p.bank_weights.shape[-1], jnp.float32)
    s = s._replace(low=jnp.full_like(s.low, jnp.log(0.95)))  # every asset 5 % down
    x = jnp.full((3, n_paths), -0.05, jnp.float32)

    def one_round(s, x, active):
        q, f = forced_flows(p, s, x, jnp.zeros_like(x[0]))
        imp, _ = market.impact(q, s.depth, p, assets_first=True)
        x_new = x + imp
        diff = jnp.max(jnp.abs(x_new - x), axis=0)
        f = jax.tree.map(lambda o, nw: jnp.where(active, nw, o), f, f)
        return jnp.where(active, x_new, x), f, active & (diff >= tolerance(p, jnp.float32))

    active = jnp.ones((n_paths,), bool)
    c = _cost(jax.jit(one_round).lower(s, x, active).compile())
    flops = float(c.get("flops", 0.0)) / n_paths
    trans = float(c.get("transcendentals", 0.0)) / n_paths
    return {"flops_per_path_round": flops, "transcendentals_per_path_round": trans,
            "flop_equiv_per_path_round": flops + TRANSCENDENTAL_FLOPS * trans,
            "bytes_per_path_round": float(c.get("bytes accessed", 0.0)) / n_paths}


def peak_flops(cores: int, mhz: float) -> float:
    return cores * mhz * 1e6 * FLOPS_PER_CYCLE


def efficiency(path_steps_per_s: float, rounds: dict, cost: dict, cores: int,
               mhz: float) -> dict:
    """Flop rate of the kernel as fractions of peak, twice: ``useful`` counts the rounds
    each path needs, ``executed`` the lane-rounds the compacted loop runs (converged
    lanes riding along included); see :func:`benchmarks.kernel.round_accounting`."""
    per_round = cost["flop_equiv_per_path_round"]
    out = {"iterations_per_step": rounds["executed_rounds_per_path_step"], **rounds,
           "peak_gflops_one_core": peak_flops(1, mhz) / 1e9,
           "peak_gflops_machine": peak_flops(cores, mhz) / 1e9}
    for name in ("useful", "executed"):
        per_step = rounds[f"{name}_rounds_per_path_step"] * per_round
        achieved = per_step * path_steps_per_s
        out[f"{name}_flop_equiv_per_path_step"] = per_step
        out[f"{name}_gflops"] = achieved / 1e9
        out[f"{name}_fraction_of_one_core"] = achieved / peak_flops(1, mhz)
        out[f"{name}_fraction_of_machine"] = achieved / peak_flops(cores, mhz)
    return out
