"""One step of the day: exogenous move, then the within-step cascade to a fixed point.

The cascade (docs/model.md section 5) iterates prices -> cumulative forced flows of
all sectors -> impact on evaporating depth -> prices, ``x <- F(x)``, with
``lax.while_loop``. Flows are monotone in the drawdowns, so from the exogenous price
the iterates fall monotonically to the least fixed point (the smallest crash
consistent with the flows); near a tipping point the contraction is slow, and a
safeguarded extrapolation (:func:`kernels.fixedpoint.solve`) skips ahead. A path stops when its
residual ``|F(x) - x|`` and the error bound ``|F(x) - x| rho / (1 - rho)`` (``rho`` the
observed contraction) are both below ``tol``, or at ``max_rounds`` (counted as a capped
step, never hidden). Each
path stops on its own; a cell's numbers never depend on the other cells it is computed
with (blocks are bit-identical to single cells).
"""

from __future__ import annotations

import functools
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp

from . import fixedpoint, market
from .params import ModelParams
from .sectors import banks, defi, fed, funds, perps, treasury


class DayState(NamedTuple):
    """Per-path state carried through the day's ``lax.scan``.

    Paths are the *last* axis of every array (``(3, n)``: assets first), so the
    cascade's elementwise work runs over contiguous vectors of paths.
    """

    fund: jax.Array  # (3, n) exogenous log price
    mem_perm: jax.Array  # (3, n) $ permanent memory of net forced flow
    mem_trans: jax.Array  # (3, n) $ transient memory (decays by resilience per 15 minutes)
    depth: jax.Array  # (3, n) depth as share of normal
    low: jax.Array  # (3, n) lowest log price so far (<= 0)
    up: jax.Array  # (2, n) highest crypto log price so far (>= 0)
    long_sold: jax.Array  # (2, n) share of perp long notional liquidated
    short_sold: jax.Array  # (2, n) share of perp short notional liquidated
    liq_long: jax.Array  # (n,) $ perp longs liquidated (at liquidation price)
    liq_short: jax.Array  # (n,) $ perp shorts liquidated
    cum_defi: jax.Array  # (2, n) $ DeFi collateral sold
    cum_treasury: jax.Array  # (n,) $ btc sold by treasuries
    fund_eq: jax.Array  # (n,) $ equities sold by funds
    fund_crypto: jax.Array  # (2, n) $ crypto sold by funds
    bank_eq: jax.Array  # (n,) $ equities sold by banks (after the Fed)
    col_share: jax.Array  # (n,) share of bank crypto collateral liquidated
    col_realised: jax.Array  # (n,) loss per $ of exposure realised on liquidated collateral
    col_sold: jax.Array  # (n,) $ collateral liquidated
    run: jax.Array  # (B, n) run intensity per bank
    failed: jax.Array  # (B, n) bank failed
    bank_loss: jax.Array  # (n,) peak loss / system capital
    bank_crypto_loss: jax.Array  # (n,) peak crypto loss / system capital
    fed_on: jax.Array  # (n,) 1.0 once the Fed put has fired
    fed_bought: jax.Array  # (n,) $ equity flow bought by the Fed
    peak: jax.Array  # (3, n) running peak of log price
    maxdd: jax.Array  # (3, n) peak-to-trough drawdown so far
    exo_peak: jax.Array  # (3, n)
    exo_maxdd: jax.Array  # (3, n)
    trough_step: jax.Array  # (n,) steps to the btc trough
    rounds_max: jax.Array  # (n,) most cascade rounds in a step
    capped: jax.Array  # (n,) steps whose cascade hit max_rounds
    t: jax.Array  # () step index


class StepInfo(NamedTuple):
    x: jax.Array  # (3, n) log prices at the end of the step
    rounds: jax.Array  # (n,) cascade rounds used


class Flows(NamedTuple):
    """Everything the sectors do at trial prices (targets are cumulative, flows this step)."""

    long_share: jax.Array  # (2, n) cumulative share of long notional liquidated
    short_share: jax.Array  # (2, n)
    long_usd: jax.Array  # (2, n) $ longs liquidated this step (sold)
    short_usd: jax.Array  # (2, n) $ shorts liquidated this step (bought)
    defi: jax.Array  # (2, n)
    treasury: jax.Array  # (n,)
    fund_eq: jax.Array  # (n,) gross equity sales of funds
    fund_crypto: jax.Array  # (2, n)
    bank_eq: jax.Array  # (n,) bank equity sales reaching the market
    col_usd: jax.Array  # (2, n) collateral liquidated into btc / alt
    fed_share: jax.Array  # (n,) share the Fed buys / forestalls
    bank: banks.BankMarks
    d_col: jax.Array  # (n,) collateral drawdown


