"""Banks, money funds and repo desks: crypto collateral, runs, fire sales, failure.

Bank ``b`` has capital ``K_b``, assets ``bank_leverage x K_b`` (its own balance-sheet
leverage, not the ``leverage`` axis), equities, liquid assets and short-term
wholesale funding. It has lent against crypto collateral worth
``X_b = K_b x (min(leverage x floor, cap) + integration x leverage x (max_b - floor))``
at the open: the Basel floor at integration 0 (never above the hard cap), its
maximum at integration 1. When the collateral has fallen by ``bank_margin_call``
(dispersed) the lender liquidates it *into the crypto market*; it loses what the
collateral has fallen past the haircut, on the part not yet sold (marked) and on
the part sold, at the price it was sold at (realised). Wholesale funders run from a
bank whose losses pass ``run_threshold`` of its capital; the run is paid from
liquid assets first, then by selling equities and other assets at a fire-sale
discount (a loss). To restore leverage after losses a bank sells ``(lambda - 1) L``
of assets, ``bank_eq_sale_share`` of them equities. The Fed forestalls its share of
bank fire sales. A bank whose capital falls below ``bank_fail_floor`` has failed.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..market import liquidated_share
from ..params import ModelParams


class BankMarks(NamedTuple):
    collateral_share: jax.Array  # (n,) cumulative share of collateral liquidated
    crypto_loss: jax.Array  # (B, n) $ losses on crypto collateral
    loss: jax.Array  # (B, n) $ losses from all causes
    run: jax.Array  # (B, n) cumulative run intensity in [0, 1]
    equity_target: jax.Array  # (n,) cumulative equities sold, after the Fed ($)


def capital(p: ModelParams) -> jax.Array:
    """Capital per bank ($), ``(B,)``."""
    return p.bank_capital * p.bank_weights


def exposure(p: ModelParams) -> jax.Array:
    """Crypto collateral per bank at the open ($), ``(B,)``."""
    floor = jnp.minimum(p.leverage * p.bank_crypto_floor, p.bank_crypto_cap)
    extra = p.integration * p.leverage * (p.bank_crypto_max - p.bank_crypto_floor)
    return p.channel_collateral * capital(p) * (floor + extra)


def wholesale(p: ModelParams) -> jax.Array:
    """Run-able wholesale funding per bank ($), ``(B,)``."""
    return p.bank_wholesale_share * (p.bank_leverage - 1.0) * capital(p)


def collateral_drawdown(p: ModelParams, dd: jax.Array) -> jax.Array:
    """Fall of the crypto collateral basket, ``(n,)``."""
    return p.bank_crypto_btc_share * dd[0] + (1.0 - p.bank_crypto_btc_share) * dd[1]


def marks(p: ModelParams, dd: jax.Array, col_prev: jax.Array, realised: jax.Array,
          run_prev: jax.Array, fed_share: jax.Array) -> BankMarks:
    """Banks at running drawdowns ``dd (3, n)`` given the start-of-step state:
    ``col_prev (n,)`` share of collateral already liquidated, ``realised (n,)`` loss per $
    of exposure realised on it, ``run_prev (B, n)`` run intensity so far."""
    cap = capital(p)[:, None]
    assets = p.bank_leverage * cap
    hold_eq = p.bank_eq_share * assets
    d_col = collateral_drawdown(p, dd)
    col = jnp.maximum(col_prev, liquidated_share(d_col, p.bank_margin_call, p.dispersion))
    unit_loss = realised + (1.0 - col_prev) * jnp.maximum(d_col - p.bank_haircut, 0.0)
    crypto = exposure(p)[:, None] * unit_loss[None, :]
    market = crypto + hold_eq * dd[2:3]

    funding = wholesale(p)[:, None]
    liquid = p.bank_liquid_share * assets
    forestall = 1.0 - fed_share[None, :]

    def excess(run):  # run outflow beyond liquid assets ($)
        return jnp.maximum(run * p.run_share * funding - liquid, 0.0)

    def fire_loss(run):
        return p.run_discount * (1.0 - p.bank_eq_sale_share) * excess(run) * forestall

    before = market + fire_loss(run_prev)
    run = jnp.maximum(run_prev, p.channel_runs * liquidated_share(before / cap, p.run_threshold,
                                                                  p.dispersion))
    loss = market + fire_loss(run)
    delever = p.channel_bank_sales * p.bank_eq_sale_share * (p.bank_leverage - 1.0) * loss
    run_eq = p.bank_eq_sale_share * excess(run)
    gross = jnp.minimum(delever + run_eq, hold_eq * (1.0 - dd[2:3]))
    return BankMarks(col, crypto, loss, run, (gross * forestall).sum(axis=0))


def failed(p: ModelParams, loss: jax.Array) -> jax.Array:
    """Which banks have capital below the floor, ``(B, n)`` booleans."""
    return loss > ((1.0 - p.bank_fail_floor) * capital(p))[:, None]
