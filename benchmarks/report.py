"""Render ``BENCHMARKS.md`` from the results of one ``benchmarks.run``."""

from __future__ import annotations

from pathlib import Path

from .adaptive import section as adaptive_section
from .kernel import Row
from .report_fair import fair_section

TARGETS = [  # key, label, target text, passes(value) -> bool, format
    ("jax_vs_numpy_f32_4096", "JAX vs NumPy reference (active set), both float32, "
     "16 cells x 4,096 paths", ">= 5x", lambda v: v >= 5, "{:.1f}x"),
    ("jax_vs_numpy_f64_4096", "JAX vs NumPy reference (active set), both float64, "
     "16 cells x 4,096 paths", ">= 4x", lambda v: v >= 4, "{:.1f}x"),
    ("farm_vs_radcad_vectorised", "farm (2 workers) vs radCAD with NumPy state over paths "
     "(2 processes, deep copy off), same cells and paths", ">= 10x", lambda v: v >= 10,
     "{:.1f}x"),
    ("farm_vs_radcad_scalar", "farm (2 workers) vs radCAD scalar model, one run per path "
     "(2 processes, deep copy off), per path-step", ">= 300x", lambda v: v >= 300, "{:,.0f}x"),
    ("farm_vs_numpy_pool", "farm (2 workers) vs a multiprocessing pool (2) of the NumPy "
     "reference, same cells and paths", ">= 5x", lambda v: v >= 5, "{:.1f}x"),
    ("farm_overhead_default", "farm overhead vs bare kernel, default sweep, 1 core",
     "<= 10 %", lambda v: v <= 0.10, "{:.1%}"),
    ("speedup_2_workers", "2 vs 1 Ray workers, default sweep", ">= 1.7x",
     lambda v: v >= 1.7, "{:.2f}x"),
    ("driver_rss_growth_10k_to_1m", "driver peak RSS growth, 10k -> 1M cells (16 paths x "
     "8 steps, 2 workers)", "<= 20 %", lambda v: v <= 0.20, "{:+.1%}"),
    ("files_per_1000_cells_1m", "files in the store per 1,000 cells, 1M-cell sweep", "<= 20",
     lambda v: v <= 20, "{:.1f}"),
    ("compiles_second_run", "kernel compiles per worker in a second run of the same shapes",
     "0", lambda v: v == 0, "{:d}"),
    ("jax_f32_path_steps_per_s_4096", "JAX float32 path-steps/s, 16 x 4,096", "",
     lambda v: True, "{:.3g}"),
    ("useful_fraction_of_peak", "useful kernel flop rate (each path's own rounds) / one "
     "core's float32 peak", ">= 5 %", lambda v: v >= 0.05, "{:.1%}"),
    ("executed_fraction_of_peak", "executed kernel flop rate (lane-rounds run) / one core's "
     "float32 peak", "", lambda v: True, "{:.1%}"),
    ("adaptive_cost_vs_grid", "adaptive sweep's path-steps / the default grid's, critical "
     "leverage within 0.1 at every grid point", "<= 0.25", lambda v: v <= 0.25, "{:.3f}"),
]

CHANGES_FILE = Path(__file__).with_name("changes.md")
SCALE_FILE = Path(__file__).with_name("scale.md")  # measured by hand (farm run --dry-run)
"""What changed in the kernel and what each change bought (measured while developing)."""


def _fmt(v, fmt: str) -> str:
    return "not measured" if v is None else fmt.format(v)


def headline_text(res: dict) -> str:
    lines = []
    for key, label, target, ok, fmt in TARGETS:
        v = res.get(key)
        verdict = "" if v is None or not target else ("  [meets target]" if ok(v)
                                                       else "  [MISSES target]")
        lines.append(f"{label}: {_fmt(v, fmt)}{f' (target {target})' if target else ''}{verdict}")
    return "\n".join(lines)


