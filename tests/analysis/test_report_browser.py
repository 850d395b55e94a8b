"""``farm report`` opened in a real headless browser (Debian's chromium, driven by
Playwright): every figure image decodes and the page raises no error. The report is
written by the command line from a tiny real run, so the fan chart is the re-simulated
reference cell, named in its title and drawn against hours."""

from __future__ import annotations

import os

from _browser import chromium, needs_chromium

from farm.cli import main

pytestmark = needs_chromium
SHOT = os.environ.get("FARM_REPORT_SCREENSHOT")  # where to keep a screenshot (docs)


def test_report_opens_in_a_browser_with_every_figure_loaded(tmp_path, capsys):
    url = str(tmp_path / "cube.zarr")
    assert main(["run", "-q", "sweep=smoke", f"store.url={url}", "sweep.paths=32",
                 "sweep.steps=24", "runtime.workers=1"]) == 0
    html = tmp_path / "report.html"
    assert main(["report", url, "-o", str(html), "--no-channels"]) == 0
    assert "report written to" in capsys.readouterr().out
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1000, "height": 1400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.as_uri())
        page.wait_for_load_state("load")
        widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
        titles = page.evaluate("[...document.querySelectorAll('h3')].map(h => h.textContent)")
        explore = page.evaluate("document.body.innerText.includes('Explore interactively')")
        if SHOT:
            page.screenshot(path=SHOT)
    assert errors == []
    assert len(widths) >= 4 and all(w > 0 for w in widths), widths
    fan = [t for t in titles if t.startswith("sample paths of the cell")]
    assert fan and "leverage = " in fan[0] and "integration = " in fan[0], titles
    assert explore
