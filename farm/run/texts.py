"""What the CLI shows of a run: the dry-run estimate, the final summary and, for
``episode=NAME``, the episode's table (plain text)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from farm.plan.limits import estimate_cube_bytes
from farm.plan.plan import Plan
from farm.plan.targets import PLAUSIBLE, QUANTITIES, implausibility, per_path_quantities
from farm.run.sweep import RunReport
from farm.store.layout import STATUS_FLAGGED

__all__ = ["EST_PATH_STEPS_PER_CORE", "dry_run_text", "episode_text", "estimate",
           "summary_text"]

# Rough single-core throughput of the float32 kernel used for --dry-run estimates
# (path-steps per second: the default sweep's 88 million path-steps took 28 s of blocks,
# compile included, on two workers here; BENCHMARKS.md has the measured kernel rate).
EST_PATH_STEPS_PER_CORE = 1.5e6


def estimate(plan: Plan) -> dict[str, float]:
    """Store size (bytes) and wall time (s) estimates for ``--dry-run``."""
    design, n_paths = plan.design, plan.sweep.paths
    workers = plan.runtime.workers or os.cpu_count() or 1
    seconds = design.n_cells * n_paths * plan.sweep.steps / (EST_PATH_STEPS_PER_CORE * workers)
    return {"bytes": estimate_cube_bytes(design, n_paths, plan.store.paths),
            "seconds": seconds, "workers": workers}


def dry_run_text(plan: Plan) -> str:
    design = plan.design
    est = estimate(plan)
    n_paths = plan.sweep.paths
    axes = ", ".join(f"{a}[{len(design.coords[a]) if design.method == 'grid' else '~'}]"
                     for a in design.axes) or "(none: one cell)"
    from farm.run.outlook import store_outlook

    return "\n".join([
        f"dry run: nothing written (store {plan.store.url})",
        f"  store    : {store_outlook(plan)}",
        f"  design   : {design.method} over {axes}",
        f"  cells    : {design.n_cells}",
        f"  blocks   : {design.n_blocks} (chunks {tuple(design.chunks)} on "
        f"{', '.join(design.cell_dims)})",
        f"  paths    : {n_paths} per cell, {design.n_cells * n_paths} in all, "
        f"{plan.sweep.steps} steps each",
        f"  size     : ~{_human_bytes(est['bytes'])} (uncompressed)",
        f"  time     : ~{_human_seconds(est['seconds'])} on {est['workers']} worker(s), "
        f"estimated at {EST_PATH_STEPS_PER_CORE:.1e} path-steps/s per core, plus start-up",
    ])


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TB"


def _human_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _wall_detail(report: RunReport) -> str:
    """`` (setup 5.1 s, Ray start included; blocks 38 s)`` when blocks ran, else ``""``."""
    if not report.done_now:
        return ""
    ray = ", Ray start included" if report.ray_started else ""
    return (f" (setup {report.setup_seconds:.1f} s{ray}; blocks "
            f"{_human_seconds(report.blocks_seconds)})")


def summary_text(report: RunReport, plan: Plan) -> str:
    """The final one-screen summary, with the two lines of Python that open the cube."""
    n_paths = plan.sweep.paths
    lines = [
        "",
        f"farm: {plan.name} -> {report.url}",
        f"  blocks : {report.n_blocks} ({report.done_before} already done, "
        f"{report.done_now} run now, {len(report.failed)} failed)",
        f"  cells  : {report.n_cells} x {n_paths} paths x {plan.sweep.steps} steps",
        f"  wall   : {_human_seconds(report.seconds)}{_wall_detail(report)}",
    ]
    if report.nodes:
        loaded = (f" ({report.max_loaded_per_worker} loaded from the compile cache)"
                  if report.max_loaded_per_worker else "")
        lines.append(f"  nodes  : {len(report.nodes)}; kernel compiles per worker: "
                     f"{report.max_compiles_per_worker}{loaded}")
    if report.cells_flagged:
        lines.append(f"  flagged: {report.cells_flagged} cells done with status {STATUS_FLAGGED}: "
                     "the cascade hit max_rounds on more than model.capped_limit of their "
                     "path-steps (raise model.max_rounds)")
    if report.failed:
        lines.append("  FAILED : blocks " + ", ".join(map(str, sorted(report.failed))))
        if report.failed_cells:
            cells = sorted(report.failed_cells)
            more = f" and {len(cells) - 20} more" if len(cells) > 20 else ""
            lines.append(f"  FAILED : cells {', '.join(map(str, cells[:20]))}{more} "
                         "(NaN or inf outputs)")
        for i, msg in sorted(report.failed.items())[:5]:
            lines.append(f"    block {i}: {msg}")
        lines.append("  rerun the same command to retry only the failed blocks.")
    else:
        lines += ["", "Open it in Python:", "    import analysis",
                  f"    ds = analysis.open_cube({report.url!r})"]
    return "\n".join(lines)


def _show(value: float, quantity: str) -> str:
    """A value in the unit of ``quantity``: ``$19.0 bn`` or ``13.0 %``."""
    if not np.isfinite(value):
        return str(value)
    if QUANTITIES[quantity][0] == "USD":
        return f"${value / 1e9:.2f} bn"
    return f"{100 * value:.1f} %"


def episode_text(plan: Plan, cube: Mapping[str, Any]) -> str:
    """The table of ``farm run episode=NAME``: per target its kind, the observed figure +- sd,
    the simulated median and 5-95 % band over paths, the implausibility and the verdict
    (plausible when I <= 3). ``cube``: the run's cube (per-path variables ``X_paths``)."""
    from kernels.cubeformat import path_var_name
    from kernels.outputs import PATH_OUTPUTS

    ep = plan.episode
    paths = {v: np.asarray(cube[path_var_name(v)].values, dtype=np.float64).reshape(-1)
             for v in PATH_OUTPUTS if path_var_name(v) in cube}
    sims = per_path_quantities(paths)
    head = ("target", "kind", "observed +- sd", "simulated median [5 %, 95 %]", "I", "verdict")
    rows, worst = [head], 0.0
    for t in ep.targets:
        sim = sims[t.quantity]
        score = implausibility(sim, t)
        worst = max(worst, score)
        q05, q50, q95 = (np.quantile(sim, [0.05, 0.5, 0.95]) if np.all(np.isfinite(sim))
                         else (np.nan,) * 3)
        rows.append((t.name, "value" if t.kind == "value" else ">= (lower bound)",
                     f"{_show(t.observed, t.quantity)} +- {_show(t.sd, t.quantity)}",
                     f"{_show(q50, t.quantity)} [{_show(q05, t.quantity)}, "
                     f"{_show(q95, t.quantity)}]", f"{score:.2f}",
                     "plausible" if score <= PLAUSIBLE else "IMPLAUSIBLE"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["", f"episode {ep.name} ({ep.date}): {plan.sweep.paths} paths, seed "
             f"{plan.sweep.seed}, {plan.sweep.steps} steps of "
             f"{float(plan.model.step_hours):g} h"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    verdict = "plausible" if worst <= PLAUSIBLE else "IMPLAUSIBLE"
    lines.append(f"  max I = {worst:.2f}: {verdict} (I <= {PLAUSIBLE:g} on every target is "
                 "plausible; docs/calibration.md)")
    return "\n".join(lines)