def _headline_table(res: dict) -> list[str]:
    out = ["| metric | measured | target | |", "|---|---|---|---|"]
    for key, label, target, ok, fmt in TARGETS:
        v = res.get(key)
        mark = "" if v is None or not target else ("met" if ok(v) else "**missed**")
        out.append(f"| {label} (`{key}`) | {_fmt(v, fmt)} | {target} | {mark} |")
    return out


def _kernel_table(res: dict) -> list[str]:
    n_steps = res["n_steps"]
    rows = res["kernel"]
    out = [f"Device: `{res['machine'].get('jax_device')}`. {n_steps} steps. Wall time of one "
           "block (best of the runs within ~1 s; compile not included, shown apart).", "",
           "| implementation | paths | cells in block | path-steps/s | cells/s | compile s | "
           "vs NumPy float64 (same paths; old, mixed precision for float32) | note |",
           "|---|---|---|---|---|---|---|---|"]
    numpy = {r["n_paths"]: r for r in rows if r["impl"] == "numpy"}
    for r in rows:
        base = numpy.get(r["n_paths"])
        ratio = (f"{r['path_steps_per_s'] / base['path_steps_per_s']:.1f}x"
                 if base and r["impl"] != "numpy" else "")
        comp = "" if r["compile_s"] != r["compile_s"] else f"{r['compile_s']:.1f}"
        cells = (r["n_cells"] if r["impl"] != "numpy"
                 else f"{r['n_cells']} one after another")
        out.append(f"| {r['impl']} | {r['n_paths']:,} | {cells} | {r['path_steps_per_s']:.3g} | "
                   f"{r['cells_per_s']:.3g} | {comp} | {ratio} | {r['note']} |")
    return out


def _runs(d: dict) -> str:
    """``fastest of 38.0, 37.7 s`` when the measurement was repeated, else ``""``."""
    walls = d.get("walls_s") or []
    return f"fastest of {', '.join(f'{w:.1f}' for w in walls)} s" if len(walls) > 1 else ""


def _walls(d: dict) -> str:
    return f" ({_runs(d)})" if _runs(d) else ""


