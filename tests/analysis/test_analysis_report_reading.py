"""The report as an analyst reads it: headlines where something happens, each saying what it
holds fixed; figures in the axes' own values and units; percentages; the PRIM table
explained; reference values of sampled designs; the pointer to the explorer."""

from __future__ import annotations

import numpy as np
import pytest

import analysis
from analysis.report import report_figures
from analysis.report_text import pct
from analysis.testing import write_synthetic_cube

# like the default sweep: nothing happens at integration 0 (the baseline); p_systemic
# crosses 50 % within leverage <= 3 only from integration 0.5 on. Integration is uneven.
UNEVEN = {"leverage": np.linspace(0.0, 3.0, 16), "fed_put": np.array([0.0, 0.5, 1.0]),
          "integration": np.array([0.0, 0.2, 0.5, 1.0])}


def p_late(leverage, integration=0.0, fed_put=0.0, **_):
    return 1.0 / (1.0 + np.exp(-8.0 * (leverage - (3.5 - 2.0 * integration + 0.2 * fed_put))))


def dd_eq(leverage, fed_put=0.0, **_):
    return 0.02 + 0.01 * leverage * (1.0 - 0.5 * fed_put) - 0.000353 * fed_put


@pytest.fixture(scope="module")
def late(tmp_path_factory):
    path = tmp_path_factory.mktemp("late") / "late.zarr"
    write_synthetic_cube(path, {"p_systemic": p_late, "drawdown_eq": dd_eq}, grid=UNEVEN)
    return analysis.open_cube(path)


def test_headlines_answer_where_the_level_is_crossed_and_say_what_is_fixed(late):
    h = analysis.headlines(late)
    assert "does not reach" not in h["frontier"]
    assert "2.50 at integration 50 %; 1.50 at integration 100 %" in h["frontier"]
    assert "at integration 20 % and below it stays under 50 % up to leverage 3" in h["frontier"]
    assert "held fixed: fed_put = 0 %" in h["frontier"]
    assert "from beyond 3 to 1.50" in h["integration"]
    assert "first reaches 50 % within the swept leverage at integration 50 %" in h["integration"]
    assert "held fixed: fed_put = 0 %" in h["integration"]
    assert "where it matters most (leverage = " in h["fed_put"]


def test_heatmap_draws_uneven_axes_as_their_values_with_units(late):
    surf = analysis.surface(late, "p_systemic", "leverage", "integration", fixed={"fed_put": 0})
    fig = analysis.plot_heatmap(surf)
    ax, bar = fig.axes
    assert ax.get_ylim() == pytest.approx((0.0, 1.0))  # no cell below 0 or above 1
    assert ax.get_xlim() == pytest.approx((0.0, 3.0))
    edges = ax.collections[0].get_coordinates()[:, 0, 1]
    np.testing.assert_allclose(edges, [0.0, 0.1, 0.35, 0.75, 1.0])  # midpoints, clipped
    assert ax.get_xlabel() == "crypto leverage [x Oct 2025]"
    assert ax.get_ylabel() == "regulatory integration [%]"
    assert "probability" in bar.get_ylabel() and "[1]" not in bar.get_ylabel()
    fig.canvas.draw()
    ticks = [t.get_text() for t in bar.get_yticklabels() if t.get_text()]
    assert ticks[-1] == "100%" and all(t.endswith("%") for t in ticks)
    assert "held fixed: fed_put = 0 %" in ax.get_title()


def test_critical_leverage_plot_says_what_is_held_fixed(late):
    cl = analysis.critical_leverage(late, fixed={"fed_put": 0.5})
    fig = analysis.plot_critical_leverage(cl)
    ax = fig.axes[0]
    assert "held fixed: fed_put = 50 %" in ax.get_title()
    assert ax.get_legend().get_texts()[0].get_text() == "held fixed: fed_put = 50 %"
    assert ax.get_ylabel() == "critical leverage [x Oct 2025]"


def test_fan_chart_is_plotted_against_hours_and_names_its_cell(late):
    rng = np.random.default_rng(0)
    paths = {"btc": np.exp(np.cumsum(rng.normal(0, 0.01, (20, 97)), axis=1))}
    times = np.arange(97) * 0.25
    cell = {"leverage": 1.0, "fed_put": 0.0, "integration": 0.0}
    figs = dict(report_figures(late, fan_paths=paths, fan_times=times, fan_cell=cell))
    title = ("sample paths of the cell leverage = 1 x Oct 2025, fed_put = 0 %, "
             "integration = 0 %")
    ax = figs[title].axes[-1]
    assert ax.get_xlabel() == "hours"
    assert max(line.get_xdata().max() for line in ax.get_lines()) == 24.0
    assert "integration = 0 %" in figs[title].axes[0].get_title()


def test_percentages_with_sensible_precision():
    assert pct(-0.000353) == "-0.04 %" and pct(0.0254) == "2.5 %" and pct(0.62) == "62 %"
    assert pct(-4.7e-7, True, " pp") == "0 pp" and pct(0.02, True, " pp") == "+2.0 pp"


def test_report_text_and_tables_in_percent(late, tmp_path):
    page = analysis.build_report(late, tmp_path / "r.html", channels=False,
                                 store="cubes/late.zarr").read_text()
    assert "mean drawdown_eq from 4.6 % to 3.3 % (-1.3 pp)" in page and "0.000353" not in page
    assert "[1]" not in page
    assert ("Explore interactively: <code>farm explore cubes/late.zarr -o explore.html</code>"
            in page)
    assert "Reference values." in page and "fed_put = 0 % (no Fed put)" in page


def test_prim_table_is_explained_and_shows_no_degenerate_range(tmp_path):
    grid = {"leverage": np.linspace(0.0, 3.0, 16), "integration": np.array([0.0, 0.5, 1.0])}

    def p(leverage, integration, **_):  # systemic only at full integration
        return np.where((leverage >= 1.8) & (integration == 1.0), 0.9, 0.0)

    ds = analysis.open_cube(write_synthetic_cube(tmp_path / "p.zarr", {"p_systemic": p},
                                                 grid=grid))
    page = analysis.build_report(ds, tmp_path / "p.html", channels=False).read_text()
    prim = page[page.index("Scenario discovery"):]
    assert "= 100 %" in prim and "100 % to 100 %" not in prim and " .. " not in prim
    assert "1.8 to 3" in prim
    for stat in ("coverage", "density", "mass"):
        assert f"<li><b>{stat}</b>: the share of" in prim


def test_sampled_design_reference_is_the_baseline_not_the_lowest_sample(tmp_path):
    rng = np.random.default_rng(4)
    n = 300
    samples = {"leverage": rng.uniform(0, 3, n), "fed_put": 0.0002 + rng.uniform(0, 1, n),
               "integration": rng.uniform(0, 1, n)}
    ds = analysis.open_cube(write_synthetic_cube(
        tmp_path / "lhs.zarr", {"p_systemic": p_late, "drawdown_eq": dd_eq}, samples=samples))
    ref = analysis.neutral_values(ds)
    assert ref["fed_put"] == 0.0 and ref["integration"] == 0.0 and ref["leverage"] == 1.0
    page = analysis.build_report(ds, tmp_path / "lhs.html", channels=False).read_text()
    assert "fed_put = 0 % (no Fed put)" in page and "sampled range" in page
    assert "0.0002" not in page
