"""Run (or resume) an adaptive sweep: waves of ordinary farm runs appending cells to one cube.

Wave 1 is the plan's own design (Sobol' points over the axes' box). After each wave the
surrogate (:mod:`analysis.levelset`) is fitted to every cell so far, the stopping rules
are checked, and the next wave's cells (:func:`farm.adaptive.waves.next_wave`) are
appended to the cube (:func:`farm.store.grow.grow_cube`, whole blocks) and run by
:func:`farm.run.sweep.run_sweep`, which computes only the pending blocks.

The decisions are recorded in the cube's ``adaptive`` attr (JSON: the settings, every
wave's cells, picks, criterion and time, and why the waves stopped) and every cell
carries its ``wave`` and ``replicate``. A wave's cells depend only on the cells before
it (seeded fits and Sobol' candidates), so a run killed at any point and run again
ends with the same cube as an uninterrupted one: a wave is recorded right after it is
appended and runs only then, so cells beyond the last recorded wave were never
computed and are cut off (the wave is designed again, the same); a wave recorded but
not finished is run; nothing computed is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zarr

from analysis.levelset import Z95, logit
from farm.adaptive.acquire import frontier_flips
from farm.adaptive.state import (
    REFERENCE_POINTS,
    REFERENCE_SEED,
    WaveRecord,
    read_state,
    stop_reason,
    write_state,
)
from farm.adaptive.waves import CellsSoFar, fit_cells, next_wave
from farm.plan.adaptivespec import AdaptiveSpec
from farm.plan.design import adaptive_design, initial_unit_design
from farm.plan.plan import Plan
from farm.run.sweep import RunReport, run_sweep
from farm.store.cube import DONE_STATUSES, Cube, cube_exists, open_existing
from farm.store.grow import cell_lengths, grow_cube, truncate_cube
from farm.store.lock import StoreLock

__all__ = ["AdaptiveReport", "WaveRecord", "read_state", "run_adaptive"]

log = logging.getLogger(__name__)


@dataclass
class AdaptiveReport:
    url: str
    waves: list[WaveRecord]
    stopped: str
    runs: list[RunReport] = field(default_factory=list)  # the sweeps run in this session
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.runs)

    @property
    def n_cells(self) -> int:
        return self.waves[-1].stop if self.waves else 0


def _stored_design(group: Any, axes: tuple[str, ...], chunk: int, stop: int | None = None
                   ) -> Any:
    """The design of a cube's first ``stop`` cells (all by default), from its coordinates."""
    cut = slice(None, stop)
    table = np.stack([np.asarray(group[a][cut], float) for a in axes], axis=1)
    return adaptive_design(axes, table, np.asarray(group["wave"][cut]),
                           np.asarray(group["replicate"][cut]), chunk)


def _cells(cube: Cube, plan: Plan, spec: AdaptiveSpec) -> tuple[Any, CellsSoFar]:
    """(the design of the cube's cells, what they showed so far)."""
    design = _stored_design(cube.group, plan.design.axes, cube.chunks[0])
    table, rep = design.table, design.coords["replicate"]
    status = cube.cell_status()
    p = np.asarray(cube._array(spec.var)[...], float)
    k = np.where(np.isin(status, DONE_STATUSES), np.round(p * plan.sweep.paths), np.nan)
    return design, CellsSoFar(table, rep, k, plan.sweep.paths, np.asarray(spec.lo),
                              np.asarray(spec.hi))


def run_adaptive(plan: Plan, *, progress: Any = None,
                 notify: Callable[[str], None] = log.info,
                 runner: Callable[..., Any] | None = None) -> AdaptiveReport:
    """Run (or resume) the adaptive sweep of ``plan`` (its design is wave 1; its settings
    ``plan.sweep.adaptive``). ``progress``/``notify``/``runner`` as
    :func:`farm.run.sweep.run_sweep`'s (tests inject faults with ``runner``)."""
    from farm.run.dispatch import start_ray

    spec = plan.sweep.adaptive
    if spec is None:
        raise ValueError("run_adaptive needs a plan of sweep.method=adaptive")
    t0 = time.perf_counter()
    url = plan.store.url
    report = AdaptiveReport(url, [], "")
    ray_here = False
    try:
        if not plan.runtime.address:
            ray_here, _ = start_ray(None, plan.runtime.workers)
        _Waves(plan, spec, report, progress, notify, runner).run()
    finally:
        if ray_here:
            import ray

            ray.shutdown()
    report.seconds = time.perf_counter() - t0
    return report


