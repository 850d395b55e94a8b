"""analysis.discovery: PRIM recovers planted boxes of systemic cells."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import qmc

import analysis
from analysis.testing import write_synthetic_cube


def planted(leverage, integration, correlation, **_):
    """Systemic (p = 0.9) inside leverage in [1.2, 2.4] and integration >= 0.6, else 0.1."""
    eps = 1e-9  # grid values such as 2.4000000000000004 belong inside
    inside = (leverage >= 1.2 - eps) & (leverage <= 2.4 + eps) & (integration >= 0.6 - eps)
    return np.where(inside, 0.9, 0.1) + 0.0 * correlation


def test_prim_recovers_planted_box_in_sampled_cube(tmp_path):
    u = qmc.LatinHypercube(d=3, rng=2).random(3000)
    samples = {"leverage": 3 * u[:, 0], "integration": u[:, 1], "correlation": 2 * u[:, 2] - 1}
    path = write_synthetic_cube(tmp_path / "prim.zarr", {"p_systemic": planted}, samples=samples)
    ds = analysis.open_cube(path)
    boxes = analysis.prim_boxes(ds, "p_systemic", threshold=0.5, density_threshold=1.0)
    assert len(boxes) == 1
    box = boxes[0]
    assert set(box.restricted) == {"leverage", "integration"}  # correlation is irrelevant
    # limits are the extreme cells inside: within one cell spacing (3/3000 x range)
    assert box.limits["leverage"][0] == pytest.approx(1.2, abs=0.02)
    assert box.limits["leverage"][1] == pytest.approx(2.4, abs=0.02)
    assert box.limits["integration"][0] == pytest.approx(0.6, abs=0.01)
    assert box.limits["integration"][1] == pytest.approx(1.0, abs=0.01)
    assert box.coverage > 0.97 and box.density > 0.97
    true_mass = (2.4 - 1.2) / 3 * 0.4
    assert box.mass == pytest.approx(true_mass, abs=0.01)
    traj = box.trajectory
    assert list(traj.columns) == ["coverage", "density", "mass", "n_restricted"]
    assert traj["mass"].is_monotonic_decreasing and traj["density"].iloc[0] < 0.2
    # a lower density threshold trades density for coverage, within the threshold
    loose = analysis.prim_boxes(ds, density_threshold=0.9)[0]
    assert loose.density >= 0.9 and loose.coverage >= box.coverage
    table = analysis.boxes_table(boxes)
    assert list(table.columns) == ["coverage", "density", "mass", "leverage", "integration"]


def test_prim_grid_and_default_density_threshold(tmp_path):
    grid = {
        "leverage": np.linspace(0, 3, 16),
        "integration": np.linspace(0, 1, 11),
        "correlation": np.array([-0.5, 0.5]),
    }
    path = write_synthetic_cube(tmp_path / "g.zarr", {"p_systemic": planted}, grid=grid)
    ds = analysis.open_cube(path)
    strict = analysis.prim_boxes(ds, density_threshold=1.0)
    assert strict[0].density == 1.0 and strict[0].coverage == 1.0
    assert strict[0].limits["leverage"] == pytest.approx((1.2, 2.4))
    assert strict[0].limits["integration"] == pytest.approx((0.6, 1.0))
    loose = analysis.prim_boxes(ds)  # default: density >= 0.8, highest coverage
    assert loose[0].density >= 0.8 and loose[0].coverage == 1.0


def test_prim_two_boxes_and_nothing_to_find():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (4000, 2))
    pos = ((X[:, 0] < 0.25) & (X[:, 1] < 0.25)) | ((X[:, 0] > 0.7) & (X[:, 1] > 0.7))
    boxes = analysis.prim(X, pos, ["a", "b"], density_threshold=0.95, max_boxes=3)
    assert len(boxes) == 2
    assert sum(b.coverage for b in boxes) > 0.95
    lows = sorted(round(b.limits["a"][0], 1) for b in boxes)
    assert lows == [0.0, 0.7]
    assert analysis.prim(X, np.zeros(len(X), bool), ["a", "b"]) == []
