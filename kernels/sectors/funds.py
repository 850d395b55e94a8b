"""Leveraged multi-asset funds (the crowded AI trade): the crypto -> equity channel.

Funds with capital ``E`` hold equities ``H = fund_eq_leverage x E`` and a margined
crypto book of notional ``N = leverage x fund_crypto_book`` (btc and alt). Crypto
losses ``V`` are variation margin, paid in cash: past a cash buffer ``fund_buffer x
N`` the funds raise it by selling their most liquid assets, a share
``fund_eq_sale_share`` from equities (the rest from Treasuries, outside the model).
This fires from the first dollar of margin call beyond the buffer, even with no
equity shock at all. On top, when the funds' leverage after losses passes
``fund_max_ratio`` times its initial value (thresholds dispersed) they sell towards
``fund_target_ratio`` times it (Cont-Schaanning), most liquid first: equities, then
crypto.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


class FundSales(NamedTuple):
    equity: jax.Array  # (n,) cumulative equities sold ($)
    crypto: jax.Array  # (2, n) cumulative btc/alt sold ($)


def crypto_book(p: ModelParams) -> jax.Array:
    """Crypto book notional per asset at the open ($), ``(2,)``."""
    n = p.leverage * p.fund_crypto_book
    return n * jnp.stack([p.fund_crypto_btc_share, 1.0 - p.fund_crypto_btc_share])


def target(p: ModelParams, dd: jax.Array) -> FundSales:
    """Cumulative sales from the running drawdowns ``dd (3, n)``."""
    book = crypto_book(p)  # (2,)
    notional = jnp.sum(book)
    margin_loss = jnp.sum(dd[:2] * book[:, None], axis=0)  # not a dot: bit-stable blocks
    cash_call = jnp.maximum(margin_loss - p.fund_buffer * notional, 0.0)
    hold_eq = p.fund_eq_leverage * p.fund_capital
    eq_left = hold_eq * (1.0 - dd[2])
    margin_eq = jnp.minimum(p.channel_fund_margin * p.fund_eq_sale_share * cash_call, eq_left)

    assets0 = hold_eq + notional
    lam0 = assets0 / p.fund_capital
    loss = margin_loss + hold_eq * dd[2]
    assets = assets0 - loss
    capital = p.fund_capital - loss
    lam = assets / jnp.maximum(capital, 1e-9 * p.fund_capital)
    triggered = liquidated_share(lam / jnp.maximum(lam0, 1e-12) - 1.0, p.fund_max_ratio - 1.0,
                                 p.dispersion)
    sale = jnp.clip(assets - p.fund_target_ratio * lam0 * capital, 0.0, jnp.maximum(assets, 0.0))
    delever = p.channel_fund_delever * triggered * sale
    cs_eq = jnp.minimum(delever, eq_left - margin_eq)
    crypto_left = book[:, None] * (1.0 - dd[:2])  # (2, n)
    total_left = jnp.sum(crypto_left, axis=0)
    cs_crypto = jnp.minimum(delever - cs_eq, total_left)
    share = crypto_left / jnp.where(total_left > 0, total_left, 1.0)
    return FundSales(equity=margin_eq + cs_eq, crypto=share * cs_crypto)
