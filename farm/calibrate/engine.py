"""The waves of a calibration and its state (``<out>/state.json``, written atomically).

Wave 1 draws ``n_cells`` Latin-hypercube points over the priors. Wave k > 1 draws
``candidates`` points (over the priors for wave 2, then in the box around wave k-1's
screened candidates and kept draws), keeps those a Gaussian-process emulator (trained
on every simulated draw so far) finds plausible, and simulates at most ``n_cells`` of
them. The non-implausible volume (a share of the
prior's) is box share x share of candidates passing the screen x share of simulated
draws kept. The waves stop when no draw is kept, when the volume shrinks by less than
``min_shrink``, or after ``max_waves``. A wave is designed once (its CSV is kept) and a
finished wave is never run again: its cube is complete and its summary in the state.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from farm.calibrate.config import CalibrationConfig
from farm.calibrate.sampling import from_unit, kept_box, lhs, to_unit
from farm.calibrate.waves import (
    WaveScore,
    base_model,
    design_table,
    load_episodes,
    output_labels,
    run_wave,
    score_wave,
    write_csv_atomic,
)
from farm.errors import ConfigError

__all__ = ["CalibrationResult", "WaveSummary", "calibrate", "episodes_digest"]

log = logging.getLogger(__name__)


@dataclass
class WaveSummary:
    """One wave: ``n_cells`` draws simulated (``n_rows`` = draws x episodes cells),
    ``n_kept`` with I_max <= cutoff; ``volume_share``: the non-implausible share of the
    prior volume after it; ``box_share``/``screen_share``: how it was sampled;
    ``blocks_now``: blocks computed in this session (0 for a wave already finished)."""

    k: int
    n_cells: int
    n_rows: int
    box_share: float
    screen_share: float
    n_kept: int = 0
    volume_share: float = float("nan")
    done: bool = False
    seconds: float = 0.0
    blocks_now: int = 0
    passed_low: list[float] | None = None  # box of the candidates the emulator passed
    passed_high: list[float] | None = None


@dataclass
class CalibrationResult:
    cfg: CalibrationConfig
    labels: list[str]
    targets: list[Any]
    waves: list[WaveSummary]
    scores: list[WaveScore]
    stopped: str
    posterior_wave: int  # the wave whose kept draws are the posterior (0: none)
    digest: str = ""  # sha256 of the episodes (names, model values, targets)
    finished_before: set[int] = field(default_factory=set)  # waves done before this run
    files: dict[str, str] = field(default_factory=dict)


def episodes_digest(episodes: Sequence[Any]) -> str:
    import hashlib

    text = repr([(e.name, sorted(dict(e.model).items()), [tuple(vars(t).values()) if hasattr(
        t, "__dict__") else tuple(t) for t in e.targets]) for e in episodes])
    return hashlib.sha256(text.encode()).hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, sort_keys=True, default=float)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_state(out: Path, identity: str) -> dict[str, Any]:
    path = out / "state.json"
    if not path.exists():
        return {"identity": identity, "waves": {}}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError("calibration.out", str(out), "a calibration directory with a "
                          f"readable state.json ({exc}); delete it to start again") from None
    if state.get("identity") != identity:
        raise ConfigError("calibration.out", str(out), "a new directory, or one holding a "
                          "calibration with these settings and episodes",
                          f"invalid config calibration.out={str(out)!r}: it holds a "
                          "calibration with other settings or episodes; allowed: another "
                          "calibration.out, or the same settings (delete it to start again)")
    return state


def _read_draws(csv_path: Path, n_names: int, n_episodes: int) -> np.ndarray:
    from farm.plan.csvdesign import read_csv_design

    _, table = read_csv_design(csv_path)
    return table[::n_episodes, :n_names]


def _design(k: int, cfg: CalibrationConfig, scores: list[WaveScore], targets: list[Any],
            prev: WaveSummary | None) -> tuple[np.ndarray, WaveSummary]:
    """(draws in unit coordinates, the wave's summary so far) of wave ``k``.

    Wave 2 screens candidates over the whole prior; wave k > 2 over the box around wave
    k-1's screened candidates and kept draws (a dense picture of the region, so that a
    thin or curved region is not cut by the box of a few kept draws)."""
    from farm.calibrate.emulator import emulated_imax

    d = len(cfg.priors)
    if k == 1 or prev is None:
        u = lhs(cfg.n_cells, np.zeros(d), np.ones(d), cfg.seed)
        return u, WaveSummary(k, len(u), 0, 1.0, 1.0)
    last = scores[-1]
    inside = to_unit(last.x[last.kept(cfg.cutoff)], cfg.priors)
    if k == 2:
        low, high = np.zeros(d), np.ones(d)
    else:
        if prev.passed_low is not None:
            inside = np.concatenate([inside, [prev.passed_low, prev.passed_high]])
        low, high = kept_box(inside)
    box_share = float(np.prod(high - low))
    cand = lhs(cfg.candidates, low, high, cfg.seed + 1000 * k)
    u = np.concatenate([to_unit(s.x, cfg.priors) for s in scores])
    means = np.concatenate([s.means for s in scores])
    variances = np.concatenate([s.variances for s in scores])
    use = np.ones(len(targets), bool) if last.use is None else last.use
    i_em = emulated_imax(u, means[:, use], variances[:, use], last.paths,
                         [t for t, b in zip(targets, use, strict=True) if b],
                         cfg.model_discrepancy, cand)
    passing = np.flatnonzero(i_em <= cfg.cutoff)
    if len(passing) == 0:  # the emulator finds nothing: simulate its best guesses
        log.info("wave %d: no candidate passes the emulator; simulating the closest", k)
        u = cand[np.argsort(i_em)[: cfg.n_cells]]
        return u, WaveSummary(k, len(u), 0, box_share, 0.0)
    u = cand[passing[: cfg.n_cells]]
    return u, WaveSummary(k, len(u), 0, box_share, len(passing) / len(cand),
                          passed_low=cand[passing].min(axis=0).tolist(),
                          passed_high=cand[passing].max(axis=0).tolist())


def _volume(w: WaveSummary, candidates: int) -> float:
    """Non-implausible share of the prior volume estimated from wave ``w``."""
    if w.screen_share == 0.0:  # unscreened best guesses: each stands for 1/candidates
        return w.box_share * w.n_kept / candidates
    return w.box_share * w.screen_share * w.n_kept / max(w.n_cells, 1)


def _stop_reason(waves: list[WaveSummary], cfg: CalibrationConfig) -> str | None:
    w = waves[-1]
    if w.n_kept == 0:
        return f"wave {w.k} kept no draw: no parameters in the priors match every target"
    if len(waves) > 1 and w.volume_share > (1 - cfg.min_shrink) * waves[-2].volume_share:
        return (f"the non-implausible volume shrank by less than {100 * cfg.min_shrink:g} % "
                f"in wave {w.k}")
    if w.k >= cfg.max_waves:
        return f"max_waves={cfg.max_waves} reached"
    return None


def calibrate(cfg: CalibrationConfig, *, episodes: Sequence[Any] | None = None,
              progress: Callable[..., Any] | None = None,
              notify: Callable[[str], None] = log.info,
              held_out: str | None = None) -> CalibrationResult:
    """Run (or resume) the calibration ``cfg``; ``episodes`` default to ``cfg.episodes``
    loaded from conf/episode. Writes ``<out>/wave-K.csv``, ``wave-K.zarr``, state.json.
    ``held_out``: an episode simulated at every draw but not scored (leave-one-out)."""
    episodes = list(episodes) if episodes is not None else load_episodes(cfg.episodes)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    digest = episodes_digest(episodes)
    identity = f"{cfg.identity()}:{digest}" + (f":without {held_out}" if held_out else "")
    state = _load_state(out, identity)
    base = base_model(cfg.farm_overrides)
    targets = [t for ep in episodes for t in ep.targets]
    use = np.array([ep.name != held_out for ep in episodes for _ in ep.targets])
    waves: list[WaveSummary] = []
    scores: list[WaveScore] = []
    stopped, ray_here, before = "", False, set()
    try:
        for k in range(1, cfg.max_waves + 1):
            csv_path, cube = out / f"wave-{k}.csv", out / f"wave-{k}.zarr"
            rec = state["waves"].get(str(k))
            if rec is None or not csv_path.exists():
                u, new = _design(k, cfg, scores, targets, waves[-1] if waves else None)
                header, rows = design_table(from_unit(u, cfg.priors), cfg.names, episodes, base)
                write_csv_atomic(csv_path, header, rows)
                new.n_rows = len(rows)
                rec = asdict(new)
                state["waves"][str(k)] = rec
                _write_json(out / "state.json", state)
            w = WaveSummary(**rec)
            x = _read_draws(csv_path, len(cfg.priors), len(episodes))
            if not w.done:
                ray_here = ray_here or _start_ray(cfg)
                t0 = time.perf_counter()
                notify(f"farm: calibration wave {k}: {w.n_cells} draws x {len(episodes)} "
                       f"episode(s) = {w.n_rows} cells -> {cube}")
                report = run_wave(cfg, k, csv_path, cube, w.n_rows, progress=progress,
                                  notify=notify)
                w.blocks_now, w.seconds = report.done_now, time.perf_counter() - t0
            score = score_wave(cube, x, episodes, cfg.model_discrepancy, use)
            if not w.done:
                w.n_kept = int(np.sum(score.kept(cfg.cutoff)))
                w.volume_share = _volume(w, cfg.candidates)
                w.done = True
                state["waves"][str(k)] = asdict(w)
                _write_json(out / "state.json", state)
            else:
                w.blocks_now = 0
                before.add(k)
            waves.append(w)
            scores.append(score)
            reason = _stop_reason(waves, cfg)
            if reason:
                stopped = reason
                break
    finally:
        if ray_here:
            import ray

            ray.shutdown()
    post = max((w.k for w in waves if w.n_kept), default=0)
    return CalibrationResult(cfg, output_labels(episodes), targets, waves, scores,
                             stopped, post, digest, before)


def _start_ray(cfg: CalibrationConfig) -> bool:
    """Start (or join) Ray once for all waves; returns whether it was started here."""
    from farm.plan.compose import compose_config
    from farm.run.dispatch import start_ray

    rt = compose_config(list(cfg.farm_overrides)).runtime
    started, _ = start_ray(rt.address, int(rt.workers))
    return started
