"""DeFi lending (Aave/Compound style): health-factor buckets, close factor, bonus.

A loan with health factor ``HF`` is liquidatable when its collateral has fallen by
``1 - 1/HF``; the close factor of its debt is repaid, and the rest once HF falls
below ``defi_full_hf``. Collateral worth ``repaid x (1 + bonus)`` is sold. A share
of collateral is self-referential and falls ``1 + beta`` times as far (the death
spiral). ``leverage`` scales debt: ``HF = 1 + (HF_1 - 1) / leverage``, so at
leverage 0 there is no debt and nothing is ever liquidated.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


def target(p: ModelParams, dd: jax.Array) -> jax.Array:
    """Cumulative collateral sold ($), ``(2, n)`` for btc/alt from ``dd (3, n)``."""
    inv_hf = p.leverage / (p.leverage + p.defi_hf_buckets - 1.0)  # 1 / HF at this leverage
    coll = p.channel_defi * jnp.stack([p.defi_collateral_btc, p.defi_collateral_alt])
    debt = coll[:, None] * p.defi_hf_weights * p.defi_liq_threshold * inv_hf  # (2, J)
    d_partial = (1.0 - inv_hf)[:, None]  # (J, 1) collateral fall that makes HF = 1
    d_full = (1.0 - p.defi_full_hf * inv_hf)[:, None]  # ... HF = defi_full_hf
    dd_eff = jnp.minimum(dd[:2] * (1.0 + p.defi_selfref_share * p.defi_selfref_beta), 1.0)
    x = dd_eff[:, None, :]  # (2, 1, n)
    share = (p.defi_close_factor * liquidated_share(x, d_partial, p.dispersion)
             + (1.0 - p.defi_close_factor) * liquidated_share(x, d_full, p.dispersion))
    return (1.0 + p.defi_bonus) * jnp.sum(share * debt[:, :, None], axis=1)
