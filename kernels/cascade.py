"""One step of the day: exogenous move, then the within-step cascade to a fixed point.

The cascade (docs/model.md section 5) iterates prices -> cumulative forced flows of
all sectors -> impact on evaporating depth -> prices, ``x <- F(x)``, with
``lax.while_loop``. Flows are monotone in the drawdowns, so from the exogenous price
the iterates fall monotonically to the least fixed point (the smallest crash
consistent with the flows); near a tipping point the contraction is slow, and a
safeguarded extrapolation (:func:`solve`) skips ahead. A path stops when its
residual ``|F(x) - x|`` and the error bound ``|F(x) - x| rho / (1 - rho)`` (``rho`` the
observed contraction) are both below ``tol``, or at ``max_rounds`` (counted as a capped
step, never hidden). Each
path stops on its own, so its numbers never depend on the other paths or cells it is
computed with (blocks are bit-identical to single cells).
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

OMEGA_START, OMEGA_MAX, MAX_JUMP = 16.0, 1024.0, 0.1
"""Over-relaxation cap of an accelerated round: 16 plain steps at first, doubled after
every accepted jump (a slow drift past the ghost of a vanished fixed point needs
hundreds), quartered after a rejected one; and never more than ``MAX_JUMP`` (0.1) log
units beyond the plain step, so a jump cannot leave the range where prices are finite."""


def solve(p: ModelParams, s: DayState, base: jax.Array, memory: jax.Array):
    """Iterate ``x <- F(x) = base + impact(memory + flows(x))`` to the least fixed point.

    Plain rounds are Picard steps. After two plain rounds, if an asset's residual shrinks
    slowly (by a ratio ``rho_a`` in (0.5, 1): near-critical convergence), one round tries
    the over-relaxed point ``x_a + omega_a (F(x)_a - x_a)`` with ``omega_a = (1 + 1 / (1 -
    rho_a)) / 2``: halfway from the plain step to Aitken's estimate of the limit (exact for
    a linear map), so an estimate up to twice the true distance still lands short of the
    fixed point (capped, see :data:`OMEGA_START`; 1 for the other assets). The try is
    kept only if no residual changed sign there (a sign change means it jumped past the
    fixed point) and the residual shrank; otherwise the plain step is taken. Convergence
    is checked on plain rounds only: residual ``< tol`` and error bound ``residual rho /
    (1 - rho) < tol``, or a residual at the dtype's noise floor (16 machine epsilons:
    float32 cannot resolve a slowly contracting step better).

    Returns ``(x_eval, fed_floor, active, rounds)``: the last accepted point (the step's
    flows are those at ``x_eval`` and its price ``F(x_eval)``), the Fed floor used there,
    the paths still not converged at ``max_rounds``, and the rounds (evaluations) used.
    """
    n = base.shape[-1]
    dtype = base.dtype
    tol = tolerance(p, dtype)
    noise = 16.0 * jnp.finfo(dtype).eps

    def cond(c):
        return (c["k"] < p.max_rounds) & jnp.any(c["active"])

    def body(c):
        z, fl_z, ext, a = c["z"], c["fl_z"], c["ext"], c["active"]
        q, f = forced_flows(p, s, z, fl_z)
        imp, _ = market.impact(q, s.depth, p, assets_first=True, memory=memory)
        g = jnp.clip(base + imp, X_MIN, X_MAX) - z
        ng = jnp.max(jnp.abs(g), axis=0)
        flip = (g * c["g_acc"] < 0) & (jnp.abs(g) > tol)
        # a jump is kept only if no residual changed sign and the residual shrank
        accept = ~(ext & (jnp.any(flip, axis=0) | (ng >= c["n_acc"])))
        rho = jnp.where(c["n_acc"] > 0, ng / jnp.where(c["n_acc"] > 0, c["n_acc"], 1.0), 0.0)
        rho = jnp.where(jnp.isinf(c["n_acc"]), 0.5, rho)  # first round: assume the sqrt rate
        bound = jnp.where(rho < 1.0, ng * rho / jnp.maximum(1.0 - rho, 1e-30), jnp.inf)
        plain = accept & ~ext
        # at the dtype's noise floor the residual cannot shrink further: accept it there
        done = accept & ((ng == 0) | (plain & (ng < tol) & ((bound < tol) | (ng < noise))))
        count = jnp.where(plain, c["count"] + 1, 0)
        # per-asset contraction of the last plain round (assets converge at their own rates)
        g_prev = c["g_acc"]
        rho_a = jnp.where(g * g_prev > 0, g / jnp.where(g_prev != 0, g_prev, 1.0), 0.0)
        slow = (rho_a > 0.5) & (rho_a < 1.0)
        try_ext = plain & ~done & (count >= 2) & jnp.any(slow, axis=0)
        cap = jnp.where(ext, jnp.where(accept, jnp.minimum(2.0 * c["cap"], OMEGA_MAX),
                                       jnp.maximum(0.25 * c["cap"], 2.0)), c["cap"])
        # halfway from the plain step to Aitken's estimate of the limit: an estimate up to
        # twice the true distance still lands short of the fixed point
        aitken = 0.5 * (1.0 + 1.0 / jnp.maximum(1.0 - rho_a, 1e-30))
        omega = jnp.where(slow & try_ext, jnp.minimum(aitken, cap), 1.0)
        # an accelerated move never exceeds the plain step by more than MAX_JUMP log units
        jump = jnp.clip(omega * g, g - MAX_JUMP, g + MAX_JUMP)
        z_next = jnp.where(accept, z + jump, c["x_acc"] + c["g_acc"])
        upd = a & accept
        sel = lambda new, old, m=upd: jnp.where(m, new, old)  # noqa: E731
        return {
            "k": c["k"] + 1,
            "z": jnp.where(a, z_next, z),
            "fl_z": jnp.where(a, jnp.where(accept, f.fed_share, c["fl_acc"]), fl_z),
            "ext": jnp.where(a, try_ext, ext),
            "x_acc": sel(z, c["x_acc"]),
            "g_acc": sel(g, c["g_acc"]),
            "fl_acc": sel(f.fed_share, c["fl_acc"]),
            "fl_used": sel(fl_z, c["fl_used"]),
            "n_acc": sel(ng, c["n_acc"]),
            "count": jnp.where(a, count, c["count"]),
            "cap": jnp.where(a, cap, c["cap"]),
            "active": a & ~done,
            "rounds": jnp.where(a, c["rounds"] + 1, c["rounds"]),
        }

    zero = jnp.zeros((n,), dtype)
    start = jnp.clip(base + market.impact(jnp.zeros_like(base), s.depth, p, assets_first=True,
                                          memory=memory)[0], X_MIN, X_MAX)
    init = {
        "k": jnp.zeros((), dtype), "z": start, "fl_z": zero, "ext": jnp.zeros((n,), bool),
        "x_acc": start, "g_acc": jnp.zeros_like(start), "fl_acc": zero, "fl_used": zero,
        "n_acc": jnp.full((n,), jnp.inf, dtype), "count": zero,
        "cap": jnp.full((n,), OMEGA_START, dtype),
        "active": jnp.ones((n,), bool), "rounds": zero,
    }
    c = lax.while_loop(cond, body, init)
    return c["x_acc"], c["fl_used"], c["active"], c["rounds"]


def step(state: DayState, ret: jax.Array, p: ModelParams) -> tuple[DayState, StepInfo]:
    """Advance the day by one step given this step's exogenous log returns ``ret (3, n)``."""
    s = state
    dtype = ret.dtype
    fund_x = s.fund + ret
    r = market.per_step(p)[0]
    memory = s.mem_perm + r * s.mem_trans
    x_eval, floor_used, active, rounds = solve(p, s, fund_x, memory)
    q, f = forced_flows(p, s, x_eval, floor_used)
    imp, d_eff = market.impact(q, s.depth, p, assets_first=True, memory=memory)
    x = jnp.clip(fund_x + imp, X_MIN, X_MAX)
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
