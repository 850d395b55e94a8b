"""Critical leverage with a parameter band (over posterior draws) and a Monte Carlo band,
on synthetic cubes whose answer is known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

import analysis
from analysis.bands import (
    critical_leverage_sobol,
    critical_leverage_uncertainty,
    parameter_band,
)
from analysis.testing import write_synthetic_cube

LEV = np.linspace(0.5, 3.0, 51)  # spacing 0.05
INTEG = np.array([0.0, 0.5, 1.0])
N_DRAWS = 41
# the critical leverage of draw d at integration i: c = 1 + a_d + 0.5 * (1 - i), with
# a_d the draw's uncertain parameter, spread over [0, 1]
A = np.linspace(0.0, 1.0, N_DRAWS)


def _p(leverage, integration, draw):
    c = 1.0 + A[draw.astype(int)] + 0.5 * (1.0 - integration)
    return np.clip(0.5 + (leverage - c), 0.0, 1.0)  # linear: crossing exactly at c


@pytest.fixture(scope="module")
def draws_cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("bands") / "draws.zarr"
    write_synthetic_cube(path, {"p_systemic": _p}, bounds=True, n_paths=400,
                         grid={"leverage": LEV, "integration": INTEG,
                               "draw": np.arange(N_DRAWS, dtype=float)})
    ds = analysis.open_cube(str(path))
    unrelated = np.random.default_rng(1).permutation(A)  # a parameter that moves nothing
    return ds.assign_coords(exposure_scale=("draw", A), haircut=("draw", unrelated))


def test_parameter_band_is_the_quantiles_of_the_per_draw_critical_leverage(draws_cube):
    band = critical_leverage_uncertainty(draws_cube, 0.5)
    per_draw = band["critical"].sel(integration=1.0).values
    np.testing.assert_allclose(per_draw, 1.0 + A, atol=1e-6)
    q = band["parameter_band"].sel(integration=1.0)
    # 'lower' quantiles of 41 evenly spread values: draws 2, 20 and 38 of 0..40
    np.testing.assert_allclose(q.values, [1.0 + A[2], 1.5, 1.0 + A[38]], atol=1e-6)
    # integration 0 moves the whole band up by 0.5
    np.testing.assert_allclose(band["parameter_band"].sel(integration=0.0).values,
                               q.values + 0.5, atol=1e-6)


def test_monte_carlo_band_brackets_the_median_draw_and_is_narrow(draws_cube):
    band = critical_leverage_uncertainty(draws_cube, 0.5).sel(integration=1.0)
    lo, hi = float(band["mc_low"]), float(band["mc_high"])
    median = float(band["parameter_band"].sel(quantile=0.5))
    assert lo < median < hi
    # Wilson half-width at p = 0.5, n = 400 is ~0.049; slope 1 per unit of leverage
    assert 0.07 < hi - lo < 0.12
    # the parameter band (1.05 .. 1.95 wide 0.9) dominates the Monte Carlo band
    width = float(band["parameter_band"].sel(quantile=0.95) - band["parameter_band"].sel(
        quantile=0.05))
    assert width > 5 * (hi - lo)


def test_draws_that_never_tip_rank_beyond_the_range_not_dropped():
    crit = np.array([1.0, 1.2, np.nan, np.nan, np.nan])
    import xarray as xr

    q = parameter_band(xr.DataArray(crit, dims="draw"), q=(0.05, 0.5, 0.95))
    assert float(q.sel(quantile=0.05)) == 1.0
    assert np.isnan(float(q.sel(quantile=0.5)))  # most draws never tip: the median is beyond


def test_sobol_of_the_critical_leverage_names_the_parameter_that_moves_it(draws_cube):
    idx = critical_leverage_sobol(draws_cube, 0.5, fixed={"integration": 1.0})
    assert idx.S1["exposure_scale"] == pytest.approx(1.0, abs=1e-3)
    assert idx.ST["haircut"] == pytest.approx(0.0, abs=1e-3)


def test_a_cube_without_draws_says_its_parameter_band_is_not_measured(tmp_path):
    path = tmp_path / "one.zarr"
    write_synthetic_cube(path, {"p_systemic": lambda leverage, integration: np.clip(
        leverage - 1.0, 0, 1)}, grid={"leverage": LEV, "integration": INTEG}, bounds=True)
    band = critical_leverage_uncertainty(analysis.open_cube(str(path)), 0.5)
    assert "parameter_band" not in band
    assert band.attrs["parameter_uncertainty"].startswith("none")


def test_the_report_of_a_draws_cube_states_both_bands(draws_cube, tmp_path):
    from analysis.report import build_report

    out = build_report(draws_cube, tmp_path / "r.html", channels=False)
    text = out.read_text()
    assert "Parameter uncertainty (posterior draws)" in text
    # neutral integration 0 (the card's table): c = 1.5 + a_d, draws 2, 20, 38 of 0..40
    assert ("critical leverage is 2.00 at the median of 41 posterior draws, with a "
            "parameter band (5-95 %) of 1.55 to 2.45") in text
    assert "Monte Carlo band (95 %)" in text and "exposure_scale" in text


def test_frontier_band_contours_the_quantiles_over_draws(draws_cube):
    from analysis.bands import frontier_band

    bands = frontier_band(draws_cube, "leverage", "integration", 0.5)
    # at integration i the q-quantile draw tips at c = 1 + a_q + 0.5 (1 - i); p is linear in
    # leverage with slope 1, so the quantile surface crosses 0.5 exactly there
    for q, a_q in ((0.5, 0.5), (0.05, 0.95), (0.95, 0.05)):  # low p: late tipping
        pts = bands[q].values
        want = 1.0 + a_q + 0.5 * (1.0 - pts[:, 1])
        np.testing.assert_allclose(pts[:, 0], want, atol=0.03)
    # the fragile edge (0.95 quantile of p) tips at lower leverage than the median
    assert bands[0.95].values[:, 0].mean() < bands[0.5].values[:, 0].mean()
