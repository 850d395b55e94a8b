"""The waves of an adaptive sweep (farm.adaptive.waves) on a synthetic model with a known
frontier, and the validation of ``sweep.adaptive``.

Synthetic model over the box leverage [0, 3] x integration [0, 1]:
p = Phi((leverage - c(integration)) / 0.15), c = 2.5 - 1.5 integration, so the true
critical leverage at level 0.5 is c(integration), and each cell's k is a binomial draw
of ``PATHS`` paths. Tolerances are stated where they are asserted.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from farm.adaptive.waves import CellsSoFar, fit_cells, next_wave
from farm.errors import ConfigError
from farm.plan.adaptivespec import adaptive_spec
from farm.plan.design import initial_unit_design

LO, HI, PATHS, LEVEL = np.array([0.0, 0.0]), np.array([3.0, 1.0]), 64, 0.5
SETTINGS = dict(var="p_systemic", level=LEVEL, initial_cells=64, wave_cells=32,
                block_cells=8, max_cells=1024, max_waves=16, max_paths=4 * PATHS,
                paths_share=0.5, stop_flips=0.002, stop_waves=2, max_minutes=0,
                candidates=4096)


def _critical(integration):
    return 2.5 - 1.5 * np.asarray(integration)


def _p(rows):
    return norm.cdf((rows[:, 0] - _critical(rows[:, 1])) / 0.15)


def _simulate(rows, replicate, rng):
    return rng.binomial(PATHS, _p(rows)).astype(float)


def _waves(n_waves, seed=0):
    spec = adaptive_spec(SETTINGS, PATHS, {"leverage": [0, 3], "integration": [0, 1]})
    rng = np.random.default_rng(seed)
    table = LO + initial_unit_design(spec.initial_cells, 2, seed) * (HI - LO)
    rep = np.zeros(len(table), int)
    k = _simulate(table, rep, rng)
    picks = []
    for wave in range(2, n_waves + 1):
        cells = CellsSoFar(table, rep, k, PATHS, LO, HI)
        pick = next_wave(cells, fit_cells(cells, seed), spec, wave, seed, spec.wave_cells)
        picks.append(pick)
        table = np.vstack([table, pick.rows])
        rep = np.r_[rep, pick.replicate]
        k = np.r_[k, _simulate(pick.rows, pick.replicate, rng)]
    cells = CellsSoFar(table, rep, k, PATHS, LO, HI)
    return spec, cells, picks


def test_waves_recover_the_known_frontier_and_put_most_cells_near_it():
    _, cells, picks = _waves(8)
    # most new points of the later waves sit near the frontier: within 0.3 in leverage
    # of it (a band holding 20 % of the box), >= 75 % of waves 5-8's new points
    new = np.vstack([p.rows[p.replicate == 0] for p in picks[3:]])
    near = np.abs(new[:, 0] - _critical(new[:, 1])) < 0.3
    assert near.mean() >= 0.75, near.mean()
    # the surrogate's critical leverage is within 0.1 of the truth at every integration
    # in [0.05, 0.95] (0.1 = half the grid's leverage step; the Monte Carlo error of
    # 64-path cells moves the fitted crossing by a few hundredths)
    fit = fit_cells(cells, 0)
    lev = np.linspace(0, 3, 601)
    for integ in np.linspace(0.05, 0.95, 10):
        u = np.column_stack([lev / 3, np.full_like(lev, integ)])
        p = fit.probability(u)[0]
        found = lev[np.argmax(p >= LEVEL)]
        assert abs(found - _critical(integ)) < 0.1, (integ, found)


def test_more_paths_come_in_whole_blocks_of_one_replicate_at_earlier_points():
    spec, cells, picks = _waves(6)
    extra = [p for p in picks if p.more_paths]
    assert extra, "no wave added paths"
    for p in picks:
        assert len(p.rows) % spec.block_cells == 0
        assert len(p.rows) <= spec.wave_cells
        assert p.more_paths <= spec.paths_share * spec.wave_cells
        blocks = p.replicate.reshape(-1, spec.block_cells)
        assert np.all(blocks == blocks[:, :1])  # one replicate per block
    # every extra-path cell repeats an earlier point exactly, and no point gets more
    # than max_paths in all
    rows, _, n, count = cells.pooled
    assert n.max() <= spec.max_paths
    assert count.max() >= 2
    # replicate r of a point is its r-th extra set of paths: 0..count-1 at every point
    for row, c in zip(rows, count, strict=True):
        reps = np.sort(cells.replicate[np.all(cells.table == row, axis=1)])
        assert reps.tolist() == list(range(c))


def test_the_same_cells_give_the_same_wave():
    a, b = _waves(4)[2], _waves(4)[2]
    for pa, pb in zip(a, b, strict=True):
        np.testing.assert_array_equal(pa.rows, pb.rows)
        np.testing.assert_array_equal(pa.replicate, pb.replicate)


@pytest.mark.parametrize(("key", "value", "allowed"), [
    ("var", "p_nothing", "p_systemic"),
    ("level", 1.0, "strictly between 0 and 1"),
    ("level", float("nan"), "strictly between 0 and 1"),
    ("wave_cells", 20, "multiple of sweep.adaptive.block_cells=8"),
    ("initial_cells", 4, "an integer >= 8"),
    ("max_cells", 32, "sweep.adaptive.initial_cells=64"),
    ("max_paths", 10, "sweep.paths=64"),
    ("paths_share", 1.5, "a share in [0, 1]"),
    ("stop_waves", 0, "an integer >= 1"),
    ("max_minutes", -1, "minutes >= 0"),
    ("candidates", 3, "sweep.adaptive.wave_cells=32"),
])
def test_bad_settings_name_the_key_the_value_and_what_is_allowed(key, value, allowed):
    with pytest.raises(ConfigError) as err:
        adaptive_spec({**SETTINGS, key: value}, PATHS)
    text = str(err.value)
    assert f"sweep.adaptive.{key}" in text and allowed in text, text
    assert "\n" not in text


def test_the_dry_run_states_the_waves_budgets_and_stopping_rule(capsys):
    from conftest import run_cli

    code, out, err = run_cli(capsys, "run", "--dry-run", "sweep=adaptive")
    assert code == 0, err
    assert "design   : adaptive over leverage" in out and "cells    : 256" in out
    assert "adaptive : wave 1 is the 256 cells above; then waves of 128 cells" in out
    assert "budget   : <= 2048 cells" in out and "<= 16 waves" in out
    assert "stops    : when 2 wave(s) in a row move the frontier at < 0.2 %" in out


def test_replicate_seeds_are_the_seed_itself_then_distinct_32_bit_seeds():
    from kernels.keys import SEED_MAX, replicate_seed

    assert replicate_seed(7, 0) == 7
    seeds = [replicate_seed(7, r) for r in range(1, 200)]
    assert len(set(seeds)) == len(seeds) and 7 not in seeds
    assert all(0 <= s <= SEED_MAX for s in seeds)
    assert replicate_seed(7, 3) == replicate_seed(7, 3) != replicate_seed(8, 3)
    with pytest.raises(ValueError, match="replicate=-1"):
        replicate_seed(7, -1)
