"""Crypto treasury companies (Strategy-like): hold btc with debt, sell past a covenant.

Company bucket ``j`` starts the day at loan-to-value ``ltv_j = leverage x
treasury_ltv x bucket_j`` (validation refuses any ``ltv_j >= covenant``, so no
company starts in breach). At a btc drawdown ``D`` its LTV is ``ltv_j / (1 - D)``;
it hits the covenant at ``D_j = 1 - ltv_j / covenant`` (thresholds dispersed) and
then sells btc until LTV is back at the target:
``sale = (debt - target x value) / (1 - target)``, at most its holdings.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


def target(p: ModelParams, dd: jax.Array) -> jax.Array:
    """Cumulative btc sold ($), ``(n,)`` from ``dd (3, n)``."""
    hold = (p.channel_treasury * p.treasury_btc * p.treasury_ltv_weights)[:, None]  # (J, 1)
    ltv = (p.treasury_ltv * p.leverage * p.treasury_ltv_buckets)[:, None]
    debt = ltv * hold
    trigger = 1.0 - ltv / p.treasury_covenant  # > 0 by validation
    value = hold * (1.0 - dd[:1])  # (J, n) holdings at the worst mark
    sale = jnp.clip((debt - p.treasury_target * value) / (1.0 - p.treasury_target), 0.0, value)
    share = liquidated_share(dd[:1], trigger, p.dispersion)
    return jnp.sum(share * sale, axis=0)
