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
    (tmp_path / "posterior.csv").write_text("bank_haircut,kappa\n0.1,0.05\n0.2,0.1\n0.3,0.2\n")
    got = read_draws(str(tmp_path), 2)
    np.testing.assert_array_equal(got["bank_haircut"], [0.1, 0.2])
    with pytest.raises(ConfigError, match=r"sweep\.posterior_draws=4.*at most the 3 draws"):
        read_draws(str(tmp_path), 4)


@pytest.mark.parametrize("text, key", [
    ("bank_haircut,not_a_parameter\n0.1,1\n", "calibration"),
    ("bank_haircut\nnan\n", "calibration"),
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
