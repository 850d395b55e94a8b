"""Market, shocks and one-sector cascades against values worked out by hand from
docs/model.md sections 2, 3, 4.1, 4.5 and 5.

Expected values are computed in the test from the specification's equations (plain
Python/NumPy, SciPy's brentq for the fixed points), with parameter values read from a
:class:`kernels.params.ModelParams`; no kernel helper is used for an expected value.

Tolerances: ``RTOL = 1e-12`` for closed forms (float64 rounding, a few ulps, amplified
by at most ~100x). Fixed points: the kernel runs at ``tol = 1e-13`` (its error bound
``r rho / (1 - rho)`` below that), the hand root is bracketed to ``xtol = 1e-14``, and
the two must agree to ``FIX_ATOL = 1e-12`` in log price.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from kernels import cascade, market, shocks
from kernels.params import baseline, make_params

RTOL = 1e-12
FIX_ATOL = 1e-12
N_PATHS = 4  # every cascade call has this many paths: jitted step compiles once
N_BANKS = 8

_impact = jax.jit(market.impact, static_argnames="assets_first")
_share = jax.jit(market.liquidated_share)
_recover = jax.jit(market.recover_depth)
_vols = jax.jit(shocks.step_vols)
_step = jax.jit(cascade.step)


def _params(**kw):
    """(NumPy ModelParams for the hand calculation, float64 JAX pytree for the kernel)."""
    p = make_params({**baseline()._asdict(), **kw})
    return p, jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), p)


def _a(x):
    return jnp.asarray(np.asarray(x, dtype=float), jnp.float64)


def _depths(p):
    return np.array([p.depth_btc, p.depth_alt, p.depth_eq])


# ------------------------------------------------------------------- section 4: S(D; d)
@pytest.mark.parametrize("spread", [0.5, 0.2, 0.9])
def test_liquidated_share_ramp(spread):
    """S(D; d) = clip((D - d(1-s)) / (2 s d), 0, 1): 0 below d(1-s), 1 above d(1+s), linear
    between (spec section 4); rtol 1e-12, atol 1e-12 (a share)."""
    d = np.array([0.12, 0.25, 0.9])[:, None]
    frac = np.array([0.0, 0.5 * (1 - spread), (1 - spread) * 0.999, 1 - spread / 2, 1.0,
                     1 + spread / 3, (1 + spread) * 1.001, 3.0])
    dd = d * frac[None, :]
    got = np.asarray(_share(_a(dd), _a(d), spread))
    want = np.clip((dd - d * (1 - spread)) / (2 * spread * d), 0.0, 1.0)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=RTOL)
    assert np.all(got[:, :3] == 0) and np.all(got[:, -2:] == 1)
    np.testing.assert_allclose(got[:, 4], 0.5, rtol=RTOL)  # at the nominal threshold: half


def test_liquidated_share_step_without_dispersion():
    """With s = 0 the ramp is a step at d: 0 below, 1 above (spec section 4); exact. (At D = d
    exactly the spec's step is not defined; not tested.)"""
    d = np.array([0.12, 0.25, 0.9])[:, None]
    dd = d * np.array([0.0, 0.5, 1 - 1e-12, 1 + 1e-12, 2.0])[None, :]
    got = np.asarray(_share(_a(dd), _a(d), 0.0))
    np.testing.assert_array_equal(got, np.tile([0.0, 0.0, 0.0, 1.0, 1.0], (3, 1)))


# ------------------------------------------------------------------- section 3: impact
def _impact_spec(p, q, d, mem):
    """Spec 3 with assets on axis 0: (I, d_eff)."""
    dep = _depths(p).reshape((3,) + (1,) * (np.ndim(q) - 1))
    d_eff = np.maximum(d * np.exp(-p.kappa * np.abs(q) / dep), p.depth_floor)
    m = mem + q
    return -p.impact_y * 0.01 * np.sign(m) * np.sqrt(np.abs(m) / (dep * d_eff)), d_eff


def test_impact_square_root_law_from_rest():
    """From rest (no memory, normal depth, no evaporation) I = -Y 0.01 sqrt(q / depth): 4x the
    flow gives exactly 2x the impact, and depth_a moves asset a by 1 % (spec 3); rtol 1e-12."""
    p, jp = _params(kappa=0.0, impact_y=1.3)
    dep = _depths(p)[:, None]
    q = dep * np.array([0.01, 0.25, 1.0, 7.0])[None, :]
    i1, _ = _impact(_a(q), jnp.ones_like(_a(q)), jp, assets_first=True)
    i4, _ = _impact(_a(4 * q), jnp.ones_like(_a(q)), jp, assets_first=True)
    np.testing.assert_allclose(np.asarray(i4) / np.asarray(i1), 2.0, rtol=RTOL)
    np.testing.assert_allclose(i1, -1.3 * 0.01 * np.sqrt(q / dep), rtol=RTOL)
    np.testing.assert_allclose(np.asarray(i1)[:, 2], -0.013, rtol=RTOL)  # q = depth: 1 % x Y
    ib, _ = _impact(_a(-q), jnp.ones_like(_a(q)), jp, assets_first=True)  # buys lift the price
    np.testing.assert_allclose(ib, -np.asarray(i1), rtol=RTOL)


@pytest.mark.parametrize("kappa", [0.05, 0.0, 2.0])
def test_impact_on_remembered_flow(kappa):
    """The impact acts on memory + q, I = -Y 0.01 sign(m) sqrt(|m| / (depth d_eff)), while
    evaporation depends on this step's q only (spec 3), including memory and flow of opposite
    signs and q = 0; rtol 1e-12, atol 1e-15 (log price)."""
    p, jp = _params(kappa=kappa)
    dep = _depths(p)[:, None]
    q = dep * np.array([0.0, 0.3, 2.0, -0.5, 5.0, 1.0])[None, :]
    mem = dep * np.array([1.5, 0.0, 3.0, 2.0, -8.0, -1.0])[None, :]
    d = np.tile([1.0, 0.7, 0.4, 0.9, 0.25, 0.5], (3, 1))
    got_i, got_d = _impact(_a(q), _a(d), jp, assets_first=True, memory=_a(mem))
    want_i, want_d = _impact_spec(p, q, d, mem)
    np.testing.assert_allclose(got_d, want_d, rtol=RTOL)
    np.testing.assert_allclose(got_i, want_i, rtol=RTOL, atol=1e-15)
    assert np.all(np.asarray(got_i)[:, -1] == 0.0)  # memory + q = 0: no impact


def test_impact_split_flow_equals_flow_at_once():
    """Without evaporation a flow split into memory + this step's part moves the price as
    much as the whole flow at once (spec 3: the metaorder property); rtol 1e-12."""
    p, jp = _params(kappa=0.0)
    dep = _depths(p)[:, None]
    total = dep * np.array([0.2, 1.0, 6.0, 30.0])[None, :]
    ones = jnp.ones(total.shape, jnp.float64)
    once, _ = _impact(_a(total), ones, jp, assets_first=True)
    split, _ = _impact(_a(0.3 * total), ones, jp, assets_first=True, memory=_a(0.7 * total))
    np.testing.assert_allclose(split, once, rtol=RTOL)


def test_impact_evaporation_and_floor():
    """d_eff = max(d exp(-kappa |q| / depth), depth_floor): the book thins with the step's flow
    and never below the floor, where the impact is sqrt(1 / floor) times that at normal
    depth (spec 3); rtol 1e-12."""
    p, jp = _params(kappa=0.5, depth_floor=0.1)
    dep = _depths(p)[:, None]
    units = np.array([0.1, 1.0, 4.0, 50.0, 200.0])
    q = dep * units[None, :]
    d = np.ones_like(q)
    got_i, got_d = _impact(_a(q), _a(d), jp, assets_first=True)
    want_d = np.maximum(np.exp(-0.5 * units), 0.1)
    np.testing.assert_allclose(got_d, np.tile(want_d, (3, 1)), rtol=RTOL)
    assert np.all(np.asarray(got_d)[:, -2:] == 0.1)  # at the floor
    np.testing.assert_allclose(got_i, -0.01 * np.sqrt(units / want_d)[None, :] * np.ones((3, 1)),
                               rtol=RTOL)
    # the assets-last layout gives the same numbers
    got_t, got_dt = _impact(_a(q.T), _a(d.T), jp)
    np.testing.assert_allclose(np.asarray(got_t).T, got_i, rtol=RTOL)
    np.testing.assert_allclose(np.asarray(got_dt).T, got_d, rtol=RTOL)


def _per_step(p):
    """Spec 3: rates per 15 minutes converted to the step, tau = step_hours / 0.25:
    r = resilience^tau, g = 1 - (1 - depth_recovery)^tau."""
    tau = p.step_hours / 0.25
    return p.resilience**tau, 1.0 - (1.0 - p.depth_recovery) ** tau


@pytest.mark.parametrize(("rec", "hours"), [(0.05, 0.25), (0.0, 0.25), (1.0, 0.25), (0.05, 1.0),
                                            (0.3, 0.1), (0.05, 24.0)])
def test_recover_depth(rec, hours):
    """After a step the depth share recovers d <- d_eff + g (1 - d_eff), g = 1 - (1 -
    depth_recovery)^(step_hours / 0.25) (spec 3); rtol 1e-12."""
    p, jp = _params(depth_recovery=rec, step_hours=hours)
    g = _per_step(p)[1]
    d_eff = np.array([[0.1, 0.35, 1.0], [0.5, 0.99, 0.2], [0.1, 0.1, 0.7]])
    np.testing.assert_allclose(_recover(_a(d_eff), jp), d_eff + g * (1 - d_eff), rtol=RTOL)
    if hours == 0.25:  # the reference step: the parameter itself
        np.testing.assert_allclose(g, rec, rtol=RTOL)


# ------------------------------------------------------------------- section 2: shocks
@pytest.mark.parametrize("kw", [{}, {"step_hours": 1.0, "eq_trading_days": 250.0, "vol_alt": 1.1},
                                {"step_hours": 24.0, "vol_btc": 0.0}])
def test_step_vols(kw):
    """sigma_crypto = vol sqrt(step_hours / 8760) (24/7), sigma_eq = vol_eq sqrt(step_hours /
    (24 eq_trading_days)) (spec 2); rtol 1e-12."""
    p, jp = _params(**kw)
    h = p.step_hours
    want = [p.vol_btc * math.sqrt(h / 8760.0), p.vol_alt * math.sqrt(h / 8760.0),
            p.vol_eq * math.sqrt(h / (24.0 * p.eq_trading_days))]
    np.testing.assert_allclose(_vols(jp), want, rtol=RTOL)
    # a day of equity steps carries vol_eq^2 / eq_trading_days of variance
    np.testing.assert_allclose(float(_vols(jp)[2]) ** 2 * 24.0 / h, p.vol_eq**2 / p.eq_trading_days,
                               rtol=RTOL)


# --------------------------------------------------- sections 3, 4.1, 4.5, 5: fixed points
OFF = {"channel_defi": 0.0, "channel_treasury": 0.0, "channel_fund_margin": 0.0,
       "channel_fund_delever": 0.0, "channel_collateral": 0.0, "channel_runs": 0.0,
       "channel_bank_sales": 0.0, "fed_put": 0.0}
NUMERICS = {"tol": 1e-13, "max_rounds": 100000.0}
PERPS_BTC = {**OFF, **NUMERICS, "perp_long_alt": 0.0, "perp_short_alt": 0.0,
             "depth_btc": 5e8, "kappa": 0.5, "perm_share": 0.3}
"""Perps only, btc only; thinner, faster-evaporating btc book than baseline so that a
tipping point exists (f_c ~ -0.04712); perm_share 0.3 so that theta and 1 - theta differ."""
F_TIP = -0.0471200639  # tipping exogenous move of PERPS_BTC (bisection on the hand model)


def _g(u, a, k):
    """Spec 4.1 survivor CDF, vectorised (the min/max only keep unused branches finite)."""
    z = k * u
    den = 1.0 - np.exp(-a)
    zl, zh = np.minimum(z, a), np.maximum(z, a)
    low = 2.0 * np.exp(-a) * np.sinh(zl / 2.0) ** 2 / den
    high = 1.0 - (np.exp(a - zh) - np.exp(-a - zh)) / (2.0 * den)
    return np.where(z <= a, low, high)


def _perp_share(p, u, side):
    """Lambda(u) = sum_k w_k G(u; mu_k) for btc, u the adverse log move (spec 4.1)."""
    k = math.sqrt(2.0 / p.perp_holding_days) / (p.vol_btc / math.sqrt(365.0))
    u = np.asarray(u, dtype=float)[..., None]
    out = 0.0
    w = p.perp_long_weights if side == "long" else p.perp_short_weights
    for l_k, w_k in zip(p.perp_leverage_buckets, w, strict=True):
        lev = min(l_k, p.perp_cap_btc)
        mu = (-math.log(1 - 1 / lev + p.maint_margin) if side == "long"
              else math.log(1 + 1 / lev - p.maint_margin))
        out = out + w_k * _g(u, k * mu, k)
    return out[..., 0]


def _perp_flow(p, x):
    """Net btc forced sale at log price x from rest: longs sold at adverse move -x, shorts
    bought at +x, at the liquidation price e^x (spec 4.1)."""
    x = np.asarray(x, dtype=float)
    scale = p.leverage * p.channel_perps
    long_q = scale * p.perp_long_btc * _perp_share(p, np.maximum(-x, 0), "long")
    short_q = scale * p.perp_short_btc * _perp_share(p, np.maximum(x, 0), "short")
    return (long_q - short_q) * np.exp(x)


def _collateral_flow(p, x):
    """Bank collateral sold into btc from rest (bank_crypto_btc_share = 1): sum_b X_b Gamma(D)
    e^x with Gamma = S(D; margin_call), D = 1 - e^min(x, 0) (spec 4.5)."""
    x = np.asarray(x, dtype=float)
    k = p.bank_capital * np.asarray(p.bank_weights)
    extra = np.asarray(p.bank_crypto_max) - p.bank_crypto_floor
    expo = k * (min(p.leverage * p.bank_crypto_floor, p.bank_crypto_cap)
                + p.integration * p.leverage * extra)
    d = 1.0 - np.exp(np.minimum(x, 0.0))
    mc, s = p.bank_margin_call, p.dispersion
    gamma = np.clip((d - mc * (1 - s)) / (2 * s * mc), 0.0, 1.0)
    return p.channel_collateral * expo.sum() * gamma * np.exp(x)


def _map(p, flow, f):
    """x -> F(x) = f + I(q(x)) for btc from rest: memory 0, depth share 1 (spec 3)."""
    def fmap(x):
        q = flow(p, x)
        d_eff = np.maximum(np.exp(-p.kappa * np.abs(q) / p.depth_btc), p.depth_floor)
        return f - p.impact_y * 0.01 * np.sign(q) * np.sqrt(np.abs(q) / (p.depth_btc * d_eff))
    return fmap


def _least_fixed_point(p, flow, f, span=0.8, h=1e-5):
    """The fixed point nearest f in the direction the forced flow pushes (the iterates from
    f reach it first; spec 5): scan x away from f until F(x) - x changes sign, then brentq."""
    fmap = _map(p, flow, f)
    g0 = fmap(f) - f
    if g0 == 0:
        return f
    direction = np.sign(g0)
    xs = f + direction * np.arange(0.0, span, h)
    g = fmap(xs) - xs
    i = int(np.argmax(np.sign(g) != direction))
    assert np.sign(g[i]) != direction, "no fixed point within the scan"
    return brentq(lambda x: float(fmap(x) - x), xs[i - 1], xs[i], xtol=1e-14, rtol=1e-15,
                  maxiter=500)


def _one_step(jp, f_btc):
    """One kernel step from the open with exogenous btc log returns f (alt, eq unmoved)."""
    ret = np.zeros((3, N_PATHS))
    ret[0] = f_btc
    state = cascade.init_state(N_PATHS, N_BANKS, jnp.float64)
    return _step(state, _a(ret), jp)


def _slope(fmap, x, eps=1e-7):
    return float((fmap(x + eps) - fmap(x - eps)) / (2 * eps))


def test_fixed_point_perp_longs():
    """One step from rest, perps only in btc: the kernel's price solves x = f + I(q(x)) with
    q = N^L Lambda^L(-x) e^x on evaporating depth (spec 3, 4.1, 5), for a mild move, moves
    just before and just past the tipping point, and a deep move; atol 1e-12 (log price)."""
    p, jp = _params(**PERPS_BTC)
    fs = np.array([-0.02, F_TIP + 2e-5, F_TIP - 2e-5, -0.1])
    new, info = _one_step(jp, fs)
    want = np.array([_least_fixed_point(p, _perp_flow, f) for f in fs])
    np.testing.assert_allclose(np.asarray(info.x)[0], want, rtol=0, atol=FIX_ATOL)
    np.testing.assert_array_equal(np.asarray(info.x)[1:], 0.0)  # alt and eq untouched
    # the cases are what they claim: near-critical before the tip, a jump past it
    assert _slope(_map(p, _perp_flow, fs[1]), want[1]) > 0.9
    assert want[1] - want[2] > 0.015
    # liquidated longs: N^L Lambda e^x dollars (spec 4.1), rtol 1e-9 (dq/dx / q ~ 50 x 1e-12)
    q = _perp_flow(p, want)
    np.testing.assert_allclose(new.liq_long, q, rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(new.liq_short), 0.0)
    # memory after the step: M^P = theta q, M^T = (1 - theta) q (spec 3)
    np.testing.assert_allclose(np.asarray(new.mem_perm)[0], p.perm_share * q, rtol=1e-9)
    np.testing.assert_allclose(np.asarray(new.mem_trans)[0], (1 - p.perm_share) * q, rtol=1e-9)


def test_fixed_point_perp_shorts():
    """A rise liquidates shorts, whose forced buys lift btc further: x = f + I(q(x)) with q =
    -N^S Lambda^S(x) e^x < 0 (spec 3, 4.1); atol 1e-12 (log price)."""
    p, jp = _params(**PERPS_BTC)
    fs = np.array([0.01, 0.04, 0.08, 0.15])
    new, info = _one_step(jp, fs)
    want = np.array([_least_fixed_point(p, _perp_flow, f) for f in fs])
    assert np.all(want > fs)
    np.testing.assert_allclose(np.asarray(info.x)[0], want, rtol=0, atol=FIX_ATOL)
    np.testing.assert_allclose(new.liq_short, -_perp_flow(p, want), rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(new.liq_long), 0.0)


COLLATERAL_BTC = {**OFF, **NUMERICS, "channel_perps": 0.0, "channel_collateral": 1.0,
                  "integration": 1.0, "bank_crypto_btc_share": 1.0, "bank_capital": 1e10,
                  "kappa": 0.3}
"""Bank collateral liquidation only, all of it btc, runs and bank equity sales off."""


def test_fixed_point_bank_collateral():
    """One step from rest with only bank collateral liquidation (integration 1, all btc): x =
    f + I(sum_b X_b S(1 - e^x; margin_call) e^x) (spec 3, 4.5, 5); below the dispersed margin
    call the price is exactly exogenous; atol 1e-12 (log price)."""
    p, jp = _params(**COLLATERAL_BTC)
    fs = np.array([-0.05, -0.08, -0.15, -0.25])
    new, info = _one_step(jp, fs)
    want = np.array([_least_fixed_point(p, _collateral_flow, f) for f in fs])
    np.testing.assert_allclose(np.asarray(info.x)[0], want, rtol=0, atol=FIX_ATOL)
    assert np.asarray(info.x)[0, 0] == fs[0]  # D < margin_call (1 - s): nothing sold
    assert want[-1] < -0.2 and np.all(np.asarray(info.x)[1:] == 0.0)
    np.testing.assert_allclose(new.col_sold, _collateral_flow(p, want), rtol=1e-9, atol=1e-3)


@pytest.mark.parametrize(("kappa", "hours"), [(0.0, 0.25), (0.5, 0.25), (0.5, 1.0)])
def test_rebound_after_flows_stop(kappa, hours):
    """After a one-step cascade, steps with no new shock and no new flow move the price to
    f - Y 0.01 sqrt((theta + r^(n-1) (1 - theta)) q / (depth d_n)), the transient memory
    decaying by r = resilience^tau and depth recovering by g per step, tau = step_hours / 0.25
    (spec 3; with kappa = 0 the rebound tends to sqrt(theta) of the peak impact); rtol 1e-9 (q
    inherits the fixed point's 1e-12 error x dq/dx / q)."""
    p, jp = _params(**{**PERPS_BTC, "kappa": kappa, "step_hours": hours})
    fs = np.array([-0.02, -0.04, -0.06, -0.1])
    state = cascade.init_state(N_PATHS, N_BANKS, jnp.float64)
    ret = np.zeros((3, N_PATHS))
    ret[0] = fs
    state, info = _step(state, _a(ret), jp)
    x1 = np.array([_least_fixed_point(p, _perp_flow, f) for f in fs])
    np.testing.assert_allclose(np.asarray(info.x)[0], x1, rtol=0, atol=FIX_ATOL)
    q1 = _perp_flow(p, x1)
    liq1 = np.asarray(state.liq_long)
    d = np.maximum(np.exp(-p.kappa * q1 / p.depth_btc), p.depth_floor)  # d_eff of step 1
    theta, (r, g) = p.perm_share, _per_step(p)
    for n in range(2, 7):
        state, info = _step(state, _a(np.zeros((3, N_PATHS))), jp)
        d = d + g * (1 - d)  # recovered; no flow, so no evaporation this step
        mem = (theta + r ** (n - 1) * (1 - theta)) * q1
        want = fs - p.impact_y * 0.01 * np.sqrt(mem / (p.depth_btc * d))
        np.testing.assert_allclose(np.asarray(info.x)[0], want, rtol=1e-9)
        # a liquidated position stays closed: nothing more is sold but the O(tol) gap between
        # the last iterate and the step's price (the low is F(x_eval)), hence rtol 1e-10
        np.testing.assert_allclose(state.liq_long, liq1, rtol=1e-10)
    if kappa == 0.0:
        peak = x1 - fs
        ratio = (np.asarray(info.x)[0] - fs) / peak
        np.testing.assert_allclose(ratio, np.sqrt(theta + r**5 * (1 - theta)), rtol=1e-9)