def _run_wave(plan: Plan, design: Any, w: WaveRecord, progress: Any,
              notify: Callable[[str], None], report: AdaptiveReport,
              runner: Callable[..., Any] | None = None) -> bool:
    """Run the wave's pending blocks; False when a block failed as a whole (it raised
    after its retries: the waves stop, a rerun retries it). Cells whose outputs are not
    finite fail alone (status 2): the waves go on without them (NaN never enters the
    surrogate) and the run ends with exit status 1 naming them."""
    what = (f"{w.new_points} new points" + (f" + {w.more_paths} cells of more paths at "
                                           "earlier points" if w.more_paths else ""))
    notify(f"farm: adaptive wave {w.k}: {what} (cells {w.start}-{w.stop - 1})")
    t = time.perf_counter()
    extra = {} if runner is None else {"runner": runner}
    run = run_sweep(plan.with_design(design), progress=progress, notify=lambda _: None, **extra)
    report.runs.append(run)
    w.seconds += time.perf_counter() - t
    chunk = int(design.chunks[0])
    w.failed_cells = len(set(run.failed_cells))
    return set(run.failed) <= {int(c) // chunk for c in run.failed_cells}


def _reference(d: int) -> np.ndarray:
    return initial_unit_design(REFERENCE_POINTS, d, REFERENCE_SEED)


def _through(cells: CellsSoFar, wave: np.ndarray, k: int) -> CellsSoFar:
    """The cells of waves 1..k."""
    keep = np.asarray(wave) <= k
    return CellsSoFar(cells.table[keep], cells.replicate[keep], cells.k[keep], cells.paths,
                      cells.lo, cells.hi)


def _wave_line(w: WaveRecord, spec: AdaptiveSpec) -> str:
    moved = "" if w.flips is None else f"; the frontier moved at {100 * w.flips:.2g} % of " \
        "the reference points"
    moved += f"; undecided at {100 * (w.undecided or 0):.2g} %"
    return (f"farm: adaptive wave {w.k} done in {w.seconds:.0f} s: {w.stop} cells at "
            f"{w.points} points, {w.straddling} straddling {spec.var}={spec.level:g}{moved}")


class _Waves:
    """The loop of :func:`run_adaptive` over one cube."""

    def __init__(self, plan: Plan, spec: AdaptiveSpec, report: AdaptiveReport, progress: Any,
                 notify: Callable[[str], None], runner: Callable[..., Any] | None) -> None:
        self.plan, self.spec, self.report, self.runner = plan, spec, report, runner
        self.progress, self.notify = progress, notify
        self.url, self.opts = plan.store.url, plan.store.storage_options()
        self.fits: dict[int, Any] = {}
        self.ref = _reference(len(plan.design.axes))

    def undo_unrecorded_append(self, stop: int) -> None:
        """Cells beyond the last recorded wave were appended by a run killed before it
        recorded the wave (a wave runs only once recorded): never computed, so they are
        cut off, even from an append cut short, and the wave is designed again (the same
        cells: they depend only on the cells before)."""
        cube = open_existing(self.url, self.opts)
        if cell_lengths(cube) == {stop}:
            return
        g = zarr.open_group(cube._open_group().store, mode="r", zarr_format=3,
                            use_consolidated=False)  # the arrays' own, possibly longer
        design = _stored_design(g, self.plan.design.axes, cube.chunks[0], stop)
        with StoreLock(self.url, self.opts):
            truncate_cube(cube, design)

    def save(self, cube: Cube, waves: list[WaveRecord], stopped: str = "") -> None:
        with StoreLock(self.url, self.opts):
            write_state(cube, self.spec, waves, stopped)

    def fit(self, cells: CellsSoFar, wave: np.ndarray, k: int) -> Any:
        if k not in self.fits:
            self.fits[k] = fit_cells(_through(cells, wave, k), self.plan.sweep.seed)
        return self.fits[k]

    def finish(self, w: WaveRecord, cells: CellsSoFar, wave: np.ndarray) -> None:
        """Record a wave that ran: its fit, how far the frontier moved, the budget spent."""
        t = time.perf_counter()
        after = self.fit(cells, wave, w.k)
        mean, sd = after.predict(self.ref)
        w.undecided = float(np.mean(np.abs(mean - logit(self.spec.level)) < Z95 * sd))
        if w.k > 1:
            before = self.fit(cells, wave, w.k - 1)
            w.flips = frontier_flips(before, after, self.spec.level, self.ref)
        w.points = len(_through(cells, wave, w.k).pooled[0])
        w.path_steps = int(w.stop) * self.plan.sweep.paths * self.plan.sweep.steps
        w.seconds += time.perf_counter() - t
        w.done = True

    def run(self) -> None:
        plan, spec, report = self.plan, self.spec, self.report
        ran: set[int] = set()
        if not cube_exists(self.url, self.opts) or plan.store.overwrite:  # wave 1 creates it
            w1 = WaveRecord(1, 0, plan.design.n_cells, plan.design.n_cells, 0)
            ok = _run_wave(plan, plan.design, w1, self.progress, self.notify, report,
                           self.runner)
            report.waves = [w1]
            if not ok:  # a block that raised: rerun to retry it (NaN cells go on)
                return
            ran.add(1)
            plan = dataclasses.replace(plan, store=dataclasses.replace(plan.store,
                                                                       overwrite=False))
            self.plan = plan
            waves = [w1]
        else:  # a store made with other settings is refused before anything is read
            cube = open_existing(self.url, self.opts)
            cube.check_compatible(plan.config_hash, plan.config_yaml)
            state = read_state(cube) or {"waves": []}
            waves = [WaveRecord(**w) for w in state["waves"]] or [
                WaveRecord(1, 0, plan.design.n_cells, plan.design.n_cells, 0)]
        report.waves = waves
        self.undo_unrecorded_append(waves[-1].stop)
        while True:
            cube = open_existing(self.url, self.opts)
            design, cells = _cells(cube, plan, spec)
            wave = design.coords["wave"]
            w = waves[-1]
            if not w.done:
                if w.k not in ran:
                    if not _run_wave(plan, design, w, self.progress, self.notify, report,
                                     self.runner):
                        return
                    ran.add(w.k)
                    cube = open_existing(self.url, self.opts)
                    design, cells = _cells(cube, plan, spec)
                self.finish(w, cells, wave)
                self.save(cube, waves)
                self.notify(_wave_line(w, spec))
            report.stopped = stop_reason(waves, spec)
            if report.stopped:
                self.save(cube, waves, report.stopped)
                return
            fit = self.fit(cells, wave, w.k)
            pick = next_wave(cells, fit, spec, w.k + 1, plan.sweep.seed, spec.wave_cells)
            if len(pick.rows) == 0:
                report.stopped = "no cell left to add (every candidate is taken)"
                self.save(cube, waves, report.stopped)
                return
            grown = adaptive_design(
                design.axes, np.vstack([design.table, pick.rows]),
                np.r_[wave, np.full(len(pick.rows), w.k + 1)],
                np.r_[design.coords["replicate"], pick.replicate], design.chunks[0])
            with StoreLock(self.url, self.opts):
                grow_cube(cube, grown)
                waves.append(WaveRecord(w.k + 1, w.stop, grown.n_cells, pick.new_points,
                                        pick.more_paths, pick.straddling))
                write_state(cube, spec, waves, "")
