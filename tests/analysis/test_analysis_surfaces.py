"""analysis.surfaces: slices, critical leverage and frontiers on planted answers.

The planted p_systemic is a logistic in leverage whose midpoint moves with the
other axes: L0(r, f) = 1.73 - 0.6 r + 0.25 f, so the critical leverage at level 0.5
is exactly L0 (between grid points, so interpolation is exercised).
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import analysis
from analysis.testing import write_synthetic_cube


def l0(integration, fed_put=0.0):
    return 1.73 - 0.6 * integration + 0.25 * fed_put


def p_sys(leverage, integration, fed_put=0.0, **_):
    return 1.0 / (1.0 + np.exp(-5.0 * (leverage - l0(integration, fed_put))))


GRID = {
    "leverage": np.linspace(0.0, 3.0, 31),
    "integration": np.linspace(0.0, 1.0, 6),
    "fed_put": np.array([0.0, 0.5, 1.0]),
}


@pytest.fixture(scope="module")
def grid_ds(tmp_path_factory):
    path = tmp_path_factory.mktemp("surf") / "grid.zarr"
    dd = {"drawdown_eq": lambda leverage, fed_put, **_: 0.1 * leverage * (1 - 0.5 * fed_put)}
    write_synthetic_cube(path, {"p_systemic": p_sys, **dd}, grid=GRID)
    return analysis.open_cube(path)


@pytest.fixture(scope="module")
def sampled_ds(tmp_path_factory):
    from scipy.stats import qmc

    u = qmc.LatinHypercube(d=2, rng=1).random(1500)
    samples = {"leverage": 3.0 * u[:, 0], "integration": u[:, 1]}
    path = tmp_path_factory.mktemp("surf") / "lhs.zarr"
    write_synthetic_cube(path, {"p_systemic": p_sys}, samples=samples)
    return analysis.open_cube(path)


def test_critical_leverage_grid_recovers_planted_crossing(grid_ds):
    cl = analysis.critical_leverage(grid_ds, level=0.5, var="p_systemic")
    assert cl.dims == ("integration", "fed_put") and cl.name == "critical_leverage"
    r, f = np.meshgrid(GRID["integration"], GRID["fed_put"], indexing="ij")
    # linear interpolation of a logistic across its midpoint: error << grid step 0.1
    np.testing.assert_allclose(cl.values, l0(r, f), atol=5e-3)
    pinned = analysis.critical_leverage(grid_ds, fixed={"fed_put": 0.0, "integration": 1.0})
    assert pinned.ndim == 0 and float(pinned) == pytest.approx(l0(1.0), abs=5e-3)


def test_critical_leverage_never_reached_and_already_reached():
    lev = np.linspace(0.0, 3.0, 7)
    da = xr.DataArray(
        np.stack([lev / 10, np.full(7, 0.9), lev / 3]),
        dims=("integration", "leverage"),
        coords={"integration": [0.0, 0.5, 1.0], "leverage": lev},
    )
    cl = analysis.critical_leverage(da, level=0.5)
    assert np.isnan(cl.values[0])  # max 0.3: never reaches 0.5
    assert cl.values[1] == 0.0  # already above at the smallest leverage
    assert cl.values[2] == pytest.approx(1.5)


def test_frontier_grid_lies_on_the_planted_curve(grid_ds):
    fr = analysis.frontier(grid_ds, "leverage", "integration", level=0.5, fixed={"fed_put": 0.5})
    assert fr.dims == ("point", "coord") and list(fr["coord"].values) == ["leverage", "integration"]
    assert fr.sizes["point"] >= 6 and set(fr["segment"].values) == {0}
    lev, integ = fr.values[:, 0], fr.values[:, 1]
    np.testing.assert_allclose(lev, l0(integ, 0.5), atol=5e-3)
    assert integ.min() == pytest.approx(0.0) and integ.max() == pytest.approx(1.0)
    # where the contour crosses a grid line of integration it equals critical_leverage
    cl = analysis.critical_leverage(grid_ds, fixed={"fed_put": 0.5})
    for r in GRID["integration"]:
        on_line = np.isclose(integ, r)
        assert on_line.any()
        assert lev[on_line][0] == pytest.approx(float(cl.sel(integration=r)), abs=1e-9)
    none = analysis.frontier(grid_ds, "leverage", "integration", level=1.5)
    assert none.shape == (0, 2)


def test_surface_grid_fixed_and_reduced(grid_ds):
    s = analysis.surface(grid_ds, "p_systemic", "leverage", "integration", fixed={"fed_put": 0.4})
    assert s.dims == ("integration", "leverage") and s.shape == (6, 31)
    assert s.attrs["fixed"] == {"fed_put": 0.5}  # nearest grid value
    expected = p_sys(*np.meshgrid(GRID["leverage"], GRID["integration"]), fed_put=0.5)
    np.testing.assert_allclose(s.values, expected, rtol=1e-5)
    m = analysis.surface(grid_ds, "drawdown_eq", "leverage", "fed_put", stat="mean")
    assert m.attrs["reduced"] == ["integration"] and m.attrs["units"] == "fraction"
    np.testing.assert_allclose(m.sel(leverage=2.0, fed_put=1.0), 0.1, rtol=1e-5)
    mx = analysis.surface(grid_ds, "p_systemic", "leverage", "fed_put", reduce="max")
    assert float(mx.sel(leverage=1.5, fed_put=0.0)) == pytest.approx(p_sys(1.5, 1.0), rel=1e-5)
    assert analysis.value_at(
        grid_ds, "p_systemic", {"leverage": 1.73, "integration": 0.0, "fed_put": 0.0}
    ) == pytest.approx(p_sys(1.7, 0.0), rel=1e-5)
    with pytest.raises(KeyError, match="correlation"):
        analysis.surface(grid_ds, "p_systemic", "leverage", "correlation")


def test_profile_grid(grid_ds):
    prof = analysis.profile(
        grid_ds, "p_systemic", "leverage", fixed={"integration": 0.0, "fed_put": 0.0}
    )
    assert prof.dims == ("leverage",)
    np.testing.assert_allclose(prof.values, p_sys(GRID["leverage"], 0.0), rtol=1e-5)


@pytest.mark.parametrize("method", ["linear", "local", "bin"])
def test_sampled_surface_and_frontier(sampled_ds, method):
    s = analysis.surface(
        sampled_ds, "p_systemic", "leverage", "integration", method=method, resolution=25
    )
    assert s.dims == ("integration", "leverage") and s.shape == (25, 25)
    fr = analysis.frontier(s, level=0.5)
    lev, integ = fr.values[:, 0], fr.values[:, 1]
    tol = {"linear": 0.02, "local": 0.02, "bin": 0.06}[method]
    assert np.abs(lev - l0(integ)).max() < tol


def test_sampled_critical_leverage(sampled_ds):
    cl = analysis.critical_leverage(sampled_ds, resolution={"leverage": 61, "integration": 11})
    assert cl.dims == ("integration",)
    np.testing.assert_allclose(cl.values, l0(cl["integration"].values), atol=0.03)
    one = analysis.critical_leverage(sampled_ds, fixed={"integration": 0.5})
    assert float(one) == pytest.approx(l0(0.5), abs=0.03)
    p = analysis.value_at(sampled_ds, "p_systemic", {"leverage": 2.0, "integration": 0.25})
    assert p == pytest.approx(p_sys(2.0, 0.25), abs=0.02)
