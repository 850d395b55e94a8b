"""analysis.plots and analysis.report: figures and the self-contained HTML page."""

from __future__ import annotations

import base64
import io
import re

import matplotlib.image
import numpy as np
import pytest
from matplotlib.figure import Figure

import analysis
from analysis.testing import write_synthetic_cube

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def p_sys(leverage, integration=0.0, fed_put=0.0, correlation=0.5, **_):
    mid = 1.73 - 0.6 * integration + 0.3 * fed_put - 0.1 * (correlation - 0.5)
    return 1.0 / (1.0 + np.exp(-6.0 * (leverage - mid)))


def dd_eq(leverage, fed_put=0.0, **_):
    return 0.05 + 0.05 * leverage * (1.0 - 0.5 * fed_put)


CARD_GRID = {
    "leverage": np.linspace(0.0, 3.0, 16),
    "correlation": np.array([-0.5, 0.5, 1.0]),
    "fed_put": np.array([0.0, 0.5, 1.0]),
    "integration": np.array([0.0, 0.5, 1.0]),
}


def _images(page: str) -> list[bytes]:
    return [
        base64.b64decode(b) for b in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    ]


def _check_pngs(page: str, n_min: int) -> None:
    imgs = _images(page)
    assert len(imgs) >= n_min
    for raw in imgs:
        assert raw.startswith(PNG_MAGIC)
        arr = matplotlib.image.imread(io.BytesIO(raw), format="png")
        assert arr.shape[0] > 100 and arr.shape[1] > 100 and arr.std() > 0  # not blank


@pytest.fixture(scope="module")
def card_ds(tmp_path_factory):
    path = tmp_path_factory.mktemp("rep") / "card.zarr"
    write_synthetic_cube(path, {"p_systemic": p_sys, "drawdown_eq": dd_eq}, grid=CARD_GRID)
    return analysis.open_cube(path)


def test_headlines_grid(card_ds):
    h = analysis.headlines(card_ds)
    assert set(h) == {"frontier", "integration", "fed_put", "sensitivity"}
    assert "1.73 at integration 0 %; 1.43 at integration 50 %; 1.13 at integration 100 %" in (
        h["frontier"])
    assert "moves the critical leverage from 1.73 to 1.13" in h["integration"]
    # the Fed put where it matters most: leverage 1.6, integration 0.5 (p 73 % -> 31 %)
    assert "(leverage = 1.6 x Oct 2025, integration = 50 %; held fixed: correlation = 0.5)" in (
        h["fed_put"])
    assert "mean drawdown_eq from 13 % to 9.0 % (-4.0 pp)" in h["fed_put"]
    for key in ("frontier", "integration", "fed_put"):
        assert "held fixed: correlation = 0.5" in h[key], key
    assert h["sensitivity"].startswith(
        "Parameters ranked by their total effect on the variance of p_systemic over the whole "
        "cube (nothing held fixed): leverage"
    )


def test_build_report_grid_writes_self_contained_html(card_ds, tmp_path):
    out = analysis.build_report(card_ds, tmp_path / "sub" / "report.html", channels=False)
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    assert "http://" not in page and "https://" not in page  # nothing external
    assert "critical leverage" in page and "PRIM" in page and "1.73 at integration 0 %" in page
    _check_pngs(page, 4)


def test_report_smoke_sweep_without_fed_put(tmp_path):
    grid = {"leverage": np.linspace(0.0, 3.0, 7), "integration": np.array([0.0, 1.0])}
    path = write_synthetic_cube(tmp_path / "smoke.zarr", {"p_systemic": p_sys}, grid=grid)
    ds = analysis.open_cube(path)
    page = analysis.build_report(ds, tmp_path / "smoke.html").read_text()
    assert "fed_put is not swept in this cube" in page
    assert "Could not compute" not in page
    # the channel tables re-run the kernel on the cube's leverage axis (baseline model)
    assert "Which channel carries the shock" in page and "bank crypto collateral" in page
    assert "Channel ablation unavailable" not in page
    _check_pngs(page, 2)


def test_frontier_band_from_stored_bounds_or_from_n_paths(card_ds, tmp_path):
    """The critical leverage's band uses the cube's Wilson bounds; a cube without them
    (written before they were stored) gets the same band computed from n_paths."""
    h_old = analysis.headlines(card_ds)["frontier"]
    assert "band at integration 100 % from the Wilson bounds of p_systemic, computed from its " \
        "256 paths: 1.09 to 1.17)" in h_old
    path = write_synthetic_cube(tmp_path / "b.zarr", {"p_systemic": p_sys, "drawdown_eq": dd_eq},
                                grid=CARD_GRID, bounds=True)
    ds = analysis.open_cube(path)
    h = analysis.headlines(ds)
    assert "stored in the cube: 1.09 to 1.17)" in h["frontier"]
    assert "p_systemic_lo" not in h["sensitivity"]  # the bounds are no metrics of their own
    page = analysis.build_report(ds, tmp_path / "b.html", channels=False).read_text()
    assert "p_systemic_lo" not in page and "stored in the cube" in page
    _check_pngs(page, 3)


