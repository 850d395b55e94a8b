"""Kernel throughput: JAX float32/float64 (one jitted block) vs the NumPy reference.

JAX rows time the compiled executable of ``kernels.simulate.block_fn()`` (ahead-of-time
``lower().compile()``, so compile time is measured on its own and the timed run is
exactly what ``simulate_block`` runs). NumPy rows run ``kernels.reference`` on the
same cells one after another in float64 (the old table; the like-for-like comparison, the
reference in the JAX row's precision, is ``benchmarks.fair``).
Throughput is in path-steps per second (cells x paths x steps / wall seconds).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import jax
import jax.numpy as jnp
import numpy as np

from kernels import COMPILE_COUNTER, reference, simulate_block, stack_params
from kernels.shocks import draw_normals
from kernels.simulate import block_fn

from .cells import N_STEPS, T_DOF, bench_block, bench_cells

log = logging.getLogger(__name__)


@dataclass
class Row:
    impl: str  # "jax-float32" | "jax-float64" | "numpy"
    n_paths: int
    n_cells: int  # cells in the block (JAX) or cells in the sweep (NumPy)
    measured_cells: int  # cells actually run (NumPy at large paths runs fewer)
    seconds: float  # wall seconds for measured_cells
    compile_s: float = float("nan")
    note: str = ""

    @property
    def path_steps_per_s(self) -> float:
        return self.measured_cells * self.n_paths * N_STEPS / self.seconds

    @property
    def cells_per_s(self) -> float:
        return self.measured_cells / self.seconds

    def to_dict(self) -> dict:
        return {**asdict(self), "path_steps_per_s": self.path_steps_per_s,
                "cells_per_s": self.cells_per_s}


def _compiled(n_cells: int, n_paths: int, dtype: str, cells=None):
    block = bench_block(n_cells) if cells is None else stack_params(cells)
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype), block)
    key = jax.random.key(0)
    t0 = time.perf_counter()
    exe = block_fn().lower(params, key, n_paths=n_paths, n_steps=N_STEPS, t_dof=T_DOF, dtype=dtype,
                       per_cell_keys=False, return_paths=False).compile()
    return exe, params, key, time.perf_counter() - t0


def jax_row(n_cells: int, n_paths: int, dtype: str = "float32", min_seconds: float = 1.0,
            cells=None) -> Row:
    """Compile once, then run until ``min_seconds`` have passed (at least once); best run.
    ``cells`` (a list of ModelParams) replaces the standard bench cells."""
    exe, params, key, compile_s = _compiled(n_cells, n_paths, dtype, cells)
    best, spent = float("inf"), 0.0
    while spent < min_seconds or best == float("inf"):
        t0 = time.perf_counter()
        jax.block_until_ready(exe(params, key))
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
    log.info("jax %s %d cells x %d paths: %.3f s (compile %.1f s)", dtype, n_cells, n_paths,
             best, compile_s)
    return Row(f"jax-{dtype}", n_paths, n_cells, n_cells, best, compile_s)


def numpy_row(n_cells: int, n_paths: int, max_cells: int | None = None) -> Row:
    """The reference on ``n_cells`` cells one after another (draws made once, shared by the
    cells as under common random numbers); runs only ``max_cells`` of them when given."""
    all_cells = bench_cells(n_cells)
    m = max_cells or n_cells  # evenly spaced over the sweep, so the subset is representative
    cells = [all_cells[i] for i in np.linspace(0, n_cells - 1, m).round().astype(int)]
    t0 = time.perf_counter()
    normals = np.random.default_rng(0).standard_normal((n_paths, N_STEPS, 3 + T_DOF))
    for p in cells:
        paths = reference.simulate_paths(p, normals, T_DOF)
        reference.cell_statistics(paths, p)
    dt = time.perf_counter() - t0
    note = "" if len(cells) == n_cells else (
        f"ran {len(cells)} of {n_cells} cells (evenly spaced); rate per path-step "
        "extrapolated to all")
    log.info("numpy %d/%d cells x %d paths: %.3f s", len(cells), n_cells, n_paths, dt)
    return Row("numpy", n_paths, n_cells, len(cells), dt, note=note)


def compile_counts(n_paths: int = 256) -> dict:
    """Calls vs compiles of ``simulate_block`` for repeated same-shape calls."""
    before = COMPILE_COUNTER["simulate_block"]
    t0 = time.perf_counter()
    calls = 0
    for seed, n in ((0, 4), (1, 4), (2, 4)):
        cells = bench_block(n)
        cells = cells._replace(leverage=cells.leverage * (1.0 + 0.01 * seed))
        simulate_block(cells, key=jax.random.key(seed), n_paths=n_paths, n_steps=N_STEPS)
        calls += 1
    return {"calls": calls, "compiles": COMPILE_COUNTER["simulate_block"] - before,
            "seconds": time.perf_counter() - t0}


def executed_lanes(rounds: np.ndarray, chunk: int, width: int | None) -> np.ndarray:
    """Lane-rounds the compacted cascade executes for one step of one chunk, from the
    rounds each path needed (``rounds (..., chunk)``): full width while more than
    ``width`` paths are active, then ``width`` lanes until the slowest path is done
    (:mod:`kernels.fixedpoint`); without compaction (``width`` None) full width
    throughout."""
    top = rounds.max(axis=-1)
    if width is None:
        return top * chunk
    # full-width rounds: the first k at which at most `width` paths still need more
    srt = -np.sort(-rounds, axis=-1)  # descending
    full = srt[..., width] if rounds.shape[-1] > width else np.zeros_like(top)
    return full * chunk + (top - full) * width


def round_accounting(n_paths: int = 4096, n_cells: int = 4) -> dict:
    """Cascade rounds per path-step, float32, over ``n_cells`` evenly spaced cells of the
    16-cell bench block, chunked as the kernel chunks them: ``useful`` (the rounds each
    path needs, averaged), ``executed`` (lane-rounds run per path-step: with the active
    set compacted, and as a masked full-width loop would), and the full-width rounds
    per chunk and step (the slowest path's)."""
    from jax import lax

    from kernels.cascade import init_state, step
    from kernels.fixedpoint import compaction_widths
    from kernels.shocks import exogenous_returns
    from kernels.simulate import chunk_shape

    @jax.jit
    def rounds(p, normals):
        ret = jnp.transpose(exogenous_returns(normals, p, T_DOF), (1, 2, 0))
        s0 = init_state(normals.shape[0], p.bank_weights.shape[-1], normals.dtype)
        return lax.scan(lambda s, r: step(s, r, p), s0, ret)[1].rounds  # (T, n)

    normals = draw_normals(jax.random.key(0), n_paths, N_STEPS, T_DOF, jnp.float32)
    k, chunk = chunk_shape(n_paths)
    widths = compaction_widths(chunk)
    picks = np.linspace(0, 15, n_cells).round().astype(int)
    useful, executed, masked, top = [], [], [], []
    for p in (bench_cells(16)[i] for i in picks):
        r = np.asarray(rounds(jax.tree.map(lambda v: jnp.asarray(v, "float32"), p), normals))
        r = np.pad(r, ((0, 0), (0, k * chunk - n_paths)))[:, : k * chunk]
        r = r.reshape(N_STEPS, k, chunk)
        useful.append(r.mean())
        executed.append(executed_lanes(r, chunk, widths[0] if widths else None).mean() / chunk)
        masked.append(executed_lanes(r, chunk, None).mean() / chunk)
        top.append(r.max(axis=-1).mean())
    return {"useful_rounds_per_path_step": float(np.mean(useful)),
            "executed_rounds_per_path_step": float(np.mean(executed)),
            "masked_rounds_per_path_step": float(np.mean(masked)),
            "rounds_per_chunk_step": float(np.mean(top)), "chunk": chunk,
            "narrow_width": widths[0] if widths else None}