def _farm_section(res: dict) -> list[str]:
    f = res["farm"]
    if not f.get("available"):
        return [f"{f.get('note')}."]
    out = []

    def ov(name: str, d: dict | None) -> None:
        if not d or "farm" not in d:
            out.append(f"- {name}: not measured ({(d or {}).get('error', 'skipped')})")
            return
        fa, ba = d["farm"], d["bare"]
        whole = fa.get("run_sweep_s", fa["wall_s"]) / ba["wall_s"] - 1.0
        blocks = f"{fa['n_blocks']} block{'s' if fa['n_blocks'] != 1 else ''}"
        runs = f"{_runs(fa)}; " if _runs(fa) else ""
        out.append(f"- **{name}** ({fa['n_cells']} cells, {blocks}): farm "
                   f"{fa['wall_s']:.1f} s ({runs}first task submitted -> consolidated "
                   f"cube, compile included; before it, Ray start-up {fa['ray_start_s']:.1f} s "
                   f"and the run's setup {fa.get('setup_s', 0):.1f} s: validation, design, "
                   f"store lock, cube template) vs bare kernel {ba['wall_s']:.1f} s"
                   f"{_walls(ba)} -> overhead **{d['overhead']:.1%}** ({whole:.1%} with the "
                   f"setup); compiles per worker {fa['compiles_per_worker']}, bare compiles "
                   f"{ba['compiles']}; worker peak RSS {fa['worker_peak_rss_mb']:.0f} MB, "
                   f"driver {fa['driver_peak_rss_mb']:.0f} MB")

    out.append("Both sides on one core (`sched_setaffinity` before Ray/JAX start; workers "
               "single-threaded XLA, `NPROC=1`).")
    ov("smoke sweep", f.get("smoke"))
    ov("default sweep", f.get("default"))
    de = f.get("default") or {}
    if "farm" in de and "kernel_s" in de["farm"]:
        fa, ba = de["farm"], de["bare"]
        slower = fa["kernel_s"] - ba["wall_s"]
        rest = fa["wall_s"] - fa["kernel_s"] - fa["write_s"]
        out.append(
            f"- where the overhead goes (default sweep, {fa['wall_s'] - ba['wall_s']:.1f} s): "
            f"the worker's kernel calls took {fa['kernel_s']:.1f} s against the bare "
            f"kernel's {ba['wall_s']:.1f} s ({slower:+.1f} s: Ray's own processes, idle, "
            f"take ~3 % of the one core they share with the worker); Zarr writes "
            f"{fa['write_s']:.1f} s ({1000 * fa['write_s'] / fa['n_blocks']:.0f} ms per "
            f"block); the remaining {rest:.1f} s are the worker's imports that had not "
            f"finished when the first block arrived, task round trips, and the final "
            f"consolidation. Load average {res['machine']['load_at_start'][0]:.1f} at the "
            f"start of the benchmark run, {res['machine']['load_at_end'][0]:.1f} at the end.")
    w = f.get("workers")
    if w and "speedup" in w:
        two = w["two"]
        per = (f"; summed kernel time {two['kernel_s']:.1f} s vs {w['one']['kernel_s']:.1f} s "
               f"with one worker" if "kernel_s" in two else "")
        out.append(f"- **1 vs 2 workers** (default sweep; 1 worker on core 0, 2 workers on "
                   f"cores 0-1 with the driver and Ray's processes): "
                   f"{w['one']['wall_s']:.1f} s vs {two['wall_s']:.1f} s{_walls(two)} -> "
                   f"**{w['speedup']:.2f}x**{per} (each worker compiles the kernel "
                   "once, so two workers compile twice, in parallel; Ray's processes and "
                   "the driver share the two cores; the last block of one worker runs "
                   "alone)")
    r = f.get("rss")
    if r and "growth" in r:
        big = r["large"]
        out.append(f"- **driver RSS and files at a million cells** (`farm run`, 2 workers, 16 "
                   "paths x 8 steps per cell so that cells dominate; peak RSS polled every "
                   f"0.2 s): {r['small']['n_cells']:,} cells "
                   f"{r['small']['driver_peak_rss_mb']:.0f} MB, {big['n_cells']:,} cells "
                   f"{big['driver_peak_rss_mb']:.0f} MB -> **{r['growth']:+.1%}**; worker peak "
                   f"{big['worker_peak_rss_mb']:.0f} MB; the 1M-cell store holds "
                   f"{big['store_files']:,} files ({big['n_blocks']} blocks of "
                   f"{big['n_cells'] // big['n_blocks']:,} cells, automatic block size) -> "
                   f"**{r['files_per_1000_cells']:.1f} files per 1,000 cells**; the run took "
                   f"{big['run_sweep_s']:.0f} s")
    sr = f.get("second_run")
    if sr and "compiles" in sr:
        out.append(f"- **compile cache** (smoke sweep twice, 1 worker, a fresh "
                   f"`FARM_JAX_CACHE`): first run {sr['first']['compiles_per_worker']} compile(s) "
                   f"per worker, blocks {sr['first']['wall_s']:.1f} s; second run "
                   f"**{sr['compiles']}** compiles ({sr['second']['loaded_per_worker']} loaded "
                   f"from the cache), blocks {sr['second']['wall_s']:.1f} s. The other farm rows "
                   "run with the cache off, so they include the compile like the bare kernel")
    z = f.get("zarr")
    if z:
        out.append(f"- **Zarr writes** (default sweep layout, synthetic stats, "
                   f"{z['n_blocks']} chunk-aligned blocks incl. status): "
                   f"{z['n_blocks'] / z['wall_s']:.1f} blocks/s, "
                   f"{z['n_cells'] / z['wall_s']:,.0f} cells/s, "
                   f"{z['payload_bytes'] / z['wall_s'] / 2**20:.2f} MB/s of payload")
    return out


