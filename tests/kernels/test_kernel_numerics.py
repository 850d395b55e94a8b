"""The answer does not depend on the numerics, and NaN never becomes a number.

docs/model.md section 5: per-path outputs agree with a plain float64 solve at
tol = 1e-11 for >= 99.9 % of paths; halving the step length moves drawdowns and
p_systemic by less than stated tolerances; a NaN anywhere makes the cell's
statistics and probabilities NaN (the farm then fails the cell, loudly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import run_cells
from kernels import cascade, simulate, simulate_block, stack_params
from kernels.outputs import STAT_INDEX
from kernels.params import baseline, make_params, oct2025
from kernels.paramspec import SPECS
from kernels.shocks import draw_normals

MEAN = STAT_INDEX["mean"]


def _block(cells, *, n_paths, n_steps=96, dtype="float32", seed=0, paths=True):
    return simulate_block(stack_params(cells), key=jax.random.key(seed), n_paths=n_paths,
                          n_steps=n_steps, dtype=dtype, return_paths=paths)


def _retrace():
    """Make the next block call trace again (module constants are read at trace time;
    a new ``jax.jit`` of the same function would reuse JAX's trace cache)."""
    simulate.block_fn.cache_clear()
    jax.clear_caches()


def test_compacting_the_active_set_changes_rounding_at_most(monkeypatch):
    """docs/model.md section 5 (active set): the compacted cascade and a full-width one run
    the same rounds per path; outputs agree to rounding (drawdowns 1e-4, bank losses 1e-4
    of capital) on >= 99.9 % of paths, and p_systemic within one path in 1,024."""
    cells = [oct2025()._replace(leverage=lev, integration=i)
             for lev, i in ((1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (2.0, 1.0), (2.5, 0.5))]
    cells.append(baseline()._replace(integration=0.5, leverage=2.957))  # on the frontier
    compact = _block(cells, n_paths=1024)
    monkeypatch.setattr(cascade, "COMPACT", False)
    _retrace()
    try:
        full = _block(cells, n_paths=1024)
    finally:
        monkeypatch.undo()
        _retrace()
    bad = np.zeros(compact.paths["drawdown_btc"].shape, bool)
    for var in ("drawdown_btc", "drawdown_alt", "drawdown_eq", "bank_loss", "banks_failed"):
        bad |= np.abs(compact.paths[var] - full.paths[var]) > 1e-4
    assert bad.mean() <= 1e-3, (bad.sum(), bad.size)
    assert np.abs(compact.probs["p_systemic"] - full.probs["p_systemic"]).max() <= 1 / 1024
    # the frontier cell has paths that need many rounds: compaction had work to do
    assert compact.paths["cascade_rounds_max"][-1].max() > 8


def test_the_solver_agrees_with_a_tight_solve_at_its_least_fixed_point():
    """docs/model.md section 5: >= 99.9 % of paths agree to 1e-4 in every drawdown and to
    1e-4 of capital in bank losses with a solve at tol = 1e-11 (the rest are knife-edge
    paths where a 1e-7 change in an early step decides whether a later one tips), and
    p_systemic agrees within one path. Cells: Oct 2025 at leverage 1..3, integrated
    banks, where a jump-ahead solver used to skip the least fixed point on 0.17 % of
    paths: a step crashed deeper than the model defines and the rest of the day changed,
    e.g. a final drawdown of 0.23 instead of 0.31)."""
    cells = [oct2025()._replace(leverage=lev, integration=i)
             for lev, i in ((1.0, 0.0), (2.0, 0.0), (3.0, 0.0), (1.5, 1.0), (2.0, 1.0),
                            (2.5, 0.5), (3.0, 0.5), (1.0, 1.0))]
    fast = _block(cells, n_paths=512, dtype="float64")
    tight = _block([c._replace(tol=1e-11, max_rounds=100000.0) for c in cells],
                   n_paths=512, dtype="float64")
    assert np.all(tight.paths["capped_steps"] == 0)
    bad = np.zeros(fast.paths["drawdown_btc"].shape, bool)
    for var in ("drawdown_btc", "drawdown_alt", "drawdown_eq", "bank_loss", "banks_failed"):
        bad |= np.abs(fast.paths[var] - tight.paths[var]) > 1e-4
    assert bad.mean() <= 1e-3, (bad.sum(), bad.size)
    assert np.abs(fast.probs["p_systemic"] - tight.probs["p_systemic"]).max() <= 1 / 512
    assert fast.paths["cascade_rounds_max"].max() < tight.paths["cascade_rounds_max"].max()


@pytest.mark.parametrize("cell", [
    oct2025(),
    baseline()._replace(integration=1.0, leverage=1.8),
    baseline()._replace(integration=0.5, leverage=2.957),  # on the frontier: p ~ 0.45
], ids=["oct2025", "integrated", "frontier"])
def test_halving_the_step_moves_the_answer_little(cell):
    """15 -> 7.5-minute steps (trigger at the same hour): mean drawdowns move < 0.005;
    p_systemic < 0.1 on the frontier, where it moves by ~7 per unit of leverage (so the
    critical leverage moves < 0.015), and < 0.01 elsewhere. Independent draws (the step
    count changes them): add 3 standard errors."""
    half = cell._replace(step_hours=0.125, jump_step=8.0)
    a = _block([cell], n_paths=1024, paths=False)
    b = _block([half], n_paths=1024, n_steps=192, paths=False)
    for var in ("drawdown_btc", "drawdown_alt", "drawdown_eq"):
        se = np.hypot(a.stats[var][0, STAT_INDEX["se"]], b.stats[var][0, STAT_INDEX["se"]])
        assert abs(a.stats[var][0, MEAN] - b.stats[var][0, MEAN]) < 0.005 + 3 * se, var
    pa, pb = a.probs["p_systemic"][0], b.probs["p_systemic"][0]
    se = np.sqrt((pa * (1 - pa) + pb * (1 - pb)) / 1024)
    on_frontier = 0.05 < pa < 0.95
    assert abs(pa - pb) < (0.1 if on_frontier else 0.01) + 3 * se, (pa, pb)


def test_tightening_the_tolerance_changes_nothing_beyond_it():
    """tol 1e-6 -> 1e-9 in float64 moves per-path drawdowns by < 1e-5 on >= 99.9 % of
    paths (Oct 2025, leverage 2, integrated banks)."""
    cell = oct2025()._replace(leverage=2.0, integration=0.5)
    res = _block([cell, cell._replace(tol=1e-9)], n_paths=512, dtype="float64")
    diff = np.abs(res.paths["drawdown_btc"][0] - res.paths["drawdown_btc"][1])
    assert np.mean(diff > 1e-5) <= 1e-3, np.sort(diff)[-5:]


def test_random_valid_parameters_give_finite_outputs():
    """Cells drawn at random across the declared ranges of the sweepable scalars (float32,
    extreme depths, vols, jumps and leverage included) never produce NaN or inf."""
    rng = np.random.default_rng(11)
    names = ("leverage", "correlation", "fed_put", "integration", "vol_btc", "vol_alt",
             "vol_eq", "jump_btc", "jump_alt", "jump_eq", "kappa", "depth_floor",
             "resilience", "perm_share", "perp_holding_days", "bank_haircut", "run_threshold")
    hi = {"leverage": 3.0, "jump_btc": 0.5, "jump_alt": 0.5, "jump_eq": 0.3,
          "vol_btc": 3.0, "vol_alt": 3.0, "vol_eq": 2.0, "kappa": 5.0, "run_threshold": 2.0}
    lo = {"jump_btc": -0.9, "jump_alt": -0.9, "jump_eq": -0.5, "depth_floor": 0.01,
          "perp_holding_days": 0.5, "run_threshold": 0.01}
    cells = []
    for _ in range(8):
        d = {}
        for n in names:
            r = SPECS[n].range
            d[n] = float(rng.uniform(lo.get(n, r.low), hi.get(n, min(r.high, 1e3))))
        d["depth_btc"] = float(10 ** rng.uniform(6, 11))
        d["depth_alt"] = float(10 ** rng.uniform(6, 11))
        cells.append(make_params({**baseline()._asdict(), **d}))
    res = run_cells(cells, return_paths=True)
    for var, v in res.paths.items():
        assert np.all(np.isfinite(v)), var
    for name, p in res.probs.items():
        assert np.all(np.isfinite(p)), name


def test_zero_crypto_volatility_with_a_crash_is_finite():
    """vol_btc = vol_alt = 0 (allowed) with a 30 % trigger: the perp distance distribution
    degenerates to a point and must stay finite (a sinh form once gave 0 x inf)."""
    p = oct2025()._replace(vol_btc=0.0, vol_alt=0.0, jump_btc=-0.3, jump_alt=-0.4)
    res = run_cells([p], return_paths=True)
    for var, v in res.paths.items():
        assert np.all(np.isfinite(v)), var
    assert res.stats["liquidated_long"][0, MEAN] > 0


def test_nan_in_a_cell_becomes_nan_statistics_never_zero():
    """A NaN in one path's draws makes every statistic and probability of its cell NaN
    (p_systemic is never read as 0); the clean cell next to it is untouched."""
    p = oct2025()
    pj = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), p)
    normals = draw_normals(jax.random.key(0), 64, 24, 4, jnp.float32)
    dirty = normals.at[5, 3, 0].set(jnp.nan)
    from kernels.stats import cell_statistics

    run = jax.jit(lambda nm: cell_statistics(simulate.simulate_cell(pj, nm, 4), pj))
    clean_stats, clean_probs = run(normals)
    stats, probs = run(dirty)
    assert np.all(np.isnan(np.asarray(probs["p_systemic"])))
    assert np.all(np.isnan(np.asarray(stats["drawdown_btc"])))
    assert np.isfinite(np.asarray(clean_probs["p_systemic"]))
    assert np.all(np.isfinite(np.asarray(clean_stats["drawdown_btc"])))
