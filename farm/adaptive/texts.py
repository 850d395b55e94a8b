"""What the CLI shows of an adaptive sweep: its dry-run outlook and its final summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from farm.adaptive.engine import AdaptiveReport, run_adaptive
from farm.plan.plan import Plan

__all__ = ["adaptive_dry_run_lines", "adaptive_summary_text", "run_and_summarise"]


def run_and_summarise(plan: Plan, *, notify: Callable[[str], None], progress: Any
                      ) -> tuple[str, bool]:
    """Run (or resume) the adaptive sweep; (its summary, whether every block succeeded)."""
    report = run_adaptive(plan, notify=notify, progress=progress)
    return adaptive_summary_text(report, plan), report.ok


def adaptive_dry_run_lines(plan: Plan) -> list[str]:
    """The lines ``farm run --dry-run`` adds for ``sweep.method=adaptive`` (none else)."""
    a = plan.sweep.adaptive
    if a is None:
        return []
    per = plan.sweep.paths * plan.sweep.steps
    return [
        f"  adaptive : wave 1 is the {a.initial_cells} cells above; then waves of "
        f"{a.wave_cells} cells (new points where the surrogate of {a.var} is least sure of "
        f"the side of {a.level:g}, and up to {100 * a.paths_share:g} % of them more paths at "
        f"points whose Wilson interval straddles it, <= {a.max_paths} paths per point)",
        f"  budget   : <= {a.max_cells} cells ({a.max_cells * per:.3g} path-steps), "
        f"<= {a.max_waves} waves" + (f", <= {a.max_minutes:g} min" if a.max_minutes else ""),
        f"  stops    : when {a.stop_waves} wave(s) in a row move the frontier at < "
        f"{100 * a.stop_flips:g} % of the reference points, or at a budget",
    ]


def adaptive_summary_text(report: AdaptiveReport, plan: Plan) -> str:
    """One line per wave, why the waves stopped, the cost, and how to open the cube."""
    a = plan.sweep.adaptive
    lines = ["", f"farm: {plan.name} (adaptive) -> {report.url}",
             "  wave  cells  new points  more paths  straddling  frontier moved  undecided"
             "  seconds"]
    for w in report.waves:
        moved = "" if w.flips is None else f"{100 * w.flips:.2g} %"
        undecided = "" if w.undecided is None else f"{100 * w.undecided:.2g} %"
        lines.append(f"  {w.k:>4}  {w.stop:>5}  {w.new_points:>10}  {w.more_paths:>10}  "
                     f"{w.straddling:>10}  {moved:>14}  {undecided:>9}  {w.seconds:>7.0f}"
                     + ("" if w.done else "  (not finished)"))
    last = report.waves[-1] if report.waves else None
    if last is not None and last.done:
        lines.append(f"  cost : {last.stop} cells x {plan.sweep.paths} paths x "
                     f"{plan.sweep.steps} steps = {last.path_steps:.3g} path-steps at "
                     f"{last.points} points; the surrogate's 95 % band holds the level at "
                     f"{100 * (last.undecided or 0):.2g} % of the box")
    nan_cells = sorted({int(c) for r in report.runs for c in r.failed_cells})
    if nan_cells:
        shown = ", ".join(map(str, nan_cells[:20])) + (" ..." if len(nan_cells) > 20 else "")
        lines.append(f"  FAILED: {len(nan_cells)} cell(s) with NaN or inf outputs ({shown}): "
                     "left out of the surrogate; `farm status STORE` names them")
    if not report.stopped:  # a block failed as a whole: the waves stopped there
        failed = max((len(r.failed) for r in report.runs), default=0)
        lines.append(f"  FAILED: {failed} block(s) of wave {report.waves[-1].k}; rerun the "
                     "same command to retry them (the waves go on from there)")
        return "\n".join(lines)
    lines += [f"  stopped: {report.stopped}", "", "Open it in Python:", "    import analysis",
              f"    ds = analysis.open_cube({report.url!r})",
              f"    analysis.critical_leverage(ds, level={a.level:g}, var={a.var!r}, "
              "method='gp')"]
    return "\n".join(lines)
