"""``python -m benchmarks.run [--quick]``: measure everything, write BENCHMARKS.md + results.json.

Full mode takes a few minutes on the 2-core machine; ``--quick`` (CI smoke, under
about a minute) runs smaller sizes, skips the farm rows and says so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import jax

from . import adaptive, fair, farm_bench, flops, kernel, machine, radcad_bench, report
from .cells import N_STEPS, radcad_cells, radcad_farm_overrides

log = logging.getLogger("benchmarks")

ROOT = Path(__file__).resolve().parent.parent

# (cells in the block, paths) per dtype; NumPy: (cells in the sweep, paths, cells actually run)
FULL = {
    "float32": [(1, 256), (16, 256), (64, 256), (1, 4096), (16, 4096), (1, 65536)],
    "float64": [(16, 256), (16, 4096), (1, 65536)],
    "numpy": [(16, 256, 16), (16, 4096, 4), (16, 65536, 1)],
    "radcad_paths": 16, "farm_paths": 65536,
}
QUICK = {
    "float32": [(16, 256), (16, 4096)],
    "float64": [],
    "numpy": [(16, 4096, 1)],
    "radcad_paths": 4, "farm_paths": 4096,
}


def _kernel_rows(sizes: dict) -> list[kernel.Row]:
    rows = [kernel.jax_row(c, n, "float32") for c, n in sizes["float32"]]
    if sizes["float64"]:
        jax.config.update("jax_enable_x64", True)
        rows += [kernel.jax_row(c, n, "float64") for c, n in sizes["float64"]]
        jax.config.update("jax_enable_x64", False)
    rows += [kernel.numpy_row(c, n, m) for c, n, m in sizes["numpy"]]
    return rows


def _find(rows: list[kernel.Row], impl: str, cells: int, paths: int) -> kernel.Row | None:
    return next((r for r in rows if r.impl == impl and r.n_cells == cells
                 and r.n_paths == paths), None)


def _radcad(sizes: dict, quick: bool, farm_ok: bool) -> dict:
    rc = radcad_bench.run_radcad(sizes["radcad_paths"], processes=2)
    if rc is None:
        return {"error": "radCAD could not be run (see log)"}
    out: dict = {"radcad": rc}
    if farm_ok and not quick:
        fr = farm_bench.same_cells_throughput(radcad_farm_overrides(sizes["farm_paths"]))
        if fr is not None:
            out["farm"] = {**fr, "path_steps_per_s": fr["path_steps"] / fr["wall_s"],
                           "what": "farm run, 2 workers, Ray start excluded, compile included"}
    if "farm" not in out:  # quick mode or no farm: the bare kernel on the same cells
        out["farm_note"] = "farm side is the bare kernel (one process, all cores) on the same cells"
        r = kernel.jax_row(4, sizes["farm_paths"], "float32", cells=radcad_cells())
        out["farm"] = {"path_steps_per_s": r.path_steps_per_s, "what": "bare kernel"}
    out["ratio"] = out["farm"]["path_steps_per_s"] / rc["path_steps_per_s"]
    return out


def _headline(rows, rad, farm, eff) -> dict:
    j = _find(rows, "jax-float32", 16, 4096)
    n = _find(rows, "numpy", 16, 4096)
    ok = farm.get("available")

    def get(*path):
        cur = farm
        for k in path:
            if not isinstance(cur, dict) or k not in cur:
                return None
            cur = cur[k]
        return cur

    return {
        # the old, unfair ratios (float32 JAX vs float64 NumPy; farm at 65,536 paths vs
        # radCAD at 16): kept under these names for history only, see benchmarks.fair
        "old_unfair_jax_f32_vs_numpy_f64_4096":
            j.path_steps_per_s / n.path_steps_per_s if j and n else None,
        "old_unfair_farm_vs_radcad": rad.get("ratio"),
        "farm_overhead_default": get("default", "overhead") if ok else None,
        "speedup_2_workers": get("workers", "speedup") if ok else None,
        "driver_rss_growth_10k_to_1m": get("rss", "growth") if ok else None,
        "files_per_1000_cells_1m": get("rss", "files_per_1000_cells") if ok else None,
        "compiles_second_run": get("second_run", "compiles") if ok else None,
        "jax_f32_path_steps_per_s_4096": j.path_steps_per_s if j else None,
        "useful_fraction_of_peak": eff.get("useful_fraction_of_one_core"),
        "executed_fraction_of_peak": eff.get("executed_fraction_of_one_core"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, no farm rows (CI)")
    ap.add_argument("--md", help="default: BENCHMARKS.md (--quick: benchmarks/quick/)")
    ap.add_argument("--json", help="default: benchmarks/results.json (--quick: benchmarks/quick/)")
    args = ap.parse_args(argv)
    # a quick run never overwrites the committed full results
    out_dir = ROOT / "benchmarks" / "quick" if args.quick else None
    if out_dir is not None:
        out_dir.mkdir(exist_ok=True)
    args.md = args.md or str(out_dir / "BENCHMARKS.md" if out_dir else ROOT / "BENCHMARKS.md")
    args.json = args.json or str(out_dir / "results.json" if out_dir
                                 else ROOT / "benchmarks" / "results.json")
    # compile times are measured, never loaded from the persistent compilation cache
    os.environ.setdefault("FARM_JAX_CACHE", "off")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    t0 = time.perf_counter()
    sizes = QUICK if args.quick else FULL
    facts = machine.facts()
    facts["jax_device"] = str(jax.devices()[0])
    log.info("kernel table (%s mode)", "quick" if args.quick else "full")
    rows = _kernel_rows(sizes)
    counts = kernel.compile_counts()
    cost = flops.round_cost()
    iters = kernel.round_accounting(4096, 2 if args.quick else 4)
    j = _find(rows, "jax-float32", 16, 4096)
    eff = flops.efficiency(j.path_steps_per_s, iters, cost, facts["cores"], facts["mhz"]) \
        if j else {}
    log.info("farm rows")
    farm = farm_bench.measure(args.quick)
    log.info("radCAD")
    rad = _radcad(sizes, args.quick, bool(farm.get("available")))
    log.info("like-for-like baselines")
    fair_res = {} if args.quick or not farm.get("available") else fair.measure()
    log.info("adaptive sweep against the grid")
    adapt = adaptive.measure(args.quick or not farm.get("available"))
    facts["load_at_end"] = machine.load_average()
    results = {
        **_headline(rows, rad, farm, eff),
        **{k: fair_res.get(k) for k in fair.TARGETS}, "fair": fair_res,
        "adaptive_cost_vs_grid": adapt.get("adaptive_cost_vs_grid"), "adaptive": adapt,
        "quick": args.quick, "machine": facts, "n_steps": N_STEPS,
        "kernel": [r.to_dict() for r in rows], "compile_counts": counts,
        "round_cost": cost, "efficiency": eff, "radcad": rad, "farm": farm,
        "bench_seconds": time.perf_counter() - t0,
    }
    Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
    Path(args.md).write_text(report.render(results))
    print(report.headline_text(results))
    print(f"wrote {args.md} and {args.json} in {results['bench_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