def init_state(n_paths: int, n_banks: int, dtype) -> DayState:
    """The state at the start of the day (all prices at log 0, normal depth)."""
    z3 = jnp.zeros((3, n_paths), dtype)
    z2 = jnp.zeros((2, n_paths), dtype)
    z1 = jnp.zeros((n_paths,), dtype)
    zb = jnp.zeros((n_banks, n_paths), dtype)
    return DayState(
        fund=z3, mem_perm=z3, mem_trans=z3, depth=jnp.ones((3, n_paths), dtype), low=z3, up=z2,
        long_sold=z2, short_sold=z2, liq_long=z1, liq_short=z1, cum_defi=z2, cum_treasury=z1,
        fund_eq=z1, fund_crypto=z2, bank_eq=z1, col_share=z1, col_realised=z1, col_sold=z1,
        run=zb, failed=jnp.zeros((n_banks, n_paths), bool), bank_loss=z1, bank_crypto_loss=z1,
        fed_on=z1, fed_bought=z1, peak=z3, maxdd=z3, exo_peak=z3, exo_maxdd=z3,
        trough_step=z1, rounds_max=z1, capped=z1, t=jnp.zeros((), jnp.int32),
    )


def forced_flows(p: ModelParams, s: DayState, x: jax.Array,
                 share_floor: jax.Array) -> tuple[jax.Array, Flows]:
    """Net forced sales per asset ``(3, n)`` ($, sell > 0) at trial prices ``x (3, n)``.

    ``share_floor`` is the Fed's share reached in earlier rounds of this step: the
    Fed never withdraws within a step, which keeps the cascade from oscillating.
    """
    low = jnp.minimum(s.low, x)
    up = jnp.maximum(s.up, x[:2])
    dd = -jnp.expm1(low)
    price = jnp.exp(x[:2])
    long_share, short_share = perps.liquidated_shares(p, -low[:2], up)
    long_share = jnp.maximum(long_share, s.long_sold)
    short_share = jnp.maximum(short_share, s.short_sold)
    long_n, short_n = perps.notionals(p)
    fed_share = jnp.maximum(share_floor, fed.share(p, dd[2], s.fed_on))
    fs = funds.target(p, dd)
    bm = banks.marks(p, dd, s.col_share, s.col_realised, s.run, fed_share)
    col_total = jnp.sum(banks.exposure(p))
    col_w = jnp.stack([p.bank_crypto_btc_share, 1.0 - p.bank_crypto_btc_share])[:, None]
    f = Flows(
        long_share=long_share,
        short_share=short_share,
        long_usd=long_n[:, None] * (long_share - s.long_sold) * price,
        short_usd=short_n[:, None] * (short_share - s.short_sold) * price,
        defi=jnp.maximum(defi.target(p, dd) - s.cum_defi, 0.0),
        treasury=jnp.maximum(treasury.target(p, dd) - s.cum_treasury, 0.0),
        fund_eq=jnp.maximum(fs.equity - s.fund_eq, 0.0),
        fund_crypto=jnp.maximum(fs.crypto - s.fund_crypto, 0.0),
        bank_eq=jnp.maximum(bm.equity_target - s.bank_eq, 0.0),
        col_usd=col_total * (bm.collateral_share - s.col_share)[None, :] * col_w * price,
        fed_share=fed_share,
        bank=bm,
        d_col=banks.collateral_drawdown(p, dd),
    )
    crypto = f.long_usd - f.short_usd + f.defi + f.fund_crypto + f.col_usd
    eq = (1.0 - fed_share) * f.fund_eq + f.bank_eq  # bank sales are already net of the Fed
    return jnp.stack([crypto[0] + f.treasury, crypto[1], eq], axis=0), f


def tolerance(p: ModelParams, dtype) -> jax.Array:
    """Fixed-point tolerance, floored at 8 machine epsilons of the working dtype."""
    return jnp.maximum(p.tol, 8.0 * jnp.finfo(dtype).eps)


X_MIN, X_MAX = -50.0, 10.0
"""Bounds of a log price (a fall to e^-50 of the open, a rise to 22,000x). A short
squeeze valued at the current price has no fixed point in a book thin enough; the
bounds keep every number finite, and a step that reaches them counts as capped."""

