"""Sector kernels against values worked out by hand from docs/model.md section 4.

Every expected value here is computed in the test itself, in plain Python/NumPy (or
mpmath for the survivor CDF), from the equations of the specification, with parameter
values read from a :class:`kernels.params.ModelParams`; no kernel helper is used for an
expected value. Kernel inputs are float64 arrays in the kernel's paths-last layout.

Tolerance: ``RTOL = 1e-12`` relative (float64 has ~1e-16; the kernel may evaluate the
same formula in a different but equivalent order, e.g. ``log1p`` for ``log(1 + x)``,
which costs a few ulps, amplified at most ~100x by cancellations such as ``1 - 1/l +
mm``), with an absolute floor of ``RTOL`` times the quantity's scale for values that
are exactly 0 by the spec.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import mpmath
import numpy as np
import pytest

from kernels.params import baseline, make_params
from kernels.sectors import banks, defi, fed, funds, perps, treasury

RTOL = 1e-12

# the kernel functions, jitted: one compile per input shape instead of one per operation
K = SimpleNamespace(
    survivor_cdf=jax.jit(perps.survivor_cdf), nominal_distances=jax.jit(perps.nominal_distances),
    liquidated_shares=jax.jit(perps.liquidated_shares), notionals=jax.jit(perps.notionals),
    defi=jax.jit(defi.target), treasury=jax.jit(treasury.target), funds=jax.jit(funds.target),
    exposure=jax.jit(banks.exposure), marks=jax.jit(banks.marks), failed=jax.jit(banks.failed),
    fed_share=jax.jit(fed.share), fed_armed=jax.jit(fed.armed),
)


def _params(**kw):
    """(NumPy ModelParams for the hand calculation, float64 JAX pytree for the kernel)."""
    p = make_params({**baseline()._asdict(), **kw})
    return p, jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), p)


def _dd(rows):
    """Drawdown rows ``[(btc, alt, eq), ...]`` (one per path) -> kernel layout ``(3, n)``."""
    return jnp.asarray(np.array(rows, dtype=float).T, jnp.float64)


def _s(d_val, d, s):
    """Spec section 4: S(D; d) = clip((D - d(1-s)) / (2 s d), 0, 1), a step at d if s = 0."""
    if s == 0:
        return 1.0 if d_val >= d else 0.0
    return min(max((d_val - d * (1.0 - s)) / (2.0 * s * d), 0.0), 1.0)


def _close(got, want, scale=None, rtol=RTOL):
    want = np.asarray(want, dtype=float)
    scale = float(np.max(np.abs(want))) if scale is None else scale
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=rtol * max(scale, 1e-300))


# ------------------------------------------------------------------- 4.1 perpetual futures
def _g_spec(u, a, k):
    """Spec 4.1 survivor CDF G(u) with z = k u, evaluated in 40-digit arithmetic."""
    with mpmath.workdps(40):
        u, a, k = mpmath.mpf(u), mpmath.mpf(a), mpmath.mpf(k)
        z = k * u
        den = 1 - mpmath.exp(-a)
        if z <= a:
            return float(2 * mpmath.exp(-a) * mpmath.sinh(z / 2) ** 2 / den)
        return float(1 - (mpmath.exp(a - z) - mpmath.exp(-a - z)) / (2 * den))


def _cdf(u, a, k):
    return np.asarray(K.survivor_cdf(jnp.asarray(u, jnp.float64), jnp.asarray(a, jnp.float64),
                                         jnp.asarray(k, jnp.float64)))


A_K = [(0.05, 2.0), (0.7, 14.2), (3.0, 14.2), (12.0, 5.0), (40.0, 30.0)]


@pytest.mark.parametrize(("a", "k"), A_K)
def test_survivor_cdf_closed_form(a, k):
    """G(u) equals the spec 4.1 closed form on both branches (z < a and z > a); rtol 1e-12
    (expected in 40 digits, so only the kernel's float64 rounding counts)."""
    mu = a / k
    u = np.array([1e-7, 0.01, 0.3, 0.9, 0.999, 1.001, 1.5, 3.0, 8.0]) * mu
    want = [_g_spec(v, a, k) for v in u]
    _close(_cdf(u, a, k), want, scale=0.0)


@pytest.mark.parametrize(("a", "k"), A_K)
def test_survivor_cdf_landmarks(a, k):
    """G(0) = 0 exactly, G(mu) = (1 - e^-a)/2 (rtol 1e-12), G -> 1 (within 1e-15 at z = a + 40),
    continuous at z = a (both sides within 1e-8 relative of (1 - e^-a)/2: slope x 1e-10 mu)."""
    mu = a / k
    half = (1.0 - math.exp(-a)) / 2.0
    assert _cdf(0.0, a, k) == 0.0
    _close(_cdf(mu, a, k), half)
    assert abs(_cdf(mu + 40.0 / k, a, k) - 1.0) < 1e-15
    below, above = _cdf(mu * (1 - 1e-10), a, k), _cdf(mu * (1 + 1e-10), a, k)
    assert below <= half * (1 + 1e-15) <= above * (1 + 1e-15)
    _close([below, above], [half, half], rtol=1e-8)


@pytest.mark.parametrize(("a", "k"), A_K)
def test_survivor_cdf_grows_like_u_squared(a, k):
    """Near 0, G(u) ~ e^-a z^2 / (2 (1 - e^-a)) (spec: grows like u^2): at z = 1e-5 the O(z^2)
    correction is 1e-11, so rtol 1e-9; doubling u multiplies G by 4 (rtol 1e-9)."""
    u = 1e-5 / k
    coef = math.exp(-a) * k * k / (2.0 * (1.0 - math.exp(-a)))
    g1, g2 = _cdf(u, a, k), _cdf(2 * u, a, k)
    np.testing.assert_allclose(g1 / u**2, coef, rtol=1e-9)
    np.testing.assert_allclose(g2 / g1, 4.0, rtol=1e-9)


@pytest.mark.parametrize(("a", "k"), A_K)
def test_survivor_cdf_monotone(a, k):
    """G never decreases in u (across the branch point) and stays in [0, 1]; exact comparison."""
    u = np.linspace(0.0, 4.0 * a / k, 4001)
    g = _cdf(u, a, k)
    assert np.all(np.diff(g) >= 0.0)
    assert g[0] == 0.0 and np.all(g <= 1.0)


def _mu_spec(p):
    """Spec 4.1: bucket leverage capped at the venue cap; mu^L = -log(1 - 1/l + mm),
    mu^S = log(1 + 1/l - mm); rows btc, alt."""
    long_mu, short_mu = [], []
    for cap in (p.perp_cap_btc, p.perp_cap_alt):
        lev = [min(float(x), cap) for x in p.perp_leverage_buckets]
        long_mu.append([-math.log(1.0 - 1.0 / x + p.maint_margin) for x in lev])
        short_mu.append([math.log(1.0 + 1.0 / x - p.maint_margin) for x in lev])
    return np.array(long_mu), np.array(short_mu)


@pytest.mark.parametrize("kw", [{}, {"perp_cap_alt": 10.0, "maint_margin": 0.002},
                                {"perp_cap_btc": 4.0, "maint_margin": 0.0}])
def test_nominal_distances(kw):
    """Log distances to liquidation per bucket, venue cap applied (spec 4.1); rtol 1e-12
    (the kernel may use log1p: 1 - 1/l + mm loses <= 1e-16 / 0.005 = 2e-14 relative)."""
    p, jp = _params(**kw)
    long_mu, short_mu = K.nominal_distances(jp)
    want_l, want_s = _mu_spec(p)
    _close(long_mu, want_l, scale=0.0)
    _close(short_mu, want_s, scale=0.0)


def _k_spec(p, vol):
    """k = sqrt(2h) / sigma_d with h = 1 / perp_holding_days, sigma_d = vol / sqrt(365)."""
    return math.sqrt(2.0 / p.perp_holding_days) / (vol / math.sqrt(365.0))


@pytest.mark.parametrize("kw", [{}, {"perp_holding_days": 3.0, "vol_alt": 1.2,
                                     "perp_cap_alt": 20.0}])
def test_liquidated_shares(kw):
    """Lambda^L_a = sum_k w^L_k G(-L_a; mu^L_k), Lambda^S_a = sum_k w^S_k G(U_a; mu^S_k) (spec
    4.1, no prior) for several adverse moves per asset; rtol 1e-12, atol 1e-12 (a share)."""
    p, jp = _params(**kw)
    down = np.array([[0.0, 0.004, 0.03, 0.13, 0.4, 2.5], [0.0, 0.01, 0.08, 0.25, 0.6, 1.0]])
    up = np.array([[0.0, 0.02, 0.05, 0.2, 0.7, 3.0], [0.0, 0.003, 0.09, 0.3, 0.5, 1.5]])
    long_s, short_s = K.liquidated_shares(jp, jnp.asarray(down), jnp.asarray(up))
    long_mu, short_mu = _mu_spec(p)
    want_l, want_s = np.zeros_like(down), np.zeros_like(up)
    for i, vol in enumerate((p.vol_btc, p.vol_alt)):
        k = _k_spec(p, vol)
        for j in range(down.shape[1]):
            want_l[i, j] = sum(w * _g_spec(down[i, j], k * m, k)
                               for w, m in zip(p.perp_long_weights, long_mu[i], strict=True))
            want_s[i, j] = sum(w * _g_spec(up[i, j], k * m, k)
                               for w, m in zip(p.perp_short_weights, short_mu[i], strict=True))
    _close(long_s, want_l, scale=1.0)
    _close(short_s, want_s, scale=1.0)
    assert np.all(np.asarray(long_s)[:, 0] == 0) and np.all(np.asarray(short_s)[:, 0] == 0)


@pytest.mark.parametrize(("lev", "chan"), [(1.0, 1.0), (2.5, 1.0), (2.5, 0.5), (0.0, 1.0)])
def test_notionals(lev, chan):
    """N^L_a = lambda perp_long_a, N^S_a = lambda perp_short_a, times channel_perps (spec 4.1,
    section 4); products of two floats, rtol 1e-12."""
    p, jp = _params(leverage=lev, channel_perps=chan)
    long_n, short_n = K.notionals(jp)
    _close(long_n, [lev * chan * p.perp_long_btc, lev * chan * p.perp_long_alt], scale=0.0)
    _close(short_n, [lev * chan * p.perp_short_btc, lev * chan * p.perp_short_alt], scale=0.0)


# ------------------------------------------------------------------- 4.2 DeFi lending
def _defi_spec(p, d_btc, d_alt):
    out = []
    for coll, d_a in ((p.defi_collateral_btc, d_btc), (p.defi_collateral_alt, d_alt)):
        d_eff = min(1.0, d_a * (1.0 + p.defi_selfref_share * p.defi_selfref_beta))
        total = 0.0
        if p.leverage > 0:  # at lambda = 0 H is infinite: no debt
            for h_j, v_j in zip(p.defi_hf_buckets, p.defi_hf_weights, strict=True):
                hf = 1.0 + (h_j - 1.0) / p.leverage
                debt = coll * v_j * p.defi_liq_threshold / hf
                total += (1.0 + p.defi_bonus) * debt * (
                    p.defi_close_factor * _s(d_eff, 1.0 - 1.0 / hf, p.dispersion)
                    + (1.0 - p.defi_close_factor)
                    * _s(d_eff, 1.0 - p.defi_full_hf / hf, p.dispersion))
        out.append(p.channel_defi * total)
    return out


DD_CRYPTO = [(0.0, 0.0, 0.0), (0.02, 0.05, 0.0), (0.05, 0.11, 0.01), (0.1, 0.2, 0.02),
             (0.2, 0.35, 0.05), (0.35, 0.6, 0.1), (0.6, 0.82, 0.2), (0.9, 0.97, 0.3)]


@pytest.mark.parametrize("kw", [{}, {"leverage": 2.5}, {"dispersion": 0.0}, {"leverage": 0.4},
                                {"channel_defi": 0.5, "defi_selfref_beta": 3.0}])
def test_defi_target(kw):
    """Cumulative DeFi collateral sold, sum_j (1+bonus) B_aj [cf S(D'; 1-1/H) + (1-cf) S(D';
    1-hf_full/H)] with D' = min(1, D (1 + share beta)) (spec 4.2); rtol 1e-12 of the largest
    value (a sum of ~7 products)."""
    p, jp = _params(**kw)
    got = np.asarray(K.defi(jp, _dd(DD_CRYPTO)))
    want = np.array([_defi_spec(p, b, a) for b, a, _ in DD_CRYPTO]).T
    assert want[1].max() > 0
    _close(got, want)


def test_defi_target_zero_at_leverage_zero():
    """At lambda = 0 nobody borrows (spec section 4): DeFi sells exactly nothing, even at a 97 %
    fall; exact."""
    _, jp = _params(leverage=0.0)
    assert np.all(np.asarray(K.defi(jp, _dd(DD_CRYPTO))) == 0.0)


# ------------------------------------------------------------------- 4.3 treasury companies
def _treasury_spec(p, d_btc):
    total = 0.0
    for u_j, b_j in zip(p.treasury_ltv_weights, p.treasury_ltv_buckets, strict=True):
        v_j = p.channel_treasury * p.treasury_btc * u_j
        ltv = p.leverage * p.treasury_ltv * b_j
        d_star = 1.0 - ltv / p.treasury_covenant
        left = v_j * (1.0 - d_btc)
        back_to_target = (ltv * v_j - p.treasury_target * left) / (1.0 - p.treasury_target)
        sale = min(max(back_to_target, 0.0), left)
        total += _s(d_btc, d_star, p.dispersion) * sale
    return total


def _lowest_trigger(p):
    """The smallest drawdown at which any company's (dispersed) covenant is reached."""
    ltv_max = p.leverage * p.treasury_ltv * max(p.treasury_ltv_buckets)
    return (1.0 - ltv_max / p.treasury_covenant) * (1.0 - p.dispersion)


@pytest.mark.parametrize("kw", [{}, {"leverage": 3.0}, {"dispersion": 0.0, "leverage": 2.0}])
def test_treasury_no_sale_before_any_covenant(kw):
    """While no company is past its (dispersed) covenant, treasuries sell exactly nothing
    (spec 4.3: a sale only past D*_j); exact."""
    p, jp = _params(**kw)
    low = _lowest_trigger(p)
    rows = [(d, 0.5, 0.1) for d in (0.0, 0.25 * low, 0.9 * low, low * (1 - 1e-9))]
    assert np.all(np.asarray(K.treasury(jp, _dd(rows))) == 0.0)


@pytest.mark.parametrize("lev", [1.0, 2.0])
def test_treasury_chunk_sale_past_covenant(lev):
    """With no dispersion a company past its covenant at D*_j sells at once a chunk back to
    the target LTV, V_j (1 - D*) (covenant - target) / (1 - target) (spec 4.3); just below D*
    nothing. rtol 1e-12 against the formula at D*(1 + 1e-9); the chunk limit to 1e-7."""
    p, jp = _params(leverage=lev, dispersion=0.0)
    j = int(np.argmax(p.treasury_ltv_buckets))  # the most indebted company breaks first
    v_j = p.treasury_btc * p.treasury_ltv_weights[j]
    d_star = 1.0 - lev * p.treasury_ltv * p.treasury_ltv_buckets[j] / p.treasury_covenant
    rows = [(d_star * (1 - 1e-9), 0.0, 0.0), (d_star * (1 + 1e-9), 0.0, 0.0)]
    got = np.asarray(K.treasury(jp, _dd(rows)))
    assert got[0] == 0.0
    _close(got[1], _treasury_spec(p, rows[1][0]))
    chunk = (v_j * (1.0 - d_star) * (p.treasury_covenant - p.treasury_target)
             / (1.0 - p.treasury_target))
    np.testing.assert_allclose(got[1], chunk, rtol=1e-7)


@pytest.mark.parametrize("kw", [{}, {"leverage": 3.0}, {"treasury_target": 0.1, "dispersion": 0.2},
                                {"channel_treasury": 0.5, "leverage": 2.0}])
def test_treasury_target(kw):
    """Cumulative btc sold, sum_j S(D; D*_j) clip((l_j V_j - target V_j (1-D)) / (1-target), 0,
    V_j (1-D)) (spec 4.3) over a grid of btc drawdowns, up to a total loss; rtol 1e-12."""
    p, jp = _params(**kw)
    grid = [0.0, 0.2, 0.4, 0.55, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]
    got = np.asarray(K.treasury(jp, _dd([(d, 0.3, 0.05) for d in grid])))
    want = [_treasury_spec(p, d) for d in grid]
    assert max(want) > 0
    _close(got, want)


# ------------------------------------------------------------------- 4.4 funds
def _funds_spec(p, d_btc, d_alt, d_eq):
    """Spec 4.4: (equity sold, (btc sold, alt sold), diagnostics)."""
    e_cap = p.fund_capital
    h = p.fund_eq_leverage * e_cap
    beta = p.fund_crypto_btc_share
    n_b, n_a = p.leverage * p.fund_crypto_book * beta, p.leverage * p.fund_crypto_book * (1 - beta)
    v = n_b * d_btc + n_a * d_alt
    buffer = p.fund_buffer * (n_b + n_a)
    e_m = min(p.channel_fund_margin * p.fund_eq_sale_share * max(v - buffer, 0.0), h * (1 - d_eq))
    a0 = h + n_b + n_a
    lam0 = a0 / e_cap
    loss = v + h * d_eq
    assets, capital = a0 - loss, e_cap - loss
    assert capital > 0, "scenario outside the spec's range (fund capital wiped out)"
    lam_f = assets / capital
    trig = _s(lam_f / lam0 - 1.0, p.fund_max_ratio - 1.0, p.dispersion)
    excess = assets - p.fund_target_ratio * lam0 * capital
    sale = p.channel_fund_delever * trig * min(max(excess, 0.0), assets)
    eq_cs = min(sale, h * (1 - d_eq) - e_m)  # most liquid first: what is left of equities
    rest = sale - eq_cs
    left_b, left_a = n_b * (1 - d_btc), n_a * (1 - d_alt)
    assert rest <= left_b + left_a, "scenario where the spec does not say what is sold"
    crypto = (0.0, 0.0) if rest == 0 else (rest * left_b / (left_b + left_a),
                                            rest * left_a / (left_b + left_a))
    return e_m + eq_cs, crypto, {"margin": e_m, "trig": trig, "cs_eq": eq_cs, "rest": rest,
                                 "eq_left": h * (1 - d_eq), "v": v, "buffer": buffer}


def _funds_check(kw, rows):
    p, jp = _params(**kw)
    fs = K.funds(jp, _dd(rows))
    want = [_funds_spec(p, *r) for r in rows]
    _close(fs.equity, [w[0] for w in want], scale=p.fund_capital)
    _close(fs.crypto, np.array([w[1] for w in want]).T, scale=p.fund_capital)
    return p, [w[2] for w in want], fs


@pytest.mark.parametrize("lev", [1.0, 2.0, 3.0])
def test_funds_margin_call_sells_equities_with_no_equity_move(lev):
    """With D_eq = 0, crypto losses past the buffer make funds sell fund_eq_sale_share x (V -
    buffer) of equities (spec 4.4.1: the spillover), no deleveraging; rtol 1e-12 of capital."""
    rows = [(0.1, 0.2, 0.0), (0.2, 0.4, 0.0), (0.3, 0.5, 0.0)]
    # deleveraging kept out of reach so the margin calls are seen alone
    p, diag, fs = _funds_check({"leverage": lev, "fund_max_ratio": 3.0}, rows)
    for d in diag:
        assert d["trig"] == 0.0 and d["v"] > d["buffer"]  # margin calls alone
    assert np.all(np.asarray(fs.crypto) == 0.0)
    want = [p.fund_eq_sale_share * (d["v"] - d["buffer"]) for d in diag]
    _close(fs.equity, want, scale=p.fund_capital)


def test_funds_nothing_at_leverage_zero():
    """At lambda = 0 the funds have no crypto book: no margin call, no sale, whatever crypto
    does (equities unmoved); exact zeros."""
    _, jp = _params(leverage=0.0)
    fs = K.funds(jp, _dd([(b, a, 0.0) for b, a, _ in DD_CRYPTO]))
    assert np.all(np.asarray(fs.equity) == 0.0) and np.all(np.asarray(fs.crypto) == 0.0)


def test_funds_buffer():
    """Losses inside the cash buffer fund_buffer x sum N raise nothing; past it, exactly
    share x (V - buffer) (spec 4.4.1); rtol 1e-12 of capital (exact 0 inside)."""
    p, _ = _params()
    rows = [(p.fund_buffer * (1 - 1e-9),) * 2 + (0.0,), (p.fund_buffer,) * 2 + (0.0,),
            (1.5 * p.fund_buffer,) * 2 + (0.0,)]
    p, _, fs = _funds_check({}, rows)
    got = np.asarray(fs.equity)
    assert got[0] == 0.0 and got[1] <= 1e-12 * p.fund_capital
    book = p.leverage * p.fund_crypto_book
    np.testing.assert_allclose(got[2], p.fund_eq_sale_share * 0.5 * p.fund_buffer * book,
                               rtol=1e-12)


def test_funds_cont_schaanning_equities_first():
    """Past fund_max_ratio x lambda0 the funds sell clip(A - target lambda0 K, 0, A), equities
    first (after the margin sales): a sale the equities can cover sells no crypto (spec 4.4.2);
    rtol 1e-12 of capital."""
    kw = {"fund_max_ratio": 1.1, "dispersion": 0.2}
    rows = [(0.1, 0.2, 0.05), (0.15, 0.3, 0.1), (0.2, 0.35, 0.15)]
    _, diag, fs = _funds_check(kw, rows)
    assert all(d["trig"] > 0 and d["cs_eq"] > 0 and d["rest"] == 0 for d in diag)
    assert 0 < diag[0]["trig"] < 1 and diag[-1]["trig"] == 1.0
    assert np.all(np.asarray(fs.crypto) == 0.0)


def test_funds_cont_schaanning_then_crypto_pro_rata():
    """When the deleveraging sale exceeds the equities left after the margin sales, all of them
    are sold and the rest comes from crypto in proportion to what remains of the book (spec
    4.4.2); rtol 1e-12 of capital."""
    kw = {"fund_max_ratio": 1.1, "fund_eq_leverage": 0.3, "leverage": 3.0}
    rows = [(0.2, 0.3, 0.2), (0.25, 0.4, 0.1), (0.22, 0.45, 0.05)]
    p, diag, fs = _funds_check(kw, rows)
    eq = np.asarray(fs.equity)
    for i, d in enumerate(diag):
        assert d["rest"] > 0
        np.testing.assert_allclose(eq[i], d["eq_left"], rtol=1e-12)  # every equity sold
    crypto = np.asarray(fs.crypto)
    beta = p.fund_crypto_btc_share
    for i, (b, a, _) in enumerate(rows):
        want = beta * (1 - b) / ((1 - beta) * (1 - a))
        np.testing.assert_allclose(crypto[0, i] / crypto[1, i], want, rtol=1e-12)


@pytest.mark.parametrize("kw", [{}, {"leverage": 2.5, "fund_max_ratio": 1.15},
                                {"channel_fund_margin": 0.5, "channel_fund_delever": 0.0},
                                {"fund_target_ratio": 0.8, "dispersion": 0.0,
                                 "fund_max_ratio": 1.2}])
def test_funds_target(kw):
    """Funds' cumulative equity and crypto sales over a drawdown grid (spec 4.4, margin calls
    plus Cont-Schaanning); rtol 1e-12 of fund capital."""
    rows = [(0.0, 0.0, 0.0), (0.03, 0.05, 0.0), (0.1, 0.2, 0.02), (0.2, 0.4, 0.06),
            (0.3, 0.55, 0.1), (0.45, 0.7, 0.12)]
    _funds_check(kw, rows)


# ------------------------------------------------------------------- 4.5 banks
LOW_TREASURY = {"treasury_ltv": 0.01}  # lets validation accept leverage up to 10


def _exposure_spec(p):
    k = p.bank_capital * np.asarray(p.bank_weights)
    floor = min(p.leverage * p.bank_crypto_floor, p.bank_crypto_cap)
    return p.channel_collateral * k * (floor + p.integration * p.leverage
                                       * (np.asarray(p.bank_crypto_max) - p.bank_crypto_floor))


@pytest.mark.parametrize("lev", [0.0, 0.5, 1.0, 3.0, 4.0, 7.5, 10.0])
def test_bank_exposure_basel_floor_and_cap(lev):
    """Integration 0: X_b = K_b min(lambda floor, cap): the Basel floor, never above the 2 % cap
    at any leverage (spec 4.5); rtol 1e-12."""
    p, jp = _params(leverage=lev, integration=0.0, **LOW_TREASURY)
    k = p.bank_capital * np.asarray(p.bank_weights)
    want = k * min(lev * p.bank_crypto_floor, p.bank_crypto_cap)
    _close(K.exposure(jp), want, scale=float(k.max()))
    assert np.all(np.asarray(K.exposure(jp)) <= p.bank_crypto_cap * k * (1 + 1e-12))


@pytest.mark.parametrize(("lev", "integ"), [(1.0, 1.0), (2.0, 1.0), (1.0, 0.4), (6.0, 0.7)])
def test_bank_exposure_integration(lev, integ):
    """X_b = K_b [min(lambda floor, cap) + integration lambda (max_b - floor)]; at integration 1
    and lambda 1 exactly the maximum K_b max_b (spec 4.5); rtol 1e-12."""
    p, jp = _params(leverage=lev, integration=integ, **LOW_TREASURY)
    got = np.asarray(K.exposure(jp))
    _close(got, _exposure_spec(p))
    if lev == 1.0 and integ == 1.0:
        _close(got, p.bank_capital * np.asarray(p.bank_weights) * np.asarray(p.bank_crypto_max))


def _banks_spec(p, dd, col_prev, realised, run_prev, phi):
    """Spec 4.5 for one path: dict of per-bank arrays and the market equity sales."""
    d_btc, d_alt, d_eq = dd
    k = p.bank_capital * np.asarray(p.bank_weights)
    assets = p.bank_leverage * k
    q_eq = p.bank_eq_share * assets
    liquid = p.bank_liquid_share * assets
    w = p.bank_wholesale_share * (assets - k)
    x = _exposure_spec(p)
    gamma = p.bank_crypto_btc_share
    d_c = gamma * d_btc + (1 - gamma) * d_alt
    col = max(col_prev, _s(d_c, p.bank_margin_call, p.dispersion))
    unit = realised + (1 - col_prev) * max(d_c - p.bank_haircut, 0.0)
    crypto = x * unit
    lm = crypto + q_eq * d_eq

    def excess(rho):
        return np.maximum(rho * p.run_share * w - liquid, 0.0)

    def fire(rho):
        return p.run_discount * (1 - p.bank_eq_sale_share) * excess(rho) * (1 - phi)

    ratio = (lm + fire(np.asarray(run_prev))) / k
    rho = np.maximum(run_prev,
                     [p.channel_runs * _s(r, p.run_threshold, p.dispersion) for r in ratio])
    loss = lm + fire(rho)
    e = excess(rho)
    s_e = p.bank_eq_sale_share
    uncapped = s_e * (p.channel_bank_sales * (p.bank_leverage - 1) * loss + e)
    gross = np.minimum(uncapped, q_eq * (1 - d_eq))
    return {"col": col, "crypto": crypto, "loss": loss, "run": rho, "eq": (1 - phi) * gross.sum(),
            "excess": e, "capped": uncapped > q_eq * (1 - d_eq), "run_out": rho * p.run_share * w,
            "k": k}


def _banks_check(kw, scen):
    """scen: list of (dd, col_prev, realised, run_prev (B,) or scalar, phi) per path."""
    p, jp = _params(**kw)
    nb = len(p.bank_weights)
    run_prev = np.array([np.broadcast_to(np.asarray(s[3], float), (nb,)) for s in scen]).T
    got = K.marks(jp, _dd([s[0] for s in scen]),
                      jnp.asarray([s[1] for s in scen], jnp.float64),
                      jnp.asarray([s[2] for s in scen], jnp.float64),
                      jnp.asarray(run_prev, jnp.float64),
                      jnp.asarray([s[4] for s in scen], jnp.float64))
    want = [_banks_spec(p, s[0], s[1], s[2], run_prev[:, i], s[4]) for i, s in enumerate(scen)]
    cap = p.bank_capital
    _close(got.collateral_share, [w["col"] for w in want], scale=1.0)
    _close(got.crypto_loss, np.array([w["crypto"] for w in want]).T, scale=cap)
    _close(got.loss, np.array([w["loss"] for w in want]).T, scale=cap)
    _close(got.run, np.array([w["run"] for w in want]).T, scale=1.0)
    _close(got.equity_target, [w["eq"] for w in want], scale=cap)
    return p, want, got


SCEN_INTEGRATED = [
    # (btc, alt, eq) drawdowns, collateral share so far, realised loss, run so far, Fed share
    ((0.1, 0.2, 0.0), 0.0, 0.0, 0.0, 0.0),  # margin call ramping, loss inside the haircut
    ((0.3, 0.5, 0.05), 0.4, 0.02, 0.0, 0.0),  # marked + realised, small runs paid from liquidity
    ((0.5, 0.7, 0.1), 0.2, 0.03, 0.0, 0.5),  # full runs past liquidity, fire sales, Fed at 0.5
    ((0.25, 0.4, 0.08), 0.7, 0.01, 0.3, 0.3),  # runs carried over from earlier steps
    ((0.6, 0.8, 0.2), 1.0, 0.25, 0.9, 1.0),  # all collateral sold before; Fed forestalls all
]


def test_bank_marks_integrated():
    """Bank collateral share, crypto and total losses, runs and market equity sales at
    integration 1 over five states (spec 4.5, section-by-section by hand); rtol 1e-12 of
    system capital (dollars) or of 1 (shares)."""
    _, want, _ = _banks_check({"integration": 1.0}, SCEN_INTEGRATED)
    assert 0 < want[0]["col"] < 1 and want[0]["loss"].max() == 0.0
    assert np.any(want[1]["run"] > 0) and np.all(want[1]["excess"] == 0)  # liquidity pays first
    assert np.any(want[2]["excess"] > 0) and np.any(want[2]["capped"])


@pytest.mark.parametrize("kw", [{"leverage": 4.0, **LOW_TREASURY},
                                {"leverage": 2.0, "integration": 0.5, "dispersion": 0.0},
                                {"integration": 1.0, "channel_runs": 0.5, "channel_bank_sales": 0.3,
                                 "bank_crypto_btc_share": 0.4}])
def test_bank_marks_other_regimes(kw):
    """The same spec 4.5 hand calculation in the Basel regime, with no dispersion and with
    partial channel switches; rtol 1e-12 of system capital."""
    _banks_check(kw, SCEN_INTEGRATED)


def test_bank_marks_collateral_liquidation_share():
    """Gamma = max(prior, S(D_c; margin_call)) with D_c = gamma D_btc + (1-gamma) D_alt, a ramp
    over margin_call (1 +- s) (spec 4.5); rtol 1e-12."""
    p, jp = _params(integration=1.0)
    g = p.bank_crypto_btc_share
    mc, s = p.bank_margin_call, p.dispersion
    d_c = mc * np.array([0.0, (1 - s) * 0.99, (1 - s) * 1.01, 1.0, 1.3, (1 + s) * 1.01])
    rows = [(d, d, 0.0) for d in d_c]
    prior = np.array([0.0, 0.2, 0.0, 0.6, 0.0, 0.0])
    nb = len(p.bank_weights)
    got = K.marks(jp, _dd(rows), jnp.asarray(prior), jnp.zeros(len(rows)),
                      jnp.zeros((nb, len(rows))), jnp.zeros(len(rows))).collateral_share
    want = [max(pr, min(max((g * d + (1 - g) * d - mc * (1 - s)) / (2 * s * mc), 0), 1))
            for d, pr in zip(d_c, prior, strict=True)]
    _close(got, want, scale=1.0)
    np.testing.assert_allclose(np.asarray(got)[[0, 3, 5]], [0.0, 0.6, 1.0], rtol=1e-12)


def test_bank_marks_realised_plus_marked_loss():
    """Crypto loss C_b = X_b (R + (1 - Gamma_prev) max(D_c - h, 0)): the realised part R on what
    was sold plus the mark on the rest (spec 4.5), checked against R = 0 and Gamma_prev = 0;
    rtol 1e-12 of system capital."""
    p, jp = _params(integration=1.0)
    x = _exposure_spec(p)
    d = (0.4, 0.5, 0.0)
    d_c = p.bank_crypto_btc_share * d[0] + (1 - p.bank_crypto_btc_share) * d[1]
    cases = [(0.0, 0.0), (0.5, 0.0), (0.5, 0.07), (1.0, 0.12)]
    nb = len(p.bank_weights)
    got = K.marks(jp, _dd([d] * len(cases)), jnp.asarray([c[0] for c in cases]),
                      jnp.asarray([c[1] for c in cases]), jnp.zeros((nb, len(cases))),
                      jnp.zeros(len(cases))).crypto_loss
    want = np.array([x * (r + (1 - g) * max(d_c - p.bank_haircut, 0.0)) for g, r in cases]).T
    _close(got, want, scale=p.bank_capital)
    np.testing.assert_allclose(np.asarray(got)[:, 3], x * 0.12, rtol=1e-12)  # all sold: R only


def test_bank_marks_runs_liquid_first_then_fire_sale():
    """A run withdraws rho run_share W_b; liquid assets pay first (no fire-sale loss, no equity
    sale for the run while rho run_share W_b <= liquid_b), the excess e_b is raised by selling
    equities (share s_e) and other assets at a loss run_discount (1 - s_e) e_b (1 - phi)
    (spec 4.5); losses with only runs (no crypto), rtol 1e-12 of system capital."""
    kw = {"integration": 0.0, "leverage": 0.0, "channel_bank_sales": 0.0}
    p, jp = _params(**kw)
    k = p.bank_capital * np.asarray(p.bank_weights)
    assets = p.bank_leverage * k
    liquid = p.bank_liquid_share * assets
    w = p.bank_wholesale_share * (assets - k)
    rho_liquid = liquid / (p.run_share * w)  # run intensity the liquid assets can pay
    assert np.all(rho_liquid < 1)
    runs = [0.5 * rho_liquid, rho_liquid * (1 - 1e-9), 0.5 * (1 + rho_liquid), np.ones_like(k)]
    phis = [0.0, 0.0, 0.0, 0.25]
    n = len(runs)
    got = K.marks(jp, _dd([(0.0, 0.0, 0.0)] * n), jnp.zeros(n), jnp.zeros(n),
                      jnp.asarray(np.array(runs).T), jnp.asarray(phis))
    for i, (rho, phi) in enumerate(zip(runs, phis, strict=True)):
        e = np.maximum(rho * p.run_share * w - liquid, 0.0)
        fire = p.run_discount * (1 - p.bank_eq_sale_share) * e * (1 - phi)
        _close(np.asarray(got.loss)[:, i], fire, scale=p.bank_capital)
        eq = (1 - phi) * np.minimum(p.bank_eq_sale_share * e, p.bank_eq_share * assets).sum()
        _close(np.asarray(got.equity_target)[i], eq, scale=p.bank_capital)
        _close(np.asarray(got.run)[:, i], rho, scale=1.0)  # never below the prior run
    assert np.all(np.asarray(got.loss)[:, :2] == 0) and np.asarray(got.equity_target)[1] == 0
    assert np.all(np.asarray(got.loss)[:, 2:] > 0)


def test_bank_marks_run_threshold():
    """rho_b = S((Lm_b + F_b(rho_prev)) / K_b; run_threshold): no run below the dispersed
    threshold, a ramp across it (spec 4.5); losses from equities alone (D_eq), rtol 1e-12."""
    p, jp = _params(leverage=0.0, bank_eq_share=0.5)
    thr, s = p.run_threshold, p.dispersion
    share_of_cap = p.bank_eq_share * p.bank_leverage  # equity loss per unit of D_eq, x capital
    d_eq = thr * np.array([(1 - s) * 0.99, (1 - s) * 1.2, 1.0, (1 + s) * 1.05]) / share_of_cap
    n = len(d_eq)
    nb = len(p.bank_weights)
    got = np.asarray(K.marks(jp, _dd([(0, 0, d) for d in d_eq]), jnp.zeros(n), jnp.zeros(n),
                                 jnp.zeros((nb, n)), jnp.zeros(n)).run)
    want = [min(max((share_of_cap * d - thr * (1 - s)) / (2 * s * thr), 0), 1) for d in d_eq]
    _close(got, np.tile(want, (nb, 1)), scale=1.0)
    assert np.all(got[:, 0] == 0) and np.all(got[:, -1] == 1)


def test_bank_equity_sales_capped_at_holdings():
    """Gross equity sales min(s_e ((lambda_b - 1) L_b + e_b), Q_b (1 - D_eq)) never exceed what
    is left of the equities (spec 4.5); banks with huge losses sell all of it; rtol 1e-12."""
    p, want, got = _banks_check({"integration": 1.0, "leverage": 3.0}, [((0.7, 0.9, 0.5), 0.0, 0.0,
                                                                          0.0, 0.0)])
    w = want[0]
    assert np.all(w["capped"])
    q_left = (p.bank_eq_share * p.bank_leverage * w["k"] * 0.5).sum()
    np.testing.assert_allclose(np.asarray(got.equity_target)[0], q_left, rtol=1e-12)


def test_bank_fed_forestalls_once():
    """The Fed forestalls the share phi of bank equity sales once: with no run fire sales
    (e_b = 0) the market sales are exactly (1 - phi) x those at phi = 0, not (1 - phi)^2 (spec
    4.5/4.6: applied once); rtol 1e-12."""
    p, jp = _params(integration=1.0)
    phis = [0.0, 0.3, 0.7, 1.0]
    n = len(phis)
    nb = len(p.bank_weights)
    d = (0.3, 0.45, 0.05)
    got = K.marks(jp, _dd([d] * n), jnp.zeros(n), jnp.zeros(n), jnp.zeros((nb, n)),
                      jnp.asarray(phis))
    want = _banks_spec(p, d, 0.0, 0.0, np.zeros(nb), 0.0)
    assert np.all(want["excess"] == 0) and want["eq"] > 0
    _close(got.equity_target, [(1 - f) * want["eq"] for f in phis], scale=p.bank_capital)
    # the Fed does not reduce the banks' own losses when there is no fire sale to forestall
    _close(got.loss, np.tile(want["loss"][:, None], (1, n)), scale=p.bank_capital)


@pytest.mark.parametrize("floor", [0.6, 0.0, 0.95])
def test_bank_failed(floor):
    """A bank has failed when its loss exceeds (1 - bank_fail_floor) K_b (spec 4.5); exact
    comparisons just either side (1e-9 relative) of the threshold."""
    p, jp = _params(bank_fail_floor=floor)
    k = p.bank_capital * np.asarray(p.bank_weights)
    lim = (1 - floor) * k
    loss = np.stack([lim * (1 - 1e-9), lim * (1 + 1e-9), np.zeros_like(k), 2 * k], axis=1)
    got = np.asarray(K.failed(jp, jnp.asarray(loss)))
    want = loss > lim[:, None]
    np.testing.assert_array_equal(got, want)
    assert not got[:, 0].any() and got[:, 1].all()


# ------------------------------------------------------------------- 4.6 Fed
@pytest.mark.parametrize(("put", "trigger", "ramp"), [(1.0, 0.07, 0.02), (0.6, 0.05, 0.1),
                                                      (0.0, 0.07, 0.02)])
def test_fed_share(put, trigger, ramp):
    """phi = fed_put clip((D_eq - trigger) / ramp, 0, 1) before the Fed has fired, fed_put once
    fired (spec 4.6); rtol 1e-12."""
    _, jp = _params(fed_put=put, fed_trigger=trigger, fed_ramp=ramp)
    d_eq = np.array([0.0, trigger * 0.5, trigger, trigger + 0.3 * ramp, trigger + 0.99 * ramp,
                     trigger + ramp, 0.5])
    for on in (0.0, 1.0):
        got = K.fed_share(jp, jnp.asarray(d_eq), jnp.full(d_eq.shape, on))
        want = [put * (1.0 if on else min(max((d - trigger) / ramp, 0.0), 1.0)) for d in d_eq]
        _close(got, want, scale=1.0)


def test_fed_armed():
    """fed_fired = 1 once D_eq has reached fed_trigger, and stays 1 (spec 4.6); exact."""
    p, jp = _params(fed_put=0.5)
    d_eq = np.array([0.0, p.fed_trigger * (1 - 1e-9), p.fed_trigger * (1 + 1e-9), 0.3, 0.0, 0.01])
    on = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    got = np.asarray(K.fed_armed(jp, jnp.asarray(d_eq), jnp.asarray(on)))
    np.testing.assert_array_equal(got, [0.0, 0.0, 1.0, 1.0, 1.0, 1.0])


# ------------------------------------------------------------------- 4.6 the equity net flow
@pytest.mark.parametrize("put", [0.0, 0.4, 1.0])
def test_cascade_equity_flow_applies_the_fed_once(put):
    """Spec 4.6: q_eq = (1 - phi) x fund equity sales + bank equity sales, the banks' already
    net of phi (forestalled, never bought): with the Fed fired (phi = fed_put) and no run
    fire sales, q_eq is (1 - phi) x (fund gross + bank gross), not (1 - phi) x fund +
    (1 - phi)^2 x bank; rtol 1e-12 from a state at rest with the drawdowns ``d``."""
    from kernels.cascade import forced_flows, init_state

    p, jp = _params(leverage=2.0, integration=1.0, fed_put=put, channel_runs=0.0)
    d = (0.3, 0.45, 0.05)
    s = init_state(1, len(p.bank_weights), jnp.float64)._replace(fed_on=jnp.ones(1))
    x = jnp.log1p(-jnp.asarray(d))[:, None]  # the log prices at these drawdowns
    q, f = jax.jit(forced_flows)(jp, s, x, jnp.zeros(1))
    fund_gross, _, _ = _funds_spec(p, *d)
    bank_gross = _banks_spec(p, d, 0.0, 0.0, np.zeros(len(p.bank_weights)), 0.0)
    assert np.all(bank_gross["excess"] == 0) and bank_gross["eq"] > 0 and fund_gross > 0
    _close(f.fed_share, [put])
    _close(q[2], [(1 - put) * (fund_gross + bank_gross["eq"])], scale=fund_gross)
