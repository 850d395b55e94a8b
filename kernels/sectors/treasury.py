"""Crypto treasury companies (Strategy-like): hold btc with debt, sell past a covenant.

Companies differ in loan-to-value (``treasury_ltv x bucket``, scaled by
``leverage``); when LTV at the current mark passes the covenant they sell btc
until LTV is back at the target: ``sale = (debt - target value) / (1 - target)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


def target(p: ModelParams, dd: jax.Array) -> jax.Array:
    """Cumulative btc sold ($), ``(n,)`` from ``dd (3, n)``."""
    hold = (p.treasury_btc * p.treasury_ltv_weights)[:, None]  # (J, 1)
    ltv = (p.treasury_ltv * p.leverage * p.treasury_ltv_buckets)[:, None]
    debt = ltv * hold
    trigger = jnp.maximum(1.0 - ltv / p.treasury_covenant, 1e-3)
    value = hold * (1.0 - dd[:1])  # (J, n)
    sale = jnp.clip((debt - p.treasury_target * value) / (1.0 - p.treasury_target), 0.0, value)
    share = liquidated_share(dd[:1], trigger, p.entry_dispersion)
    return jnp.sum(share * sale, axis=0)
