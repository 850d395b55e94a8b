"""What the CLI shows of a run: the dry-run estimate and the final summary (plain text)."""

from __future__ import annotations

import os

from farm.plan.design import estimate_cube_bytes
from farm.plan.plan import Plan
from farm.run.sweep import RunReport
from farm.store.layout import STATUS_FLAGGED

__all__ = ["EST_PATH_STEPS_PER_CORE", "dry_run_text", "estimate", "summary_text"]

# Rough single-core throughput of the float32 kernel used for --dry-run estimates
# (path-steps per second: the default sweep's 88 million path-steps took 58 s of blocks
# on two workers here; BENCHMARKS.md has the measured kernel rate for this machine).
EST_PATH_STEPS_PER_CORE = 0.75e6


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
    return "\n".join([
        f"dry run: nothing written (store {plan.store.url})",
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
        lines.append(f"  nodes  : {len(report.nodes)}; kernel compiles per worker: "
                     f"{report.max_compiles_per_worker}")
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
