"""Perpetual-futures traders: leveraged longs and shorts in leverage buckets.

A position of leverage ``l`` (capped per venue) entered at price ``P_e`` is liquidated
when the log price has moved against it by ``mu_l`` from entry (long:
``mu = -log(1 - 1/l + mm)``, short: ``mu = log(1 + 1/l - mm)``). Positions were opened
over the weeks before the day, so at the day's open a bucket's distance to
liquidation is a distribution, not a point: the stationary distribution of a
Brownian distance (the asset's daily volatility) that starts at ``mu`` when a
position opens, is absorbed at 0 (liquidation) and ends at rate ``1 /
perp_holding_days`` (voluntary closes). Its CDF :func:`survivor_cdf` has no mass
at 0 and grows like ``u^2`` near it, so ordinary intraday noise liquidates little.
``leverage`` scales notional; liquidated longs sell, liquidated shorts buy.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..params import ModelParams

DAYS_PER_YEAR = 365.0
MIN_DAILY_VOL = 1e-4  # keeps the distance scale finite when a test sets a crypto vol to 0


def survivor_cdf(u: jax.Array, a: jax.Array, k: jax.Array) -> jax.Array:
    """Share of a bucket liquidated once the adverse log move reaches ``u >= 0``.

    ``k`` (1/log units) is ``sqrt(2 h) / sigma`` and ``a = k mu``; with ``z = k u``:
    ``F = e^(-a) (cosh z - 1) / (1 - e^(-a)) = e^(z-a) (1 - e^(-z))^2 / (2 (1 - e^(-a)))``
    for ``z <= a`` (the second form has no cancellation near 0, where F ~ z^2, and no
    overflow when ``a`` is huge, as with a near-zero volatility) and
    ``F = 1 - (e^(a-z) - e^(-a-z)) / (2 (1 - e^(-a)))`` beyond (every exponent <= 0).
    """
    z = k * u
    den = -2.0 * jnp.expm1(-a)
    zl = jnp.minimum(z, a)
    zh = jnp.maximum(z, a)
    low = jnp.exp(zl - a) * jnp.expm1(-zl) ** 2 / den
    high = 1.0 - (jnp.exp(a - zh) - jnp.exp(-a - zh)) / den
    return jnp.where(z <= a, low, high)


def distance_scale(p: ModelParams) -> jax.Array:
    """``k = sqrt(2 / holding_days) / daily vol`` per crypto asset, ``(2,)`` (1/log units)."""
    daily = jnp.maximum(jnp.stack([p.vol_btc, p.vol_alt]) / jnp.sqrt(DAYS_PER_YEAR),
                        MIN_DAILY_VOL)
    return jnp.sqrt(2.0 / p.perp_holding_days) / daily


def nominal_distances(p: ModelParams) -> tuple[jax.Array, jax.Array]:
    """Log distance from entry to liquidation per asset and bucket, ``(2, K)`` long and short."""
    caps = jnp.stack([p.perp_cap_btc, p.perp_cap_alt])
    lev = jnp.minimum(p.perp_leverage_buckets[None, :], caps[:, None])
    long_mu = -jnp.log1p(-(1.0 / lev - p.maint_margin))
    short_mu = jnp.log1p(1.0 / lev - p.maint_margin)
    return long_mu, short_mu


def liquidated_shares(p: ModelParams, down: jax.Array,
                      up: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Cumulative share of long and short notional liquidated per crypto asset, each ``(2, n)``,
    from the running adverse log moves ``down = -min log price`` and ``up = max log price``
    (``(2, n)``, >= 0)."""
    k = distance_scale(p)[:, None]  # (2, 1)
    long_mu, short_mu = nominal_distances(p)
    f_long = survivor_cdf(down[:, None, :], (k * long_mu)[:, :, None], k[:, :, None])
    f_short = survivor_cdf(up[:, None, :], (k * short_mu)[:, :, None], k[:, :, None])
    # explicit multiply-and-sum, not a dot: a dot's rounding may depend on the batch shape
    long_s = jnp.sum(f_long * p.perp_long_weights[:, None], axis=1)
    short_s = jnp.sum(f_short * p.perp_short_weights[:, None], axis=1)
    return long_s, short_s


def notionals(p: ModelParams) -> tuple[jax.Array, jax.Array]:
    """Leveraged long and short notional at the open per crypto asset ($), each ``(2,)``."""
    scale = p.leverage * p.channel_perps
    return (scale * jnp.stack([p.perp_long_btc, p.perp_long_alt]),
            scale * jnp.stack([p.perp_short_btc, p.perp_short_alt]))


def open_interest(p: ModelParams) -> jax.Array:
    """Total leveraged notional at the start of the day ($)."""
    return p.leverage * (p.perp_long_btc + p.perp_long_alt + p.perp_short_btc + p.perp_short_alt)
