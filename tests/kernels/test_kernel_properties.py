"""The model's properties (docs/model.md; the list of properties the model must show).

Every test runs blocks of the same static shape (conftest.run_cells: 8 cells x 512
paths x 96 steps, float32), so the kernel compiles once for the module. Monte Carlo
tolerances come from standard errors: cells share their shocks (common random
numbers), so a difference between two cells is estimated path by path, and called
real when its mean exceeds ``Z`` standard errors of the paired differences.
"""

from __future__ import annotations

import numpy as np

from conftest import PROPERTY_PATHS, cells_from, run_cells
from kernels import make_params
from kernels.outputs import STAT_INDEX
from kernels.params import baseline, oct2025

Z = 3.0  # standard errors that make a difference real
MEAN, SE, Q50, Q99 = (STAT_INDEX[k] for k in ("mean", "se", "q50", "q99"))
CRYPTO_FLOWS = ("liquidated_long", "liquidated_short", "defi_liquidated", "treasury_sold",
                "fund_crypto_sold", "collateral_liquidated", "oi_closed")
CHANNELS = ("channel_perps", "channel_defi", "channel_treasury", "channel_fund_margin",
            "channel_fund_delever", "channel_collateral", "channel_runs", "channel_bank_sales")


def _mean_and_se(res, var):
    return res.stats[var][:, MEAN], res.stats[var][:, SE]


def _p_se(p):
    return np.sqrt(np.maximum(p * (1 - p), 0.25 / PROPERTY_PATHS) / PROPERTY_PATHS)


def _rises(paths, what):
    """Between neighbouring cells (rows of ``paths``, shape (cells, n)), the mean of the
    paired per-path differences is positive by more than Z of its standard errors."""
    d = np.diff(np.asarray(paths, dtype=np.float64), axis=0)
    mean = d.mean(axis=1)
    se = d.std(axis=1) / np.sqrt(d.shape[1])
    assert np.all(mean > Z * se), f"{what}: mean differences {mean} vs {Z} x se {se}"


def test_1_leverage_zero_no_crypto_liquidations_amplification_one(stressed):
    """Nobody borrows against crypto: no crypto position is ever liquidated, prices are
    exactly exogenous (amplification exactly 1), even with full integration."""
    cells = cells_from(stressed, leverage=[0.0, 0.0, 0.0], correlation=[0.8, -0.5, 0.0],
                       fed_put=[0.0, 1.0, 0.5])
    res = run_cells(cells, return_paths=True)
    for var in CRYPTO_FLOWS:
        assert np.all(res.paths[var] == 0.0), var  # exactly
    assert np.all(res.paths["amplification"] == 1.0)
    assert np.all(res.paths["bank_crypto_loss"] == 0.0)
    for a in ("btc", "alt"):
        np.testing.assert_array_equal(res.paths[f"drawdown_{a}"], res.paths[f"exo_drawdown_{a}"])


def test_2_amplification_and_tails_rise_with_leverage():
    """More leverage, more amplification (mean) and a fatter btc tail (q99)."""
    res = run_cells(cells_from(oct2025(), leverage=[0.0, 0.5, 1.0, 1.5, 2.0, 3.0]),
                    return_paths=True)
    amp = res.stats["amplification"][:, MEAN]
    _rises(res.paths["amplification"], "amplification")
    assert amp[1] > 1.0 and amp[-1] > 1.5 * amp[1], amp
    tail = res.stats["drawdown_btc"][:, Q99]
    assert np.all(np.diff(tail) > 0), tail
    assert tail[-1] > 2 * tail[0], tail


def test_2_amplification_and_tails_rise_with_thinner_depth():
    """Thinner books (both crypto depths scaled down), more amplification and tail."""
    scale = np.array([4.0, 2.0, 1.0, 0.5])
    p = oct2025()
    res = run_cells(cells_from(p, depth_btc=list(p.depth_btc * scale),
                               depth_alt=list(p.depth_alt * scale)), return_paths=True)
    _rises(res.paths["amplification"], "amplification")
    assert np.all(np.diff(res.stats["drawdown_btc"][:, Q99]) > 0)