def test_report_counts_flagged_cells(tmp_path):
    status = np.ones((16, 3), np.int8)
    status[2:4] = 3
    grid = {"leverage": CARD_GRID["leverage"], "integration": CARD_GRID["integration"]}
    path = write_synthetic_cube(tmp_path / "f.zarr", {"p_systemic": p_sys}, grid=grid,
                                status=status)
    page = analysis.build_report(analysis.open_cube(path), tmp_path / "f.html",
                                 channels=False).read_text()
    assert "48 done, of which 6 flagged" in page and "6 cells are flagged (status 3)" in page


def test_report_single_cell_and_sampled_incomplete(tmp_path):
    single = write_synthetic_cube(
        tmp_path / "one.zarr", {"p_systemic": 0.25}, samples={}, method="grid", bounds=True
    )
    ds = analysis.open_cube(single)
    page = analysis.build_report(ds, tmp_path / "one.html", channels=False).read_text()
    assert "leverage is not swept" in page and "1 cells (1 done" in page
    assert ("One cell with the model&#x27;s own parameter values: p_systemic = 25 % "
            "(95 % interval 20 % to 31 %)") in page
    spec = analysis.cell_parameters(ds)
    assert spec.cell_index == 0 and spec.axis_values == {} and spec.model["leverage"] == 1.0

    rng = np.random.default_rng(4)
    n = 400
    samples = {
        "leverage": rng.uniform(0, 3, n),
        "fed_put": rng.uniform(0, 1, n),
        "integration": rng.uniform(0, 1, n),
    }
    status = np.ones(n, np.int8)
    status[:64] = 0
    path = write_synthetic_cube(
        tmp_path / "lhs.zarr",
        {"p_systemic": p_sys, "drawdown_eq": dd_eq},
        samples=samples,
        status=status,
    )
    ds = analysis.open_cube(path, allow_incomplete=True)
    fan = {"btc": np.exp(np.cumsum(rng.normal(0, 0.01, (50, 97)), axis=1))}
    page = analysis.build_report(ds, tmp_path / "lhs.html", fan_paths=fan,
                                 channels=False).read_text()
    assert "64 cells are not done" in page and "pce" in page
    assert "sample paths" in page
    _check_pngs(page, 5)


def test_plot_functions_return_figures(card_ds):
    surf = analysis.surface(
        card_ds, "p_systemic", "leverage", "integration", fixed={"fed_put": 0.0, "correlation": 0.5}
    )
    figs = [
        analysis.plot_heatmap(surf, level=0.5),
        analysis.plot_frontiers(card_ds, "leverage", "integration", by="fed_put"),
        analysis.plot_sensitivity(analysis.sensitivity(card_ds)),
        analysis.plot_critical_leverage(analysis.critical_leverage(card_ds)),
        analysis.plot_fan_chart(np.cumsum(np.ones((20, 10)), axis=1), times=np.arange(10) / 4),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        raw = base64.b64decode(analysis.report.figure_to_base64(fig))
        assert raw.startswith(PNG_MAGIC)


def test_cell_parameters_and_price_paths(card_ds, tmp_path):
    spec = analysis.cell_parameters(card_ds, {"leverage": 1.05, "integration": 0.4})
    assert spec.axis_values == {
        "leverage": 1.0,
        "correlation": -0.5,
        "fed_put": 0.0,
        "integration": 0.5,
    }
    assert spec.model["leverage"] == 1.0 and spec.model["integration"] == 0.5
    assert spec.root_seed == 0 and spec.seeding == "common" and spec.n_paths == 256
    flat = analysis.cell_table(card_ds)[0]
    np.testing.assert_array_equal(flat[spec.cell_index], [1.0, -0.5, 0.0, 0.5])
    rng = np.random.default_rng(0)
    samples = {"leverage": rng.uniform(0, 3, 50), "fed_put": rng.uniform(0, 1, 50)}
    ds = analysis.open_cube(
        write_synthetic_cube(tmp_path / "s.zarr", {"p_systemic": 0.1}, samples=samples)
    )
    near = analysis.cell_parameters(ds, {"leverage": 2.0, "fed_put": 0.5})
    lev, fed = samples["leverage"], samples["fed_put"]
    d = np.hypot((lev - 2.0) / np.ptp(lev), (fed - 0.5) / np.ptp(fed))  # range-rescaled
    assert near.cell_index == int(np.argmin(d))
    log_prices = np.cumsum(rng.normal(0, 0.01, (96, 30, 3)), axis=0)
    times, paths = analysis.price_paths(log_prices)
    assert times[0] == 0 and times[-1] == 24.0 and set(paths) == {"btc", "alt", "eq"}
    assert paths["btc"].shape == (30, 97) and (paths["btc"][:, 0] == 1).all()
    fig = analysis.plot_fan_chart(paths, times=times)
    assert len(fig.axes) == 3
