"""analysis.ablation: the frontier with each channel off, and with other systemic thresholds."""

from __future__ import annotations

import numpy as np

from analysis.ablation import (
    channel_ablation,
    critical_from_curve,
    systemic_from_paths,
    threshold_sensitivity,
)
from kernels.params import baseline

LEV = (0.0, 1.0, 1.5, 2.0, 3.0)


def test_critical_from_curve_interpolates_and_says_inf_when_never_reached():
    """Linear interpolation between grid points; inf when the level is never reached."""
    assert critical_from_curve([0, 1, 2], np.array([0.0, 0.2, 1.0]), 0.6) == 1.5
    assert critical_from_curve([0, 1, 2], np.array([0.0, 0.1, 0.2]), 0.5) == float("inf")
    assert critical_from_curve([0, 1, 2], np.array([0.7, 0.8, 0.9]), 0.5) == 0.0


def test_systemic_rule_matches_the_kernel():
    """Re-evaluating systemic from per-path outputs with the model's own thresholds gives
    the kernel's own indicator, path by path."""
    import jax

    from kernels import simulate_block, stack_params

    p = baseline()._replace(integration=1.0)
    res = simulate_block(stack_params([p._replace(leverage=x) for x in LEV]),
                         key=jax.random.key(0), n_paths=64, return_paths=True)
    again = systemic_from_paths(res.paths, systemic_bank_share=p.systemic_bank_share,
                                systemic_eq_drawdown=p.systemic_eq_drawdown,
                                systemic_run_share=p.systemic_run_share)
    np.testing.assert_array_equal(again, res.paths["systemic"] == 1.0)


def test_the_collateral_channel_carries_the_frontier_of_integrated_banks():
    """With banks fully integrated the frontier exists with every channel on; switching
    off the crypto-collateral channel makes it vanish (inf), while switching off DeFi
    barely moves it."""
    tab = channel_ablation(baseline()._asdict(), integration=(1.0,), leverage=LEV, n_paths=64)
    crit = dict(zip(tab["channel off"], tab["critical"], strict=True))
    assert np.isfinite(crit["none (all channels on)"])
    assert crit["bank crypto collateral (crypto -> banks)"] == float("inf")
    assert abs(crit["DeFi liquidations"] - crit["none (all channels on)"]) < 0.25
    assert set(tab.columns) >= {"critical", "band_lo", "band_hi", "shift"}


def test_a_stricter_bank_threshold_moves_the_frontier_out():
    """Requiring more failed capital for a systemic event never lowers the critical
    leverage, and the model's own threshold reproduces the all-on frontier."""
    tab = threshold_sensitivity(baseline()._asdict(), integration=(1.0,), leverage=LEV,
                                thresholds={"systemic_bank_share": (0.1, 0.15, 0.4)},
                                n_paths=64)
    crit = tab["critical"].to_numpy()
    assert np.all(np.diff(crit) >= 0), crit
    assert tab["model value"].sum() == 1
