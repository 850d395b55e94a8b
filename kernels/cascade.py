"""One step of the day: exogenous move, then the within-step cascade to a fixed point.

The cascade (DESIGN.md section 3.5) iterates prices -> cumulative forced flows
of all sectors -> impact on evaporating depth -> prices with ``lax.while_loop``
until the largest log-price change is below ``tol`` or ``max_rounds`` is hit.
Each path stops updating as soon as it has converged, so a path's numbers never
depend on the other paths or cells it is computed with (blocks are bit-identical
to single cells). Rounds and non-converged steps are counted, never hidden.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from . import market
from .params import ModelParams
from .sectors import banks, defi, fed, funds, perps, treasury


class DayState(NamedTuple):
    """Per-path state carried through the day's ``lax.scan``.

    Paths are the *last* axis of every array (``(3, n)``: assets first), so the
    cascade's elementwise work runs over contiguous vectors of paths.
    """

    fund: jax.Array  # (3, n) exogenous log price
    perm: jax.Array  # (3, n) permanent impact (log)
    trans: jax.Array  # (3, n) transient impact (log)
    depth: jax.Array  # (3, n) depth as share of normal
    dd: jax.Array  # (3, n) running drawdown from the start (worst mark)
    rise: jax.Array  # (2, n) running rise from the start, crypto
    cum_long: jax.Array  # (2, n) $ perp longs liquidated
    cum_short: jax.Array  # (2, n) $ perp shorts liquidated
    cum_defi: jax.Array  # (2, n) $ DeFi collateral sold
    cum_treasury: jax.Array  # (n,) $ btc sold by treasuries
    cum_fund: jax.Array  # (3, n) $ sold by funds
    cum_bank: jax.Array  # (n,) $ equities sold by banks
    fed_on: jax.Array  # (n,) 1.0 once the Fed put has fired
    fed_bought: jax.Array  # (n,) $ equity flow absorbed by the Fed
    failed: jax.Array  # (B, n) bank failed
    bank_loss: jax.Array  # (n,) peak loss / capital
    bank_crypto_loss: jax.Array  # (n,) peak crypto loss / capital
    peak: jax.Array  # (3, n) running peak of log price
    maxdd: jax.Array  # (3, n) peak-to-trough drawdown so far
    exo_peak: jax.Array  # (3, n)
    exo_maxdd: jax.Array  # (3, n)
    trough: jax.Array  # (n,) lowest btc log price so far
    trough_step: jax.Array  # (n,) steps to the btc trough
    rounds_max: jax.Array  # (n,) most cascade rounds in a step
    nonconv: jax.Array  # (n,) non-converged steps
    t: jax.Array  # () step index


class StepInfo(NamedTuple):
    x: jax.Array  # (3, n) log prices at the end of the step
    rounds: jax.Array  # (n,) cascade rounds used


class Flows(NamedTuple):
    long: jax.Array  # (2, n)
    short: jax.Array  # (2, n)
    defi: jax.Array  # (2, n)
    treasury: jax.Array  # (n,)
    fund: jax.Array  # (3, n)
    bank: jax.Array  # (n,)
    eq_gross: jax.Array  # (n,)
    fed_share: jax.Array  # (n,) share of equity flow the Fed absorbs


def init_state(n_paths: int, n_banks: int, dtype) -> DayState:
    """The state at the start of the day (all prices at log 0, normal depth)."""
    z3 = jnp.zeros((3, n_paths), dtype)
    z2 = jnp.zeros((2, n_paths), dtype)
    z1 = jnp.zeros((n_paths,), dtype)
    return DayState(
        fund=z3, perm=z3, trans=z3, depth=jnp.ones((3, n_paths), dtype), dd=z3, rise=z2,
        cum_long=z2, cum_short=z2, cum_defi=z2, cum_treasury=z1, cum_fund=z3, cum_bank=z1,
        fed_on=z1, fed_bought=z1, failed=jnp.zeros((n_banks, n_paths), bool), bank_loss=z1,
        bank_crypto_loss=z1, peak=z3, maxdd=z3, exo_peak=z3, exo_maxdd=z3, trough=z1,
        trough_step=z1, rounds_max=z1, nonconv=z1, t=jnp.zeros((), jnp.int32),
    )


def forced_flows(p: ModelParams, s: DayState, x: jax.Array,
                 share_floor: jax.Array) -> tuple[jax.Array, Flows]:
    """Net forced sales per asset ``(3, n)`` ($, sell > 0) at trial prices ``x (3, n)``.

    ``share_floor`` is the Fed's share reached in earlier rounds of this step: the
    Fed never withdraws within a step, which keeps the cascade from oscillating.
    """
    ex = jnp.exp(x)
    dd = jnp.maximum(s.dd, 1.0 - ex)
    rise = jnp.maximum(s.rise, ex[:2] - 1.0)
    long_t, short_t = perps.targets(p, dd, rise)
    fed_share = jnp.maximum(share_floor, fed.share(p, dd[2], s.fed_on))
    f = Flows(
        long=jnp.maximum(long_t - s.cum_long, 0.0),
        short=jnp.maximum(short_t - s.cum_short, 0.0),
        defi=jnp.maximum(defi.target(p, dd) - s.cum_defi, 0.0),
        treasury=jnp.maximum(treasury.target(p, dd) - s.cum_treasury, 0.0),
        fund=jnp.maximum(funds.target(p, dd) - s.cum_fund, 0.0),
        bank=jnp.maximum(banks.target(p, dd, fed_share) - s.cum_bank, 0.0),
        eq_gross=jnp.zeros_like(s.cum_bank),
        fed_share=fed_share,
    )
    f = f._replace(eq_gross=f.fund[2] + f.bank)
    crypto = f.long - f.short + f.defi + f.fund[:2]
    eq_net, _ = fed.net_equity_flow(f.eq_gross, f.fed_share)
    return jnp.stack([crypto[0] + f.treasury, crypto[1], eq_net], axis=0), f


def tolerance(p: ModelParams, dtype) -> jax.Array:
    """Fixed-point tolerance, floored at 8 machine epsilons of the working dtype."""
    return jnp.maximum(p.tol, 8.0 * jnp.finfo(dtype).eps)


def step(state: DayState, ret: jax.Array, p: ModelParams) -> tuple[DayState, StepInfo]:
    """Advance the day by one step given this step's exogenous log returns ``ret (3, n)``."""
    s = state
    n = ret.shape[-1]
    dtype = ret.dtype
    fund_x = s.fund + ret
    base = fund_x + s.perm + p.resilience * s.trans
    tol = tolerance(p, dtype)

    def cond(c):
        k, _, _, _, _, active, _ = c
        return (k < p.max_rounds) & jnp.any(active)

    def body(c):
        k, x, imp, q, flows, active, rounds = c
        q_new, flows_new = forced_flows(p, s, x, flows.fed_share)
        imp_new, _ = market.impact(q_new, s.depth, p, assets_first=True)
        x_new = base + imp_new
        diff = jnp.max(jnp.abs(x_new - x), axis=0)
        a = active  # (n,): broadcasts over the leading axes of (k, n) arrays
        flows = jax.tree.map(lambda old, new: jnp.where(active, new, old), flows, flows_new)
        return (k + 1, jnp.where(a, x_new, x), jnp.where(a, imp_new, imp),
                jnp.where(a, q_new, q), flows, active & (diff >= tol),
                jnp.where(active, rounds + 1, rounds))

    zero3 = jnp.zeros_like(base)
    zero_flows = Flows(*(jnp.zeros_like(v) for v in (
        s.cum_long, s.cum_short, s.cum_defi, s.cum_treasury, s.cum_fund, s.cum_bank,
        s.cum_bank, s.cum_bank)))
    init = (jnp.zeros((), dtype), base, zero3, zero3, zero_flows, jnp.ones((n,), bool),
            jnp.zeros((n,), dtype))
    _, x, imp, q, f, active, rounds = lax.while_loop(cond, body, init)
    _, d_eff = market.impact(q, s.depth, p, assets_first=True)

    dd = jnp.maximum(s.dd, 1.0 - jnp.exp(x))
    total_loss, crypto_loss = banks.losses(p, dd)
    cap_total = jnp.sum(banks.capital(p))
    peak = jnp.maximum(s.peak, x)
    exo_peak = jnp.maximum(s.exo_peak, fund_x)
    new_trough = x[0] < s.trough
    new = DayState(
        fund=fund_x,
        perm=s.perm + p.perm_share * imp,
        trans=p.resilience * s.trans + (1.0 - p.perm_share) * imp,
        depth=market.recover_depth(d_eff, p),
        dd=dd,
        rise=jnp.maximum(s.rise, jnp.exp(x[:2]) - 1.0),
        cum_long=s.cum_long + f.long,
        cum_short=s.cum_short + f.short,
        cum_defi=s.cum_defi + f.defi,
        cum_treasury=s.cum_treasury + f.treasury,
        cum_fund=s.cum_fund + f.fund,
        cum_bank=s.cum_bank + f.bank,
        fed_on=fed.armed(p, dd[2], s.fed_on),
        fed_bought=s.fed_bought + fed.net_equity_flow(f.eq_gross, f.fed_share)[1],
        failed=s.failed | banks.failed(p, total_loss),
        bank_loss=jnp.maximum(s.bank_loss, total_loss.sum(0) / cap_total),
        bank_crypto_loss=jnp.maximum(s.bank_crypto_loss, crypto_loss.sum(0) / cap_total),
        peak=peak,
        maxdd=jnp.maximum(s.maxdd, 1.0 - jnp.exp(x - peak)),
        exo_peak=exo_peak,
        exo_maxdd=jnp.maximum(s.exo_maxdd, 1.0 - jnp.exp(fund_x - exo_peak)),
        trough=jnp.where(new_trough, x[0], s.trough),
        trough_step=jnp.where(new_trough, (s.t + 1).astype(dtype), s.trough_step),
        rounds_max=jnp.maximum(s.rounds_max, rounds),
        nonconv=s.nonconv + active.astype(dtype),
        t=s.t + 1,
    )
    return new, StepInfo(x=x, rounds=rounds)
