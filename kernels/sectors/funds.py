"""Leveraged multi-asset funds (the crowded AI trade), Cont-Schaanning deleveraging.

Funds hold btc, alt and equities at leverage ``1 + leverage (fund_leverage - 1)``.
When leverage after mark-to-market losses passes ``fund_max_ratio`` times its
initial value (thresholds dispersed across funds) they sell towards
``fund_target_ratio`` times it, *most liquid first*: equities, then btc, then alt.
This is the channel that carries a crypto shock into equities.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


def target(p: ModelParams, dd: jax.Array) -> jax.Array:
    """Cumulative sales ($), ``(3, n)`` for btc/alt/eq from ``dd (3, n)``."""
    lam = 1.0 + p.leverage * (p.fund_leverage - 1.0)
    equity = p.fund_capital
    hold = lam * equity * jnp.stack([p.fund_w_btc, p.fund_w_alt, p.fund_w_eq])
    loss = jnp.sum(dd * hold[:, None], axis=0)  # not a dot: keeps blocks bit-identical to cells
    assets = lam * equity - loss
    capital = equity - loss
    lev_now = assets / jnp.maximum(capital, 1e-9 * equity)
    triggered = liquidated_share(lev_now / lam - 1.0, p.fund_max_ratio - 1.0, p.entry_dispersion)
    sale = jnp.clip(assets - p.fund_target_ratio * lam * capital, 0.0, assets)
    total = triggered * sale
    s_eq = jnp.minimum(total, hold[2])
    s_btc = jnp.minimum(total - s_eq, hold[0])
    s_alt = total - s_eq - s_btc
    return jnp.stack([s_btc, s_alt, s_eq], axis=0)