def _agreement(rc: dict) -> str:
    """One line: how closely radCAD's per-path outputs match the JAX kernel's."""
    a = rc.get("agreement")
    if not a:
        return "- agreement with the JAX kernel: not measured"
    verdict = ("agree" if a["agrees"] else
               f"**disagree** in {', '.join(a['disagreeing_outputs'])}")
    return (f"- same model: its per-path outputs and the JAX kernel's (`simulate_cell`, "
            f"float64, the same normal draws) {verdict} within {a['rtol']:g} of each "
            f"output's largest value in the cell; drawdowns differ by at most "
            f"{a['max_abs_dev_drawdowns']:.1e}, any of the {a['outputs_compared']} outputs "
            f"by {a['max_scaled_dev']:.1e} of its scale (`{a['max_scaled_dev_output']}`). "
            "both solve each step's cascade by plain fixed-point iteration to `tol` "
            f"({rc['mean_rounds_per_step']:.2f} rounds per path-step on average in radCAD); "
            "`cascade_rounds_max` is not compared (rounding moves near-critical counts)")


def _radcad_section(res: dict) -> list[str]:
    r = res["radcad"]
    if "radcad" not in r:
        return [f"not measured: {r.get('error')}"]
    rc, fa = r["radcad"], r["farm"]
    return [
        f"radCAD {rc['version'].split()[0]} (numpy {rc['version'].split()[-1]}, own venv "
        f"`benchmarks/.venv-radcad`), model `benchmarks/radcad_model.py`: scalar state, one "
        "policy + one state-update function per variable per step, one Monte Carlo run per "
        f"path, multiprocessing backend with {rc['processes']} processes. Same 4 cells "
        "(Oct-2025, leverage {1, 2} x correlation {0.2, 0.8}).",
        "",
        f"- radCAD: {rc['cells']} cells x {rc['paths']} paths x {rc['steps']} steps in "
        f"{rc['seconds']:.1f} s -> {rc['path_steps_per_s']:,.0f} path-steps/s",
        _agreement(rc),
        f"- farm ({fa['what']}): {fa['path_steps_per_s']:.3g} path-steps/s"
        + (f" on {fa['n_cells']} cells x {fa['path_steps'] // fa['n_cells'] // 96:,} paths"
           if "n_cells" in fa else ""),
        f"- ratio per path-step: **{r['ratio']:,.0f}x** (radCAD measured on fewer paths; "
        "its cost is linear in paths: one Monte Carlo run per path)",
        f"- for scale: the bare kernel on one core ({res['jax_f32_path_steps_per_s_4096']:.3g} "
        f"path-steps/s) is {res['jax_f32_path_steps_per_s_4096'] / rc['path_steps_per_s']:,.0f}x "
        f"radCAD on {rc['processes']} processes; the farm's ratio includes its compile "
        "(once per worker) and its start-up, which a sweep this small does not amortise fully",
    ]


