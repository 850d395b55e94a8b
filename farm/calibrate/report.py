"""``<out>/calibration.html``: a self-contained report of a calibration (base64 PNGs).

Sections: the settings and waves; per target, the observed figure +- sd against the
simulated means of every wave's draws (grey: all, blue: kept); per parameter, the
prior and posterior ranges (what the data pin down); the targets at the posterior.
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from farm.calibrate.engine import CalibrationResult
from farm.calibrate.loo import predicted_bands
from farm.calibrate.posterior import parameter_ranges, posterior_draws

__all__ = ["write_report"]


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _targets_figure(result: CalibrationResult) -> Figure:
    n = len(result.labels)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows), layout="constrained")
    rng = np.random.default_rng(0)
    for j, (label, t) in enumerate(zip(result.labels, result.targets, strict=True)):
        ax = fig.add_subplot(rows, cols, j + 1)
        obs, sd = float(t.observed), float(t.sd)
        ax.axhspan(obs - sd, obs + sd, color="tab:green", alpha=0.25, lw=0)
        ax.axhline(obs, color="tab:green", lw=1.2)
        for s, w in zip(result.scores, result.waves, strict=True):
            y = s.means[:, j]
            keep = s.kept(result.cfg.cutoff)
            xs = w.k + rng.uniform(-0.18, 0.18, len(y))
            ax.scatter(xs[~keep], y[~keep], s=6, color="0.6", lw=0)
            ax.scatter(xs[keep], y[keep], s=8, color="tab:blue", lw=0)
        if t.kind == "lower_bound":
            ax.axhspan(obs, max(ax.get_ylim()[1], obs + sd), color="tab:green", alpha=0.08,
                       lw=0)
        ax.set_title(f"{label} ({t.kind})", fontsize=8)
        ax.set_xticks([w.k for w in result.waves])
        ax.set_xlabel("wave", fontsize=7)
        ax.tick_params(labelsize=7)
    return fig


def _params_figure(result: CalibrationResult) -> Figure:
    ranges = parameter_ranges(result)
    fig = Figure(figsize=(7, 0.5 + 0.45 * len(ranges)), layout="constrained")
    ax = fig.add_subplot()
    for i, r in enumerate(ranges):
        lo, hi = r["prior"]
        ax.barh(i, 1.0, left=0.0, color="0.85", height=0.6)
        if math.isfinite(r["width_share"]):
            a, b = ((v - lo) / (hi - lo) for v in r["posterior"])
            ax.barh(i, max(b - a, 0.005), left=a, color="tab:blue", height=0.6)
            ax.text(1.01, i, f"{100 * r['width_share']:.0f} %", va="center", fontsize=8)
    ax.set_yticks(range(len(ranges)), [r["name"] for r in ranges], fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("position in the prior range (grey: prior, blue: posterior)", fontsize=8)
    return fig


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _g(v: float) -> str:
    return f"{v:.4g}" if math.isfinite(v) else "-"


def _verdict(row: dict | None, sd: float) -> list[str]:
    """``[band, verdict]`` cells: inside, or outside by how much (units and sds)."""
    if row is None or row["band"] is None:
        return ["-", "no posterior"]
    lo, hi = row["band"]
    obs = row["observed"]
    band = f"[{_g(lo)}, {_g(hi)}]"
    if row["inside"]:
        return [band, "inside"]
    gap = (obs - hi) if obs > hi else (lo - obs)
    side = "above" if obs > hi else "below"
    return [band, f"outside: {side} the band by {_g(gap)} ({gap / sd:.1f} sd)"]


def write_report(result: CalibrationResult, path: Path) -> Path:
    """Write the HTML report to ``path`` (atomically); returns it."""
    cfg = result.cfg
    _, _, means = posterior_draws(result)
    waves = [[str(w.k), str(w.n_cells), str(w.n_rows), str(w.n_kept), _g(w.volume_share)]
             for w in result.waves]
    params = [[r["name"], f"[{_g(r['prior'][0])}, {_g(r['prior'][1])}]",
               f"[{_g(r['posterior'][0])}, {_g(r['posterior'][1])}]",
               _g(100 * r["width_share"]) + " %"] for r in parameter_ranges(result)]
    verdicts = {r["output"]: r for ep in cfg.episodes for r in predicted_bands(result, ep)}
    targets = [[lab, t.kind, _g(float(t.observed)), _g(float(t.sd)),
                f"[{_g(float(means[:, j].min()))}, {_g(float(means[:, j].max()))}]"
                if len(means) else "-", *_verdict(verdicts.get(lab), float(t.sd))]
               for j, (lab, t) in enumerate(zip(result.labels, result.targets, strict=True))]
    outside = [row for row in targets if row[-1].startswith("outside")]
    summary = (f"<p>{len(targets) - len(outside)} of {len(targets)} observed figures lie inside "
               "the calibrated model's predicted 95 % band (the 2.5-97.5 % range of the kept "
               "draws' simulated means, widened by 1.96 sqrt(sd^2 + model discrepancy^2))"
               + (": outside are " + "; ".join(f"{html.escape(r[0])} ({html.escape(r[-1])})"
                                               for r in outside) if outside else "")
               + ".</p>")
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>calibration</title>",
        "<style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "</style></head><body>",
        f"<h1>History matching: {html.escape(cfg.name)}</h1>",
        f"<p>Episodes: {html.escape(', '.join(cfg.episodes))}. {cfg.n_cells} draws per wave "
        f"x {cfg.paths} paths x {cfg.steps} steps; a draw is kept when its implausibility, "
        f"maximised over all {len(result.labels)} targets, is at most {cfg.cutoff:g} "
        f"(model discrepancy {cfg.model_discrepancy:g} x |observed|). Stopped: "
        f"{html.escape(result.stopped)}.</p>",
        "<h2>Waves</h2>",
        _table(["wave", "draws", "cells", "kept", "non-implausible volume share"], waves),
        "<h2>Targets: observed +- sd (green) against each wave's simulated means</h2>",
        "<p>Grey: draws ruled out; blue: kept. A lower bound is met anywhere above its "
        "line.</p>",
        f"<img alt='targets' src='data:image/png;base64,{_png(_targets_figure(result))}'>",
        "<h2>What the data pin down</h2>",
        "<p>Width left: the posterior's range over the kept draws as a share of the "
        "prior's (100 % = not constrained by these episodes).</p>",
        f"<img alt='parameters' src='data:image/png;base64,{_png(_params_figure(result))}'>",
        _table(["parameter", "prior", "posterior", "width left"], params),
        "<h2>Targets at the posterior</h2>",
        summary,
        _table(["target", "kind", "observed", "sd", "simulated means (kept draws)",
                "predicted 95 % band", "observed vs band"], targets),
        "</body></html>",
    ]
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(path)
    return path
