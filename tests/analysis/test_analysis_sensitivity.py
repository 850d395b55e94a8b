"""analysis.sensitivity: Sobol indices against the analytical Ishigami values and the
grid ANOVA against closed-form shares.

Ishigami f = sin x1 + a sin^2 x2 + b x3^4 sin x1, x_i ~ U(-pi, pi), a = 7, b = 0.1:
S1 = (0.3139, 0.4424, 0), ST = (0.5576, 0.4424, 0.2437).
Tolerances (absolute, on every index): 0.03 for SALib's Saltelli estimator with
N = 1024 base samples (5120 cells; its bootstrap 95 % half-widths are ~0.05), 0.01
for the polynomial chaos estimator from 1024 LHS or scrambled-Sobol cells (it fits
Ishigami to ~1e-5 relative error, so the indices are accurate to ~1e-3).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import analysis
from analysis.sensitivity import saltelli_structure
from analysis.testing import write_synthetic_cube

A, B = 7.0, 0.1


def ishigami(x1, x2, x3, **_):
    return np.sin(x1) + A * np.sin(x2) ** 2 + B * x3**4 * np.sin(x1)


def ishigami_indices():
    pi = np.pi
    v1 = 0.5 * (1 + B * pi**4 / 5) ** 2
    v2 = A**2 / 8
    v13 = B**2 * pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return np.array([v1, v2, 0.0]) / v, np.array([v1 + v13, v2, v13]) / v


def _sampled_cube(path, X, method):
    samples = {f"x{i + 1}": X[:, i] for i in range(3)}
    write_synthetic_cube(
        path, {"bank_loss": ishigami}, samples=samples, method=method, block_cells=1024
    )
    return analysis.open_cube(path)


def test_analytical_values():
    s1, st = ishigami_indices()
    np.testing.assert_allclose(s1, [0.3139, 0.4424, 0.0], atol=1e-4)
    np.testing.assert_allclose(st, [0.5576, 0.4424, 0.2437], atol=1e-4)


def test_sobol_saltelli_cube_matches_ishigami(tmp_path):
    from SALib.sample import sobol as salib_sample

    problem = {"num_vars": 3, "names": ["x1", "x2", "x3"], "bounds": [[-np.pi, np.pi]] * 3}
    X = salib_sample.sample(problem, 1024, calc_second_order=False, seed=3)
    assert saltelli_structure(X) == 5
    ds = _sampled_cube(tmp_path / "saltelli.zarr", X, "sobol")
    res = analysis.sobol_indices(ds, "bank_loss", stat="mean")
    assert res.estimator == "saltelli" and res.n_cells == len(X)
    s1, st = ishigami_indices()
    np.testing.assert_allclose(res.S1.values, s1, atol=0.03)
    np.testing.assert_allclose(res.ST.values, st, atol=0.03)
    assert (res.S1_conf > 0).all()
    table = analysis.sensitivity(ds, "bank_loss")
    assert list(table.index) == ["x1", "x2", "x3"]  # sorted by total effect
    assert "saltelli" in table.attrs["method"]


@pytest.mark.parametrize("design", ["lhs", "sobol"])
def test_sobol_pce_generic_sample_matches_ishigami(tmp_path, design):
    engine = qmc.LatinHypercube(d=3, rng=5) if design == "lhs" else qmc.Sobol(d=3, rng=5)
    X = qmc.scale(engine.random(1024), [-np.pi] * 3, [np.pi] * 3)
    assert saltelli_structure(X) is None
    ds = _sampled_cube(tmp_path / f"{design}.zarr", X, design)
    res = analysis.sobol_indices(ds, "bank_loss", stat="mean")
    assert res.estimator == "pce" and res.loo_error < 1e-3
    s1, st = ishigami_indices()
    np.testing.assert_allclose(res.S1.values, s1, atol=0.01)
    np.testing.assert_allclose(res.ST.values, st, atol=0.01)
    with pytest.raises(ValueError, match="Saltelli"):
        analysis.sobol_indices(ds, "bank_loss", estimator="saltelli")


def test_grid_variance_decomposition_additive_and_interaction(tmp_path):
    grid = {"a": np.linspace(-1, 1, 5), "b": np.linspace(0, 2, 4), "c": np.array([0.0, 1.0])}
    # additive: Var(g_a) : Var(g_b) : Var(g_c) over the grid's equal-weight points
    ga, gb, gc = grid["a"] ** 2, 3 * grid["b"], 0.5 * grid["c"]
    va, vb, vc = ga.var(), gb.var(), gc.var()
    path = write_synthetic_cube(
        tmp_path / "anova.zarr",
        {
            "p_systemic": lambda a, b, c: a**2 + 3 * b + 0.5 * c,
            "p_btc_crash": lambda a, b, c: a + b + a * b,
        },
        grid=grid,
    )
    ds = analysis.open_cube(path)
    vd = analysis.variance_decomposition(ds, "p_systemic")
    total = va + vb + vc
    np.testing.assert_allclose(vd.main.values, [va / total, vb / total, vc / total], atol=1e-6)
    np.testing.assert_allclose(vd.total.values, vd.main.values, atol=1e-6)
    np.testing.assert_allclose(vd.interactions.values, 0.0, atol=1e-6)
    assert vd.variance == pytest.approx(total, rel=1e-5)
    # a + b + ab: interaction share = Var(a) Var(b) / V with centred a, b
    vi = analysis.variance_decomposition(ds, "p_btc_crash")
    a, b = grid["a"], grid["b"]
    v_a = ((1 + b.mean()) ** 2) * a.var()
    v_b = ((1 + a.mean()) ** 2) * b.var()
    v_ab = a.var() * b.var()
    v = v_a + v_b + v_ab
    assert vi.main["a"] == pytest.approx(v_a / v, abs=1e-6)
    assert vi.main["b"] == pytest.approx(v_b / v, abs=1e-6)
    assert vi.interactions["a:b"] == pytest.approx(v_ab / v, abs=1e-6)
    assert vi.total["a"] == pytest.approx((v_a + v_ab) / v, abs=1e-6)
    assert vi.main["c"] == pytest.approx(0.0, abs=1e-9) and vi.higher_order < 1e-6
    table = analysis.sensitivity(ds, "p_systemic")
    assert table.index[0] == "b" and "ANOVA" in table.attrs["method"]
    with pytest.raises(ValueError, match="sampled"):
        analysis.sobol_indices(ds, "p_systemic")
