"""The model properties of DESIGN.md section 8, items 1-8, with fixed seeds.

Every test runs blocks of the same static shape (conftest.run_cells: 8 cells x
512 paths x 96 steps, float32), so the kernel compiles once for the module.
Tolerances are stated next to each assertion.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from conftest import cells_from, run_cells
from kernels import make_params
from kernels.market import impact
from kernels.params import baseline, oct2025


def test_leverage_zero_means_no_liquidations_and_amplification_one(stressed):
    cells = cells_from(stressed, leverage=[0.0, 0.0], correlation=[0.8, -0.5])
    res = run_cells(cells, return_paths=True)
    for var in ("liquidated_long", "liquidated_short", "defi_liquidated", "treasury_sold",
                "fund_equity_sold", "oi_closed"):
        assert np.all(res.paths[var] == 0.0), var
    assert np.all(res.paths["amplification"] == 1.0)  # exactly
    for a in ("btc", "alt", "eq"):
        np.testing.assert_array_equal(res.paths[f"drawdown_{a}"], res.paths[f"exo_drawdown_{a}"])


def test_amplification_and_tails_rise_with_leverage():
    lev = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    res = run_cells(cells_from(oct2025(), leverage=lev))
    amp = res.stats["amplification"][:, 0]  # mean
    tail = res.stats["drawdown_btc"][:, 5]  # q99
    assert np.all(np.diff(amp) > 0), amp  # strictly increasing
    assert np.all(np.diff(tail) > -1e-3), tail  # non-decreasing within 0.1 point of drawdown
    assert tail[-1] > 2 * tail[0]


def test_amplification_and_tails_rise_with_thinner_depth():
    scale = np.array([4.0, 2.0, 1.0, 0.5, 0.25])
    p = oct2025()
    res = run_cells(cells_from(p, depth_btc=list(p.depth_btc * scale),
                               depth_alt=list(p.depth_alt * scale)))
    amp = res.stats["amplification"][:, 0]
    tail = res.stats["drawdown_btc"][:, 5]
    assert np.all(np.diff(amp) > 0), amp
    assert np.all(np.diff(tail) > 0), tail


def test_critical_leverage_p_systemic_rises_steeply(stressed):
    lev = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 2.0, 3.0]
    res = run_cells(cells_from(stressed, leverage=lev))
    p_sys = res.probs["p_systemic"]
    assert np.all(p_sys[:3] <= 0.02), p_sys  # ~0 below the critical leverage
    assert np.max(np.diff(p_sys)) >= 0.3, p_sys  # a steep rise between neighbouring points
    jump = int(np.argmax(np.diff(p_sys))) + 1
    assert np.all(p_sys[jump:] >= 0.5), p_sys  # and it stays high past the critical leverage


def test_square_root_impact_four_times_flow_twice_impact():
    p = make_params({**baseline()._asdict(), "kappa": 0.0})
    q = jnp.array([[1e8, 3e8, 2e9]])
    depth = jnp.ones((1, 3))
    i1, _ = impact(q, depth, p)
    i4, _ = impact(4.0 * q, depth, p)
    np.testing.assert_allclose(np.asarray(i4 / i1), 2.0, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(i1[0, 0]), -0.01 * np.sqrt(1e8 / p.depth_btc), rtol=1e-12)
    ib, _ = impact(-q, depth, p)  # forced buying lifts the price symmetrically
    np.testing.assert_allclose(np.asarray(ib), -np.asarray(i1), rtol=1e-12)


def test_integration_raises_bank_losses_and_zero_means_no_crypto_losses(stressed):
    integ = [0.0, 0.25, 0.5, 0.75, 1.0]
    res = run_cells(cells_from(stressed, integration=integ, leverage=[2.0] * 5),
                    return_paths=True)
    assert np.all(res.paths["bank_crypto_loss"][0] == 0.0)  # exactly
    assert res.stats["bank_loss"][0, 0] > 0  # banks still lose on equities
    loss = res.stats["bank_loss"][:, 0]
    assert np.all(np.diff(loss) > 0), loss
    assert np.all(np.diff(res.stats["bank_crypto_loss"][:, 0]) > 0)
    assert np.all(np.diff(res.probs["p_systemic"]) >= -0.02), res.probs["p_systemic"]
    assert res.probs["p_systemic"][-1] > res.probs["p_systemic"][0] + 0.2


def test_fed_put_shields_equities_and_banks_not_crypto(stressed):
    fed = [0.0, 0.5, 1.0]
    res = run_cells(cells_from(stressed, fed_put=fed, leverage=[2.0] * 3,
                               integration=[0.5] * 3))
    eq = res.stats["drawdown_eq"][:, 0]
    btc = res.stats["drawdown_btc"][:, 0]
    failed = res.stats["banks_failed"][:, 0]
    assert np.all(np.diff(eq) < 0), eq
    assert np.all(np.diff(failed) <= 0) and failed[-1] < failed[0], failed
    rel_eq = (eq[0] - eq[-1]) / eq[0]
    rel_btc = (btc[0] - btc[-1]) / btc[0]
    assert rel_eq > 0.5, rel_eq  # a full put more than halves the mean eq drawdown
    assert rel_btc < 0.25 * rel_eq, (rel_btc, rel_eq)  # crypto only gains indirectly
    assert res.probs["p_systemic"][-1] < res.probs["p_systemic"][0]
    assert res.stats["fed_bought"][-1, 0] > 0 and res.stats["fed_bought"][0, 0] == 0


def test_correlation_raises_joint_crashes():
    corr = [-0.9, -0.5, 0.0, 0.5, 0.9]
    res = run_cells(cells_from(oct2025(), correlation=corr), return_paths=True)
    joint = np.mean((res.paths["drawdown_btc"] >= 0.15) & (res.paths["drawdown_eq"] >= 0.04),
                    axis=-1)
    assert np.all(np.diff(joint) > 0), joint


def test_oct2025_reproduces_the_episode_in_order_of_magnitude():
    """Section 7: ~$19 bn reported liquidated (tens of billions), 85-90 % longs, OI
    217 -> 123 bn, BTC -13 %, altcoins ~ -47 %, Nasdaq -3.6 %."""
    res = run_cells([oct2025()])
    q50 = {k: v[0, 3] for k, v in res.stats.items()}
    liquidated = q50["liquidated_long"] + q50["liquidated_short"]
    assert 1e10 <= liquidated <= 1e11, liquidated  # tens of billions
    assert q50["liquidated_long"] / liquidated >= 0.8  # mostly longs
    assert 0.15 <= q50["oi_closed"] <= 0.8  # a large share of open interest closed
    assert 0.10 <= q50["drawdown_btc"] <= 0.30  # double-digit btc fall
    assert 2.0 <= q50["drawdown_alt"] / q50["drawdown_btc"] <= 6.0  # alts several times further
    assert 0.01 <= q50["drawdown_eq"] <= 0.08  # equities a few percent
