"""analysis.discovery: PRIM (the ``prim`` package, wrapped) recovers planted boxes.

Cross-check of the package against the hand-written PRIM it replaced (details in the
docstring of analysis/discovery.py): on results/sweep-default.zarr (p_systemic >= 0.5,
a staircase in leverage x integration) both give the same box at density thresholds
1.0, 0.8 and 0.5 (default 0.8: leverage 1.6..3, integration 0.8..1, coverage 0.824,
density 0.875); on the planted grid below both give exactly 1.2..2.4 x 0.6..1; on the
3000 LHS cells below, at density 0.9, old 1.199..2.447 x 0.602..1 and new 1.196..2.438 x
0.599..1 (both coverage 1, density 0.969), at density 1.0 old coverage 1 and new 0.882
(leverage 1.258..2.347: the package pastes only while density rises).
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from scipy.stats import qmc

import analysis
from analysis import discovery
from analysis.testing import write_synthetic_cube


def planted(leverage, integration, correlation, **_):
    """Systemic (p = 0.9) inside leverage in [1.2, 2.4] and integration >= 0.6, else 0.1."""
    eps = 1e-9  # grid values such as 2.4000000000000004 belong inside
    inside = (leverage >= 1.2 - eps) & (leverage <= 2.4 + eps) & (integration >= 0.6 - eps)
    return np.where(inside, 0.9, 0.1) + 0.0 * correlation


def step(leverage, integration, correlation, **_):
    """Known answer: systemic exactly where leverage >= 1.8 and integration >= 0.5."""
    eps = 1e-9
    return np.where((leverage >= 1.8 - eps) & (integration >= 0.5 - eps), 1.0, 0.0) + 0 * (
        correlation
    )


def test_prim_package_api():
    """Everything analysis.discovery uses from ``prim``; a change there fails here."""
    import prim as package

    params = inspect.signature(package.Prim).parameters
    for name in ("x", "y", "obj_func", "peel_alpha", "paste_alpha", "mass_min"):
        assert name in params, name
    for name in discovery.OBJECTIVES:
        assert callable(getattr(package, name)), name
    # known answer on a grid: positives exactly where a >= 0.5 and b >= 0.3
    a, b = np.meshgrid(np.linspace(0, 1, 11), np.linspace(0, 1, 11), indexing="ij")
    x = pd.DataFrame({"a": a.ravel(), "b": b.ravel()})
    y = (x["a"] >= 0.5 - 1e-9).to_numpy() & (x["b"] >= 0.3 - 1e-9).to_numpy()
    p = package.Prim(
        x, y, obj_func=discovery._patient(package, "lenient1"), peel_alpha=0.05,
        paste_alpha=0.05, mass_min=0.05,
    )  # fmt: skip
    box = p.find_box()
    traj = box.peeling_trajectory
    assert {"coverage", "density", "mass", "res dim"} <= set(traj.columns)
    assert traj["mass"].iloc[0] == 1.0 and traj["coverage"].iloc[0] == 1.0
    hit = traj.index[(traj["density"] == 1.0) & (traj["coverage"] == 1.0)]
    assert len(hit) == 1
    box.select(int(hit[0]))
    assert box.coverage == 1.0 and box.density == 1.0
    assert sorted(np.asarray(box.yi)) == sorted(np.flatnonzero(y))  # yi: rows inside
    lim = box.limits  # restricted axes only, cut halfway between grid values
    assert set(lim.index) == {"a", "b"} and {"min", "max"} <= set(lim.columns)
    assert 0.4 < lim.at["a", "min"] <= 0.5 and 0.2 < lim.at["b", "min"] <= 0.3
    assert p.find_box() is not None  # covering: the next box, on the cells left
    # as shipped, lenient1 stops at the first step where no peel gains (why _patient)
    rng = np.random.default_rng(0)
    u = rng.uniform(0, 1, (4000, 2))
    corners = ((u[:, 0] < 0.25) & (u[:, 1] < 0.25)) | ((u[:, 0] > 0.7) & (u[:, 1] > 0.7))
    plain = package.Prim(pd.DataFrame(u, columns=["a", "b"]), corners).find_box()
    assert len(plain.peeling_trajectory) == 1


@pytest.mark.parametrize("density_threshold", [1.0, 0.8])
def test_prim_known_answer_step_grid(tmp_path, density_threshold):
    grid = {
        "leverage": np.linspace(0, 3, 16),  # step 0.2
        "integration": np.linspace(0, 1, 11),  # step 0.1
        "correlation": np.array([-0.5, 0.0, 0.5]),
    }
    path = write_synthetic_cube(tmp_path / "s.zarr", {"p_systemic": step}, grid=grid)
    box = analysis.prim_boxes(analysis.open_cube(path), density_threshold=density_threshold)[0]
    assert set(box.restricted) == {"leverage", "integration"}
    assert box.limits["leverage"] == pytest.approx((1.8, 3.0), abs=0.2)
    assert box.limits["integration"] == pytest.approx((0.5, 1.0), abs=0.1)
    assert box.limits["correlation"] == (-0.5, 0.5)
    assert box.coverage > 0.95 and box.density > 0.95
    # in fact exact, as with the old PRIM: 1.8..3 x 0.5..1, coverage 1, density 1
    assert (box.n_cells, box.n_positive) == (7 * 6 * 3, 7 * 6 * 3)


def test_prim_known_answer_step_sampled(tmp_path):
    u = qmc.Sobol(d=3, rng=3).random(2048)
    samples = {"leverage": 3 * u[:, 0], "integration": u[:, 1], "correlation": 2 * u[:, 2] - 1}
    path = write_synthetic_cube(tmp_path / "s.zarr", {"p_systemic": step}, samples=samples)
    ds = analysis.open_cube(path)
    assert "cell" in ds.dims
    box = analysis.prim_boxes(ds)[0]  # old and new: 1.758..3 x 0.492..1, density 0.949
    assert set(box.restricted) == {"leverage", "integration"}
    assert box.limits["leverage"][0] == pytest.approx(1.8, abs=0.06)
    assert box.limits["integration"][0] == pytest.approx(0.5, abs=0.02)
    assert box.coverage == 1.0 and box.density > 0.9


def test_prim_recovers_planted_box_in_sampled_cube(tmp_path):
    u = qmc.LatinHypercube(d=3, rng=2).random(3000)
    samples = {"leverage": 3 * u[:, 0], "integration": u[:, 1], "correlation": 2 * u[:, 2] - 1}
    path = write_synthetic_cube(tmp_path / "prim.zarr", {"p_systemic": planted}, samples=samples)
    ds = analysis.open_cube(path)
    box = analysis.prim_boxes(ds, "p_systemic", threshold=0.5, density_threshold=0.9)[0]
    assert set(box.restricted) == {"leverage", "integration"}  # correlation is irrelevant
    # limits are the extreme cells inside (new 1.196..2.438 x 0.599..1, old 1.199..2.447)
    assert box.limits["leverage"] == pytest.approx((1.2, 2.4), abs=0.05)
    assert box.limits["integration"] == pytest.approx((0.6, 1.0), abs=0.01)
    assert box.coverage == 1.0 and box.density >= 0.9
    true_mass = (2.4 - 1.2) / 3 * 0.4
    assert box.mass == pytest.approx(true_mass, abs=0.015)
    traj = box.trajectory
    assert list(traj.columns) == ["coverage", "density", "mass", "n_restricted"]
    low = int(traj["mass"].argmin())  # peeling down to here, then pasting
    assert traj["mass"].iloc[: low + 1].is_monotonic_decreasing
    assert traj["mass"].iloc[low:].is_monotonic_increasing
    assert traj["density"].iloc[0] < 0.2 and traj.loc[box.selected, "coverage"] == 1.0
    # density 1 only inside the planted box: tighter (old: coverage 1 by pasting)
    strict = analysis.prim_boxes(ds, density_threshold=1.0)
    assert len(strict) == 1 and strict[0].density == 1.0 and strict[0].coverage > 0.85
    lev, integ = strict[0].limits["leverage"], strict[0].limits["integration"]
    assert 1.2 <= lev[0] < lev[1] <= 2.4 and 0.6 <= integ[0]
    table = analysis.boxes_table(strict)
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
    assert len(boxes) == 2  # old and new: coverage 0.419 + 0.581, density 0.988, 0.957
    assert sum(b.coverage for b in boxes) > 0.95
    lows = sorted(round(b.limits["a"][0], 1) for b in boxes)
    assert lows == [0.0, 0.7]
    assert analysis.prim(X, np.zeros(len(X), bool), ["a", "b"]) == []
    with pytest.raises(ValueError, match="objective"):
        analysis.prim(X, pos, ["a", "b"], objective="greedy")