def test_3_critical_leverage_from_the_cascade_not_one_bank():
    """p_systemic is ~0 below a critical leverage, then rises steeply; the rise needs
    the crypto-collateral channel and the square-root cascade: switch the channel off, or
    halve the impact, and the critical leverage moves or vanishes. At least two banks
    (15 % of system capital) must fail, not the smallest alone."""
    b = baseline()._replace(integration=1.0)
    lev = [0.0, 0.5, 1.0, 1.25, 1.5, 2.0, 3.0]
    res = run_cells(cells_from(b, leverage=lev))
    p_sys = res.probs["p_systemic"]
    assert np.all(p_sys[:3] <= 0.02), p_sys
    assert np.max(np.diff(p_sys)) >= 0.3, p_sys
    jump = int(np.argmax(np.diff(p_sys))) + 1
    assert np.all(p_sys[jump:] >= 0.5), p_sys
    failed = res.stats["banks_failed"][jump:, MEAN]
    assert np.all(failed >= b.systemic_bank_share - 0.02), failed  # a real share of capital
    off = run_cells([make_params({**b._asdict(), "leverage": lv, "channel_collateral": 0.0})
                     for lv in (2.0, 3.0)]
                    + [make_params({**b._asdict(), "leverage": lv, "impact_y": 0.5})
                       for lv in lev[jump:jump + 2]])
    assert np.all(off.probs["p_systemic"][:2] <= 0.02), off.probs["p_systemic"]
    assert off.probs["p_systemic"][2] < p_sys[jump] - 0.3, (off.probs["p_systemic"], p_sys)


def test_5_integration_raises_bank_losses_and_basel_floor_bounds_them(stressed):
    """More integration, more bank losses and p_systemic; at integration 0 crypto losses
    never exceed the Basel hard cap (2 % of capital) at any leverage."""
    integ = [0.0, 0.25, 0.5, 0.75, 1.0]
    res = run_cells(cells_from(stressed, integration=integ, leverage=[2.0] * 5),
                    return_paths=True)
    _rises(res.paths["bank_loss"], "bank_loss")
    assert np.all(np.diff(res.probs["p_systemic"]) >= -Z * _p_se(res.probs["p_systemic"][1:]))
    assert res.probs["p_systemic"][-1] > res.probs["p_systemic"][0] + 0.5
    floor = run_cells(cells_from(stressed, integration=[0.0] * 3, leverage=[1.0, 2.0, 3.0]),
                      return_paths=True)
    assert np.max(floor.paths["bank_crypto_loss"]) <= stressed.bank_crypto_cap
    assert np.max(floor.paths["bank_crypto_loss"]) > 0  # the floor is not zero


def test_6_fed_put_shields_equities_and_banks_never_crypto():
    """In a cell where equities fall past the Fed's trigger, a full put more than halves
    the endogenous part of the equity drawdown (forced selling; the exogenous fall is
    the Fed's to watch), lowers bank failures and buys only equities; btc's relative
    gain is under a tenth of the equities'."""
    b = oct2025()._replace(leverage=2.5, integration=0.6, correlation=0.9, jump_eq=-0.09)
    res = run_cells(cells_from(b, fed_put=[0.0, 0.5, 1.0]), return_paths=True)
    eq = res.stats["drawdown_eq"][:, MEAN]
    btc = res.stats["drawdown_btc"][:, MEAN]
    assert res.probs["p_fed_fired"][0] > 0.9
    _rises(-res.paths["drawdown_eq"], "equity drawdown falls with the Fed put")
    endo = eq - res.stats["exo_drawdown_eq"][:, MEAN]
    rel_eq, rel_btc = (endo[0] - endo[-1]) / endo[0], (btc[0] - btc[-1]) / btc[0]
    assert rel_eq > 0.5, rel_eq
    assert abs(rel_btc) < 0.1 * rel_eq, (rel_btc, rel_eq)
    _rises(-res.paths["banks_failed"][[0, 2]], "banks failed fall with the Fed put")
    assert res.stats["fed_bought"][0, MEAN] == 0 and res.stats["fed_bought"][-1, MEAN] > 0


