"""Blocks, compilation, seeding and bad input of the jitted block entry point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import PROPERTY_PATHS, PROPERTY_STEPS, cells_from, run_cells
from kernels import COMPILE_COUNTER, make_params, simulate_block, stack_params
from kernels.params import baseline, oct2025
from kernels.shocks import draw_normals, exogenous_returns, step_vols


def _cells():
    return cells_from(oct2025(), leverage=[0.5, 1.0, 2.0, 3.0], integration=[0, 0.3, 0.6, 1.0])


def test_block_equals_each_cell_alone_bit_for_bit():
    cells = _cells()
    block = run_cells(cells)
    for i, cell in enumerate(cells):
        alone = simulate_block(stack_params([cell]), key=jax.random.key(0),
                               n_paths=PROPERTY_PATHS, n_steps=PROPERTY_STEPS)
        for var, v in alone.stats.items():
            np.testing.assert_array_equal(v[0], block.stats[var][i], err_msg=var)
        for name, v in alone.probs.items():
            assert v[0] == block.probs[name][i]


def test_second_call_with_same_shapes_does_not_recompile():
    run_cells(_cells())  # warm (may compile)
    before = COMPILE_COUNTER["simulate_block"]
    run_cells(cells_from(baseline(), leverage=[0.1, 0.2]))  # other values, same shapes
    run_cells(_cells(), seed=3)  # other key, same shapes
    assert COMPILE_COUNTER["simulate_block"] == before


def test_common_random_numbers_identical_cells_identical_results():
    res = run_cells([oct2025(), oct2025()])
    for var, v in res.stats.items():
        np.testing.assert_array_equal(v[0], v[1], err_msg=var)


def test_path_draws_depend_only_on_key_and_path_index(getkey):
    key = getkey()
    a = draw_normals(key, 10, 8, 4)
    b = draw_normals(key, 4, 8, 4)
    c = draw_normals(key, 6, 8, 4, path_offset=4)
    np.testing.assert_array_equal(a[:4], b)
    np.testing.assert_array_equal(a[4:], c)


def test_shocks_have_unit_variance_and_the_requested_correlation():
    """200k draws, seed 1: standard errors ~0.005 (variance of t(4) has a heavy tail,
    so variance is checked to 5 %), correlations to 0.02."""
    p = make_params({**baseline()._asdict(), "correlation": 0.6,
                     "jump_btc": 0.0, "jump_alt": 0.0, "jump_eq": 0.0})
    z = draw_normals(jax.random.key(1), 2000, 100, 4, jnp.float64)
    r = np.asarray(exogenous_returns(z, jax.tree.map(jnp.asarray, p), 4)).reshape(-1, 3)
    sigma = np.asarray(step_vols(jax.tree.map(jnp.asarray, p)))  # the kernel's per-step vols
    u = r / sigma
    np.testing.assert_allclose(u.var(axis=0), 1.0, rtol=0.05)
    c = np.corrcoef(u.T)
    assert abs(c[0, 2] - 0.6) < 0.02 and abs(c[0, 1] - p.rho_ca) < 0.02
    assert abs(c[1, 2] - p.rho_ca * 0.6) < 0.02
    kurt = np.mean(u[:, 0] ** 4) / np.mean(u[:, 0] ** 2) ** 2
    assert kurt > 4.0  # fat tails (normal: 3)


def test_independent_seeding_uses_one_key_per_cell():
    cells = [oct2025(), oct2025()]
    keys = jax.random.split(jax.random.key(0), 2)
    res = simulate_block(stack_params(cells), key=keys, n_paths=64, n_steps=16)
    assert not np.array_equal(res.stats["drawdown_btc"][0], res.stats["drawdown_btc"][1])


@pytest.mark.parametrize(("override", "fragment"), [
    ({"leverage": -1.0}, "leverage=-1 is out of range; allowed: [0, 10]"),
    ({"correlation": 1.5}, "correlation=1.5 is out of range; allowed: [-1, 1]"),
    ({"fed_put": 2.0}, "fed_put=2 is out of range; allowed: [0, 1]"),
    ({"integration": -0.1}, "integration=-0.1 is out of range; allowed: [0, 1]"),
    ({"defi_close_factor": 1.2}, "defi_close_factor=1.2 is out of range"),
    ({"correlation": 0.9, "corr_alt_eq": -0.9}, "not positive semi-definite"),
    ({"perp_long_weights": [0.5, 0.5]}, "perp_long_weights has 2 entries"),
    ({"perp_long_weights": [0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.02, 0.02]},
     "perp_long_weights sums to 0.99; allowed: weights that sum to 1"),
    ({"fund_capital": 0.0}, "fund_capital=0 is out of range; allowed: [1e+06, 1e+14] (USD)"),
    ({"jump_btc": float("nan")}, "jump_btc=nan is out of range; allowed: [-3, 3]"),
    ({"no_such_param": 1.0}, "unknown model parameter 'no_such_param'"),
    ({"depth_btc": 0.0}, "depth_btc=0 is out of range"),
])
def test_bad_parameters_raise_clear_value_errors(override, fragment):
    with pytest.raises(ValueError) as err:
        make_params({**baseline()._asdict(), **override})
    assert fragment in str(err.value)


def test_bad_block_arguments_raise_clear_value_errors():
    blk = stack_params([baseline()])
    with pytest.raises(ValueError, match=r"n_paths=0 is out of range; allowed: an integer >= 1"):
        simulate_block(blk, key=jax.random.key(0), n_paths=0)
    with pytest.raises(ValueError, match="n_steps=0"):
        simulate_block(blk, key=jax.random.key(0), n_paths=4, n_steps=0)
    with pytest.raises(ValueError, match="dtype='float16' is not allowed"):
        simulate_block(blk, key=jax.random.key(0), n_paths=4, dtype="float16")
    bad = blk._replace(correlation=np.array([1.2]))
    with pytest.raises(ValueError, match=r"correlation=1.2 is out of range; allowed: \[-1, 1\]"):
        simulate_block(bad, key=jax.random.key(0), n_paths=4)
