"""Perpetual-futures traders: leveraged longs and shorts in leverage buckets.

A bucket of leverage ``l`` (capped per venue) is liquidated when the adverse
move from entry passes ``1 / l - maint_margin``; entries are dispersed, so the
liquidated share is continuous in the drawdown. ``leverage`` scales notional.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


def thresholds(p: ModelParams) -> jax.Array:
    """Adverse move that liquidates each bucket, ``(2, K)`` for btc/alt."""
    caps = jnp.stack([p.perp_cap_btc, p.perp_cap_alt])
    lev = jnp.minimum(p.perp_leverage_buckets[None, :], caps[:, None])
    return 1.0 / lev - p.maint_margin


def targets(p: ModelParams, dd: jax.Array, rise: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cumulative long liquidations (sells) and short liquidations (buys), each ``(2, n)``
    from ``dd (3, n)`` and ``rise (2, n)`` (assets first, paths last)."""
    thr = thresholds(p)[:, :, None]  # (2, K, 1)
    long_n = p.leverage * jnp.stack([p.perp_long_btc, p.perp_long_alt])[:, None]
    short_n = p.leverage * jnp.stack([p.perp_short_btc, p.perp_short_alt])[:, None]
    f_long = liquidated_share(dd[:2, None, :], thr, p.entry_dispersion)  # (2, K, n)
    f_short = liquidated_share(rise[:, None, :], thr, p.entry_dispersion)
    # explicit multiply-and-sum, not a dot: a dot's rounding may depend on the batch shape
    long_t = long_n * jnp.sum(f_long * p.perp_long_weights[:, None], axis=1)
    short_t = short_n * jnp.sum(f_short * p.perp_short_weights[:, None], axis=1)
    return long_t, short_t


def open_interest(p: ModelParams) -> jax.Array:
    """Total leveraged notional at the start of the day ($)."""
    return p.leverage * (p.perp_long_btc + p.perp_long_alt + p.perp_short_btc + p.perp_short_alt)