def test_7_correlation_raises_joint_crashes():
    """The share of paths where btc falls >= 15 % and equities >= 3 % rises with the shock
    correlation, step by step beyond Monte Carlo error."""
    corr = [-0.9, 0.0, 0.9]
    res = run_cells(cells_from(oct2025()._replace(leverage=1.5), correlation=corr),
                    return_paths=True)
    joint = (res.paths["drawdown_btc"] >= 0.15) & (res.paths["drawdown_eq"] >= 0.03)
    _rises(joint, "joint crash share")


def test_10_spillover_is_real_and_grows_with_leverage():
    """Zero shock correlation, no equity jump, no equity noise: a crypto crash at Oct-2025
    leverage moves equities measurably (> 0.1 %), more at leverage 2, exactly 0 at
    leverage 0; switching off the funds' margin-call channel removes most of it."""
    calm_eq = oct2025()._replace(correlation=0.0, jump_eq=0.0, vol_eq=0.0)
    cells = [*cells_from(calm_eq, leverage=[0.0, 1.0, 2.0]),
             calm_eq._replace(channel_fund_margin=0.0)]
    res = run_cells(cells, return_paths=True)
    eq, eq_se = _mean_and_se(res, "drawdown_eq")
    assert np.all(res.paths["drawdown_eq"][0] == 0.0)
    assert eq[1] > 1e-3 and eq[1] > Z * eq_se[1], eq
    _rises(res.paths["drawdown_eq"][:3], "equity spillover")
    assert eq[3] < 0.5 * eq[1], eq  # the funds' margin calls carry it


def test_11_p_systemic_does_not_fall_as_leverage_rises():
    """Across the leverage axis, p_systemic never falls by more than Monte Carlo error."""
    for integ in (0.5, 1.0):
        lev = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
        res = run_cells(cells_from(baseline()._replace(integration=integ), leverage=lev))
        p = res.probs["p_systemic"]
        assert np.all(np.diff(p) >= -Z * np.sqrt(_p_se(p[1:]) ** 2 + _p_se(p[:-1]) ** 2)), p


def test_channels_switched_off_vanish(stressed):
    """Every channel switched off removes its own flow exactly, and every channel has an
    effect on prices when on (the model has no decorative channel)."""
    base = stressed._replace(leverage=2.0, integration=0.5, fed_put=0.0)
    own = {("channel_perps",): "liquidated_long", ("channel_defi",): "defi_liquidated",
           ("channel_treasury",): "treasury_sold", ("channel_collateral",): "bank_crypto_loss",
           ("channel_runs",): "run_share",
           ("channel_runs", "channel_bank_sales"): "bank_equity_sold"}
    cells = [base] + [base._replace(**dict.fromkeys(chs, 0.0)) for chs in own]
    res = run_cells(cells, return_paths=True)
    for i, (chs, var) in enumerate(own.items(), start=1):
        assert np.all(res.paths[var][i] == 0.0), chs
        assert res.stats[var][0, MEAN] > 0, (chs, var)
    assert np.all(res.paths["collateral_liquidated"][4] == 0.0)
    treasury_heavy = base._replace(leverage=3.0)
    fund = run_cells([treasury_heavy, treasury_heavy._replace(channel_fund_margin=0.0,
                                                              channel_fund_delever=0.0)])
    assert fund.stats["fund_equity_sold"][1, MEAN] == 0
    assert fund.stats["fund_equity_sold"][0, MEAN] > 0
    assert fund.stats["drawdown_eq"][0, MEAN] > fund.stats["drawdown_eq"][1, MEAN]