def _efficiency(res: dict) -> list[str]:
    e, c = res.get("efficiency") or {}, res["round_cost"]
    if not e:
        return ["not measured"]
    return [
        f"XLA's cost model counts **{c['flops_per_path_round']:.0f} flops + "
        f"{c['transcendentals_per_path_round']:.0f} transcendentals** (exp, sqrt; charged "
        f"10 flops each) per path per cascade round, {c['bytes_per_path_round']:.0f} bytes "
        "accessed. Rounds per path-step, from the rounds every path needed in every step "
        f"(4 cells x 4,096 paths, chunks of {e['chunk']}):",
        "",
        "| | rounds per path-step | flop-equivalents per path-step | GFLOP/s at the "
        "16 x 4,096 rate | fraction of one core's float32 peak |",
        "|---|---|---|---|---|",
        f"| useful (each path's own rounds) | {e['useful_rounds_per_path_step']:.2f} | "
        f"{e['useful_flop_equiv_per_path_step']:,.0f} | {e['useful_gflops']:.1f} | "
        f"**{e['useful_fraction_of_one_core']:.1%}** (`useful_fraction_of_peak`) |",
        f"| executed (compacted: full width while more than {e['narrow_width']} paths "
        f"are active, then {e['narrow_width']} lanes) | "
        f"{e['executed_rounds_per_path_step']:.2f} | "
        f"{e['executed_flop_equiv_per_path_step']:,.0f} | {e['executed_gflops']:.1f} | "
        f"**{e['executed_fraction_of_one_core']:.1%}** (`executed_fraction_of_peak`) |",
        f"| a masked full-width loop would execute | {e['masked_rounds_per_path_step']:.2f} "
        f"| | | |",
        "",
        f"The slowest path of a chunk needs {e['rounds_per_chunk_step']:.1f} rounds per "
        "step on average. Peak: "
        f"{e['peak_gflops_one_core']:.0f} GFLOP/s = {res['machine']['mhz']:.0f} MHz x 32 "
        "flops/cycle (2 x 256-bit FMA); the kernel runs on one core per block (the farm puts "
        "one worker per core). What keeps it from peak: the cascade is "
        "min/max/clip/select-heavy (no FMA pairs), ~40 small fusions per round each stream "
        "their operands from L1/L2 (~1 KB per path-round), the per-step work outside the "
        "cascade (state update, statistics, draws) is not counted, and the narrow loop "
        "still carries converged lanes.",
    ]


def render(res: dict) -> str:
    m = res["machine"]
    v = m["versions"]
    mode = "`--quick` (smaller sizes, no farm rows)" if res["quick"] else "full"
    lines = [
        "# Benchmarks",
        "",
        f"Regenerated by `make bench` ({mode}) on {m['date']}, commit `{m['git_commit']}`, in "
        f"{res['bench_seconds']:.0f} s. All numbers below come from that one run on this "
        "machine, side by side; the machine is shared, so expect +-20 % run to run "
        f"(load average at start {m['load_at_start'][0]:.1f}, at end "
        f"{m['load_at_end'][0]:.1f}). Raw numbers: `benchmarks/results.json`.",
        "",
        "## Headline",
        "",
        *_headline_table(res),
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores, {m['mhz']:.0f} MHz, SIMD {m['simd']}",
        f"- memory: {m['memory_gib']} GiB; {m['platform']}",
        f"- accelerators: {', '.join(m['accelerators']) or 'none (CPU only)'}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Kernel throughput",
        "",
        *_kernel_table(res),
        "",
        "NumPy is the path-vectorised reference (`kernels/reference.py`, float64, loops over "
        "steps and cascade rounds), running the cells one after another. At 65,536 paths it "
        "runs one cell and its per-path-step rate stands for the sweep (extrapolated: its "
        "cost is linear in cells).",
        "",
        f"Compiles: {res['compile_counts']['calls']} calls of `simulate_block` with the same "
        f"shapes (other parameter values, other keys) compiled "
        f"{res['compile_counts']['compiles']} time(s).",
        "",
        "## Work per path-step and fraction of peak",
        "",
        *_efficiency(res),
        "",
        "## Like-for-like baselines",
        "",
        *fair_section(res.get("fair") or {}),
        "",
        "## Adaptive sweep against the grid (`benchmarks.adaptive`)",
        "",
        *adaptive_section(res.get("adaptive") or {}),
        "",
        "## radCAD (old comparison: farm at 65,536 paths vs radCAD at 16, per path-step)",
        "",
        *_radcad_section(res),
        "",
        "## Farm",
        "",
        *_farm_section(res),
        "",
        "## What changed and what each change bought",
        "",
        CHANGES_FILE.read_text().rstrip(),
        "",
        "## Scale: the driver at a million cells",
        "",
        SCALE_FILE.read_text().rstrip(),
    ]
    return "\n".join(lines) + "\n"


__all__ = ["Row", "headline_text", "render"]
