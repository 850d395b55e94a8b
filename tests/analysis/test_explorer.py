"""``farm explore``: the page is tested in a real headless browser (Debian's chromium,
driven by Playwright). It loads without a script error, draws the surface with its
frontier, redraws when a slider or the variable changes, draws a fan chart when a cell
is clicked, and works for a sampled design (cells as points over the fitted surface)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _browser import chromium, needs_chromium

from farm.cli import main

pytestmark = needs_chromium
SHOT = os.environ.get("FARM_EXPLORER_SCREENSHOT")  # where to keep the screenshot (docs)


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


def _cube(tmp: Path, *overrides: str) -> str:
    url = str(tmp / "cube.zarr")
    assert main(["run", "-q", "sweep=smoke", f"store.url={url}", "sweep.paths=32",
                 "sweep.steps=24", "runtime.workers=1", *overrides]) == 0
    return url


def _open(browser, page_path: Path):
    page = browser.new_page(viewport={"width": 1000, "height": 1300})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_path.as_uri())
    page.wait_for_selector("#surface .main-svg", timeout=60_000)
    return page, errors


def _surface(page) -> str:
    return page.evaluate("JSON.stringify(document.getElementById('surface').data"
                         ".map(t => [t.type, t.z || t.marker.color]))")


def test_the_explorer_slices_a_grid_cube_in_a_browser(tmp_path_factory, browser, capsys):
    tmp = tmp_path_factory.mktemp("explore")
    url = _cube(tmp)
    html = tmp / "explore.html"
    assert main(["explore", url, "-o", str(html)]) == 0
    assert "explorer written to" in capsys.readouterr().out
    assert "cdn.plot.ly" not in html.read_text()[:2000]  # plotly.js is embedded: offline
    page, errors = _open(browser, html)
    types = page.evaluate("document.getElementById('surface').data.map(t => t.type)")
    assert types[0] == "heatmap" and types.count("contour") == 3  # frontier + its band
    assert page.evaluate("window.explorer.state.x") == "leverage"
    frontier = _surface(page)
    # equities fall with the crypto-equity correlation: the slider must redraw the surface
    page.select_option("#pick-variable", "drawdown_eq:mean")
    before = _surface(page)
    assert before != frontier
    page.evaluate("(() => { const r = document.getElementById('slider-correlation');"
                  " r.value = r.max; r.dispatchEvent(new Event('input')); })()")
    assert _surface(page) != before, "the surface did not change when the slider moved"
    assert page.evaluate("window.explorer.state.idx.correlation") == 1
    hover = page.evaluate("document.getElementById('surface').data[0].text[1][2]")
    assert "leverage = 2" in hover and "p_systemic" in hover
    # drill down: a cell's fan chart (re-simulated quantiles of btc and equities)
    page.evaluate("window.explorer.fan(window.explorer.flat(2, 1))")
    fan = page.evaluate("document.getElementById('fan').data.length")
    assert fan == 10  # 5 traces per asset: two bands, their edges and the median
    assert "hours" in page.evaluate("document.getElementById('fan').layout.xaxis.title.text")
    page.screenshot(path=str(SHOT or tmp / "explore.png"), full_page=True)
    assert not errors, errors


def test_the_explorer_shows_a_sampled_design_as_points(tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("explore-lhs")
    url = _cube(tmp, "sweep.method=lhs", "sweep.n_samples=40",
                "sweep.axes={leverage:[0.5,3.0],integration:[0.0,1.0]}")
    html = tmp / "explore.html"
    assert main(["explore", url, "-o", str(html), "--fan-cells", "0"]) == 0
    page, errors = _open(browser, html)
    data = page.evaluate("document.getElementById('surface').data.map(t => t.type)")
    assert data[0] == "heatmap" and data[-1] == "scatter"  # fitted surface, then the cells
    assert page.evaluate("document.getElementById('surface').data.at(-1).x.length") == 40
    assert not page.query_selector_all("input[type=range]")  # nothing to slide
    assert not errors, errors


def test_an_adaptive_cube_shows_each_cells_wave(tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("explore-adaptive")
    url = str(tmp / "cube.zarr")
    assert main(["run", "-q", "sweep=adaptive", f"store.url={url}", "sweep.paths=16",
                 "sweep.axes={leverage:[0.0,3.0],integration:[0.0,1.0]}",
                 "sweep.adaptive.initial_cells=16", "sweep.adaptive.wave_cells=8",
                 "sweep.adaptive.block_cells=4", "sweep.adaptive.max_waves=2",
                 "runtime.workers=1"]) == 0
    html = tmp / "explore.html"
    assert main(["explore", url, "-o", str(html), "--fan-cells", "0"]) == 0
    page, errors = _open(browser, html)
    cells = "document.getElementById('surface').data.at(-1)"
    assert page.evaluate(f"{cells}.x.length") == 24
    texts = page.evaluate(f"{cells}.text")
    assert sum("adaptive wave 1" in t for t in texts) == 16
    assert sum("adaptive wave 2" in t for t in texts) == 8
    assert not errors, errors


def test_explore_refuses_bad_input_in_one_line(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "missing.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "missing.zarr" in err[0]


def test_explorer_data_never_turns_nan_into_a_number(tmp_path):
    import numpy as np

    from analysis.explorer import _round

    assert _round(np.array([np.nan, 0.123456789, np.inf])) == [None, 0.12346, None]
    json.dumps(_round(np.array([np.nan])))  # valid JSON: null, not NaN


def test_a_one_axis_cube_is_drawn_as_a_line_with_its_band(tmp_path_factory, browser):
    tmp = tmp_path_factory.mktemp("explore-1d")
    url = str(tmp / "cube.zarr")
    assert main(["run", "-q", "sweep=single", "sweep.axes={leverage:[0.0,1.5,3.0]}",
                 f"store.url={url}", "sweep.paths=32", "sweep.steps=24",
                 "runtime.workers=1"]) == 0
    html = tmp / "explore.html"
    assert main(["explore", url, "-o", str(html), "--fan-cells", "0"]) == 0
    page, errors = _open(browser, html)
    kinds = page.evaluate("document.getElementById('surface').data.map(t => t.type + t.fill)")
    assert kinds == ["scattertoself", "scatterundefined"]  # the band, then the line
    assert not errors, errors


def test_a_posterior_cube_shows_the_parameter_band(tmp_path_factory, browser):
    """A cube over posterior draws (a `draw` axis): besides the chosen draw's frontier, the
    frontiers where 5 % and 95 % of the draws have crossed the level (dotted)."""
    tmp = tmp_path_factory.mktemp("explore-draws")
    calib = tmp / "calib"
    calib.mkdir()
    (calib / "posterior.csv").write_text("bank_haircut,impact_y\n0.1,1.0\n0.3,0.6\n0.2,0.8\n")
    url = str(tmp / "cube.zarr")
    assert main(["run", "-q", "sweep=smoke", "sweep.axes={leverage:[1.0,2.0,3.0],"
                 "integration:[0.0,0.5,1.0]}", f"sweep.posterior={calib}",
                 "sweep.posterior_draws=3", f"store.url={url}", "sweep.paths=32",
                 "sweep.steps=24", "runtime.workers=1"]) == 0
    html = tmp / "explore.html"
    assert main(["explore", url, "-o", str(html), "--fan-cells", "0"]) == 0
    page, errors = _open(browser, html)
    names = page.evaluate("document.getElementById('surface').data.map(t => t.name || '')")
    assert any("parameter band" in n and "3 posterior draws" in n for n in names)
    assert page.query_selector("#slider-draw") is not None
    assert not errors, errors
