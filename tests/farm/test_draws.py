"""Sweeps over posterior draws: a last ``draw`` dimension whose cells take their draw's
uncertain parameter values (the specification: farm/plan/draws.py)."""

from __future__ import annotations

import numpy as np
import pytest
from _cube_helpers import cube_attrs

from farm.errors import ConfigError
from farm.plan.design import SweepSpec, cell_params, make_design
from farm.plan.draws import read_draws, with_draws
from farm.store.cube import create_cube
from kernels.params import ModelParams

DRAWS = {"bank_haircut": np.array([0.1, 0.2, 0.3]), "kappa": np.array([0.05, 0.1, 0.2])}


def _grid(block_cells: int = 4):
    spec = SweepSpec(method="grid", axes={"leverage": [1.0, 2.0], "integration": [0.0, 1.0]},
                     n_samples=0, csv=None, block_cells=block_cells, seed=0)
    return make_design(spec)


def test_the_draw_is_the_last_and_fastest_dimension():
    d = with_draws(_grid(), DRAWS, block_cells=4)
    assert d.cell_dims == ("leverage", "integration", "draw") and d.shape == (2, 2, 3)
    assert d.n_cells == 12
    # cell (leverage 2, integration 0, draw 1) is flat index (1*2 + 0)*3 + 1 = 7
    np.testing.assert_array_equal(d.table[7], [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(d.coords["bank_haircut"], DRAWS["bank_haircut"])
    assert d.to_attrs()["draws"] == {k: list(v) for k, v in DRAWS.items()}


def test_each_cell_takes_its_draws_parameters():
    d = with_draws(_grid(), DRAWS, block_cells=4)
    p = cell_params(ModelParams(), d, np.arange(d.n_cells))
    np.testing.assert_array_equal(p.bank_haircut, np.tile(DRAWS["bank_haircut"], 4))
    np.testing.assert_array_equal(p.kappa, np.tile(DRAWS["kappa"], 4))
    np.testing.assert_array_equal(p.leverage, np.repeat([1.0, 2.0], 6))
    np.testing.assert_array_equal(p.integration, np.tile(np.repeat([0.0, 1.0], 3), 2))


def test_read_draws_takes_the_first_n_rows_of_a_calibrations_posterior(tmp_path):
    (tmp_path / "posterior.csv").write_text(  # as farm calibrate writes it
        "bank_haircut,kappa,I_max,oct2025/liq\n0.1,0.05,1.2,2e10\n0.2,0.1,inf,nan\n"
        "0.3,0.2,0.4,3e10\n")
    got = read_draws(str(tmp_path), 2)
    np.testing.assert_array_equal(got["bank_haircut"], [0.1, 0.2])
    with pytest.raises(ConfigError, match=r"sweep\.posterior_draws=4.*at most the 3 draws"):
        read_draws(str(tmp_path), 4)


@pytest.mark.parametrize("text, key", [
    ("bank_haircut,not_a_parameter\n0.1,1\n", "sweep.posterior"),
    ("bank_haircut\nnan\n", "sweep.posterior"),
])
def test_a_bad_posterior_file_is_refused_naming_the_key(tmp_path, text, key):
    (tmp_path / "p.csv").write_text(text)
    with pytest.raises(ConfigError) as err:
        read_draws(str(tmp_path / "p.csv"), 1)
    assert err.value.key == key


def test_draws_need_a_grid_and_must_not_repeat_an_axis():
    spec = SweepSpec(method="lhs", axes={"leverage": [1.0, 2.0]}, n_samples=8, csv=None,
                     block_cells=4, seed=0)
    with pytest.raises(ConfigError, match="grid"):
        with_draws(make_design(spec), DRAWS, 4)
    with pytest.raises(ConfigError, match=r"sweep\.axes\.leverage"):
        with_draws(_grid(), {"leverage": np.array([1.0])}, 4)


def test_the_cube_of_a_draws_design_has_the_parameters_along_draw(tmp_path):
    d = with_draws(_grid(), DRAWS, block_cells=4)
    cube = create_cube(tmp_path / "d.zarr", d, cube_attrs(d))
    ds = cube.dataset()
    assert ds["p_systemic"].dims == ("leverage", "integration", "draw")
    assert ds["bank_haircut"].dims == ("draw",)
    np.testing.assert_array_equal(ds["kappa"].values, DRAWS["kappa"])


def _posterior(tmp_path):
    path = tmp_path / "calib"
    path.mkdir(exist_ok=True)
    (path / "posterior.csv").write_text(
        "bank_haircut,kappa,I_max,oct2025/liq\n0.1,0.05,1.2,2e10\n0.3,0.2,0.4,3e10\n")
    return path


def test_the_posterior_files_content_is_part_of_the_cubes_identity(tmp_path):
    from conftest import farm_cfg
    from farm.plan.identity import config_hash

    post = _posterior(tmp_path)
    cfg = farm_cfg(tmp_path, f"sweep.posterior={post}", "sweep.posterior_draws=2")
    before = config_hash(cfg)
    assert before != config_hash(farm_cfg(tmp_path))
    (post / "posterior.csv").write_text("bank_haircut,kappa\n0.1,0.05\n0.3,0.25\n")
    assert config_hash(cfg) != before


@pytest.mark.usefixtures("ray_local")
def test_a_run_over_draws_equals_the_kernel_at_each_draws_parameters(tmp_path):
    import jax

    import analysis
    from conftest import farm_cfg
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep
    from kernels import simulate_block

    cfg = farm_cfg(tmp_path, f"sweep.posterior={_posterior(tmp_path)}",
                   "sweep.posterior_draws=2")
    plan = make_plan(cfg)
    assert run_sweep(plan).ok
    ds = analysis.open_cube(str(tmp_path / "cube.zarr"))
    assert ds["p_systemic"].dims[-1] == "draw" and ds.sizes["draw"] == 2
    np.testing.assert_array_equal(ds["kappa"].values, [0.05, 0.2])
    cells = np.array([0, 1, 47])  # draws 0 and 1 of the first grid point, the last cell
    res = simulate_block(plan.cell_params(cells), key=jax.random.key(0), n_paths=32,
                         n_steps=24)
    assert np.asarray(plan.cell_params(cells).kappa).tolist() == [0.05, 0.2, 0.2]
    for j, c in enumerate(cells):
        idx = np.unravel_index(c, plan.design.shape)
        np.testing.assert_array_equal(ds["drawdown_btc"].values[idx], res.stats["drawdown_btc"][j])
    band = analysis.critical_leverage_uncertainty(ds, 0.5)
    assert band.attrs["n_draws"] == 2 and "parameter_band" in band
