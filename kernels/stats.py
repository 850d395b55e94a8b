"""Per-cell statistics over paths (DESIGN.md section 3.7)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .outputs import PATH_OUTPUTS, STATS
from .params import ModelParams

_QUANTILES = (0.05, 0.5, 0.95, 0.99)


def summarise(v: jax.Array) -> jax.Array:
    """``(len(STATS),)`` statistics of one output over paths: mean, std, q05, q50, q95, q99,
    and es99, the mean of the largest 1 % (at least one path)."""
    n = v.shape[-1]
    s = jnp.sort(v, axis=-1)
    k = max(1, int(0.01 * n))
    pos = jnp.asarray(_QUANTILES, v.dtype) * (n - 1)
    lo = jnp.floor(pos).astype(jnp.int32)
    hi = jnp.minimum(lo + 1, n - 1)
    frac = pos - lo
    q = s[..., lo] * (1 - frac) + s[..., hi] * frac
    mean = jnp.mean(v, axis=-1)
    std = jnp.sqrt(jnp.mean((v - mean[..., None]) ** 2, axis=-1))
    es = jnp.mean(s[..., n - k:], axis=-1)
    return jnp.concatenate([mean[..., None], std[..., None], q, es[..., None]], axis=-1)


def cell_statistics(paths: dict[str, jax.Array], p: ModelParams):
    """``(stats, probs)``: stats[var] has shape ``(..., len(STATS))``; probs[name] ``(...)``."""
    stats = {name: summarise(paths[name]) for name in PATH_OUTPUTS}
    assert all(v.shape[-1] == len(STATS) for v in stats.values())
    probs = {
        "p_systemic": jnp.mean(paths["systemic"], axis=-1),
        "p_fed_fired": jnp.mean(paths["fed_fired"], axis=-1),
        "p_btc_crash": jnp.mean((paths["drawdown_btc"] >= p.crash_drawdown)
                                .astype(paths["drawdown_btc"].dtype), axis=-1),
    }
    return stats, probs
