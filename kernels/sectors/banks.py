"""Banks, money funds and repo: crypto collateral and overlapping equity fire sales.

Bank ``i`` has capital ``bank_capital x w_i``, leverage ``1 + leverage
(bank_leverage - 1)``, equities worth ``bank_eq_share`` of assets and crypto
collateral exposure ``integration x bank_crypto_max_i x capital``. Collateral
losses start past the haircut. To restore leverage after a loss ``L`` a bank
sells ``(lambda - 1) L`` of equities (at most what it holds); the Fed put
forestalls the share the Fed absorbs (``sectors.fed.share``). A bank whose
capital falls below ``bank_fail_floor`` of its initial capital has failed.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..params import ModelParams


def capital(p: ModelParams) -> jax.Array:
    """Capital per bank ($), ``(B,)``."""
    return p.bank_capital * p.bank_weights


def losses(p: ModelParams, dd: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-bank losses ($) from all causes and from crypto collateral, each ``(B, n)``
    from ``dd (3, n)``."""
    cap = capital(p)
    lam = 1.0 + p.leverage * (p.bank_leverage - 1.0)
    eq_hold = (p.bank_eq_share * lam * cap)[:, None]
    exposure = (p.integration * p.bank_crypto_max * cap)[:, None]
    dd_col = p.bank_crypto_btc_share * dd[0] + (1.0 - p.bank_crypto_btc_share) * dd[1]
    crypto = jnp.maximum(dd_col - p.bank_haircut, 0.0)[None, :] * exposure
    return crypto + dd[2:3] * eq_hold, crypto


def target(p: ModelParams, dd: jax.Array, fed_share: jax.Array) -> jax.Array:
    """Cumulative equity fire sales ($), ``(n,)``."""
    cap = capital(p)
    lam = 1.0 + p.leverage * (p.bank_leverage - 1.0)
    eq_hold = p.bank_eq_share * lam * cap
    total, _ = losses(p, dd)
    sale = jnp.minimum((lam - 1.0) * total, eq_hold[:, None]).sum(axis=0)
    return sale * (1.0 - fed_share)


def failed(p: ModelParams, total_losses: jax.Array) -> jax.Array:
    """Which banks have capital below the floor, ``(B, n)`` booleans."""
    return total_losses > ((1.0 - p.bank_fail_floor) * capital(p))[:, None]