COMPACT = os.environ.get("KERNELS_COMPACT", "1") != "0"
"""Compact the cascade's active set (:mod:`kernels.fixedpoint`); ``KERNELS_COMPACT=0``
runs every round at full width (for benchmarks; the numbers are the same)."""


class Trial(NamedTuple):
    """What the step needs from the accepted point of its cascade (carried by the solver,
    so the step does not evaluate the flows again)."""

    x: jax.Array  # (3, n) log prices F(x) after the impact
    q: jax.Array  # (3, n) $ net forced sales this step
    d_eff: jax.Array  # (3, n) effective depth share
    f: Flows


def _trial(p: ModelParams, ctx, x: jax.Array, floor: jax.Array):
    """``F(x)``: log prices after the impact of the flows at trial prices ``x``, the Fed
    share reached there, and the trial (``ctx = (state, exogenous log price, memory)``)."""
    s, base, memory = ctx
    q, f = forced_flows(p, s, x, floor)
    imp, d_eff = market.impact(q, s.depth, p, assets_first=True, memory=memory)
    fx = jnp.clip(base + imp, X_MIN, X_MAX)
    return fx, f.fed_share, Trial(fx, q, d_eff, f)


def step(state: DayState, ret: jax.Array, p: ModelParams) -> tuple[DayState, StepInfo]:
    """Advance the day by one step given this step's exogenous log returns ``ret (3, n)``."""
    s = state
    dtype = ret.dtype
    fund_x = s.fund + ret
    r = market.per_step(p)[0]
    memory = s.mem_perm + r * s.mem_trans
    start = jnp.clip(fund_x + market.impact(jnp.zeros_like(fund_x), s.depth, p,
                                            assets_first=True, memory=memory)[0], X_MIN, X_MAX)
    trial, active, rounds = fixedpoint.solve(
        functools.partial(_trial, p), (s, fund_x, memory), start,
        tolerance(p, dtype), p.max_rounds, compact=COMPACT)
    x, q, d_eff, f = trial
    active = active | jnp.any((x <= X_MIN) | (x >= X_MAX), axis=0)

    cap = banks.capital(p)
    cap_total = jnp.sum(cap)
    low = jnp.minimum(s.low, x)
    peak = jnp.maximum(s.peak, x)
    exo_peak = jnp.maximum(s.exo_peak, fund_x)
    new_trough = x[0] < s.low[0]
    bm = f.bank
    new = DayState(
        fund=fund_x,
        mem_perm=s.mem_perm + p.perm_share * q,
        mem_trans=r * s.mem_trans + (1.0 - p.perm_share) * q,
        depth=market.recover_depth(d_eff, p),
        low=low,
        up=jnp.maximum(s.up, x[:2]),
        long_sold=f.long_share,
        short_sold=f.short_share,
        liq_long=s.liq_long + f.long_usd.sum(0),
        liq_short=s.liq_short + f.short_usd.sum(0),
        cum_defi=s.cum_defi + f.defi,
        cum_treasury=s.cum_treasury + f.treasury,
        fund_eq=s.fund_eq + f.fund_eq,
        fund_crypto=s.fund_crypto + f.fund_crypto,
        bank_eq=s.bank_eq + f.bank_eq,
        col_share=bm.collateral_share,
        col_realised=s.col_realised + (bm.collateral_share - s.col_share)
        * jnp.maximum(f.d_col - p.bank_haircut, 0.0),
        col_sold=s.col_sold + f.col_usd.sum(0),
        run=bm.run,
        failed=s.failed | banks.failed(p, bm.loss),
        bank_loss=jnp.maximum(s.bank_loss, bm.loss.sum(0) / cap_total),
        bank_crypto_loss=jnp.maximum(s.bank_crypto_loss, bm.crypto_loss.sum(0) / cap_total),
        fed_on=fed.armed(p, -jnp.expm1(low[2]), s.fed_on),
        fed_bought=s.fed_bought + f.fed_share * f.fund_eq,
        peak=peak,
        maxdd=jnp.maximum(s.maxdd, -jnp.expm1(x - peak)),
        exo_peak=exo_peak,
        exo_maxdd=jnp.maximum(s.exo_maxdd, -jnp.expm1(fund_x - exo_peak)),
        trough_step=jnp.where(new_trough, (s.t + 1).astype(dtype), s.trough_step),
        rounds_max=jnp.maximum(s.rounds_max, rounds),
        capped=s.capped + active.astype(dtype),
        t=s.t + 1,
    )
    return new, StepInfo(x=x, rounds=rounds)
