"""The text ``farm calibrate`` prints (built here, printed by farm/cli.py)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from farm.calibrate.engine import CalibrationResult
from farm.calibrate.posterior import parameter_ranges

__all__ = ["loo_text", "summary_text"]


def _g(v: float) -> str:
    return "nan" if not math.isfinite(v) else f"{v:.4g}"


def summary_text(result: CalibrationResult, files: Mapping[str, str], seconds: float) -> str:
    """The waves, why they stopped, what the data pin down, and where the files are."""
    cfg = result.cfg
    lines = [f"farm: calibration {cfg.name} -> {cfg.out} ({len(cfg.episodes)} episode(s), "
             f"{len(result.labels)} targets, {len(cfg.priors)} parameters, cutoff "
             f"I <= {cfg.cutoff:g})",
             "  wave  draws  cells   kept  volume share  run now"]
    for w in result.waves:
        now = ("done before" if w.k in result.finished_before
               else f"{w.blocks_now} block(s), {w.seconds:.0f} s")
        lines.append(f"  {w.k:>4}  {w.n_cells:>5}  {w.n_rows:>5}  "
                     f"{w.n_kept:>5}  {w.volume_share:>12.4g}  {now}")
    lines.append(f"  stopped: {result.stopped}")
    if result.posterior_wave:
        lines.append(f"  posterior: {len(_kept(result))} non-implausible draws of wave "
                     f"{result.posterior_wave}")
        lines.append("  parameter            prior                 posterior             "
                     "width left")
        for r in parameter_ranges(result):
            prior = f"[{_g(r['prior'][0])}, {_g(r['prior'][1])}]"
            post = f"[{_g(r['posterior'][0])}, {_g(r['posterior'][1])}]"
            lines.append(f"  {r['name']:<20} {prior:<21} {post:<21} "
                         f"{100 * r['width_share']:.0f} %")
    else:
        lines.append("  posterior: none (no draw is plausible for every target)")
    for kind, path in files.items():
        lines.append(f"  {kind}: {path}")
    lines.append(f"  wall: {seconds:.0f} s")
    return "\n".join(lines)


def _kept(result: CalibrationResult) -> Any:
    s = result.scores[result.posterior_wave - 1]
    return s.x[s.kept(result.cfg.cutoff)]


def loo_text(rows: list[dict[str, Any]]) -> str:
    """Leave-one-episode-out: per left-out target, the predicted 95 % band and the verdict."""
    lines = ["farm: leave-one-episode-out (each episode predicted by a calibration "
             "without it)",
             "  episode/target                     observed     band 95 %                 "
             "inside"]
    for r in rows:
        band = (f"[{_g(r['band'][0])}, {_g(r['band'][1])}]" if r["band"] is not None
                else "(no posterior)")
        verdict = {True: "yes", False: "NO", None: "-"}[r["inside"]]
        lines.append(f"  {r['output']:<34} {_g(r['observed']):<12} {band:<25} {verdict}")
    n_in = sum(1 for r in rows if r["inside"])
    n = sum(1 for r in rows if r["inside"] is not None)
    lines.append(f"  inside: {n_in} of {n} targets")
    return "\n".join(lines)
