"""One wave: parameter draws x episodes as a CSV design, run as an ordinary farm sweep,
then scored: each draw's implausibility, maximised over every target of every episode.

Row ``i * E + e`` of the design is draw ``i`` in episode ``e`` (E episodes): the
episode's model values with the draw's values over them; columns neither sets keep
the base model's value (``model`` of the composed farm config).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from farm.calibrate.config import CalibrationConfig
from farm.errors import ConfigError

__all__ = ["WaveScore", "design_table", "load_episodes", "output_labels", "run_wave",
           "score_wave", "write_csv_atomic"]

log = logging.getLogger(__name__)


def load_episodes(names: Sequence[str]) -> list[Any]:
    """The :class:`farm.plan.episodes.Episode` of each name (composing ``episode=NAME``)."""
    from farm.plan.compose import compose_config
    from farm.plan.episodes import episode_from

    return [episode_from(compose_config([f"episode={n}"])) for n in names]


def output_labels(episodes: Sequence[Any]) -> list[str]:
    """``episode/target`` for every target of every episode, in scoring order."""
    return [f"{ep.name}/{t.name}" for ep in episodes for t in ep.targets]


def design_table(x: np.ndarray, names: Sequence[str], episodes: Sequence[Any],
                 base_model: Mapping[str, Any]) -> tuple[list[str], np.ndarray]:
    """(header, rows) of a wave's CSV design for draws ``x`` (n, d) in parameter units."""
    from farm.plan.axes import check_axis_name

    extra = sorted({k for ep in episodes for k in ep.model} - set(names))
    for ep in episodes:
        for k in ep.model:
            if k not in names:
                check_axis_name(k, f"episode {ep.name}: model.{k}")
    header = [*names, *extra]
    rows = np.empty((len(x) * len(episodes), len(header)))
    for e, ep in enumerate(episodes):
        fixed = [float(ep.model.get(k, base_model[k])) for k in extra]
        rows[e::len(episodes), : len(names)] = x
        rows[e::len(episodes), len(names):] = fixed
    return header, rows


def write_csv_atomic(path: Path, header: Sequence[str], rows: np.ndarray) -> None:
    """Write the CSV (exact float text) to a temporary file, then rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for row in rows:
            w.writerow([repr(float(v)) for v in row])
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def wave_overrides(cfg: CalibrationConfig, k: int, csv_path: Path, cube: Path,
                   n_rows: int) -> list[str]:
    """The farm overrides of wave ``k``'s sweep (blocks of at most 128 cells, at least 8
    blocks unless ``runtime.block_cells`` is given)."""
    blocks = [] if any(o.startswith("runtime.block_cells=") for o in cfg.farm_overrides) else [
        f"runtime.block_cells={max(1, min(128, -(-n_rows // 8)))}"]  # >= 8 blocks to share
    return [*blocks, *cfg.farm_overrides, "sweep=csv", f"sweep.csv={csv_path}",
            f"sweep.paths={cfg.paths}", f"sweep.steps={cfg.steps}", f"store.url={cube}",
            "store.paths=true", f"name=calibration-wave-{k}"]


def run_wave(cfg: CalibrationConfig, k: int, csv_path: Path, cube: Path, n_rows: int,
             progress: Callable[..., Any] | None = None,
             notify: Callable[[str], None] = log.info) -> Any:
    """Run (or resume) wave ``k``'s sweep; returns its :class:`farm.run.sweep.RunReport`.
    A wave whose blocks failed raises RuntimeError (a rerun retries them)."""
    from farm.plan.compose import compose_config
    from farm.plan.convert import make_plan
    from farm.run.sweep import run_sweep

    plan = make_plan(compose_config(wave_overrides(cfg, k, csv_path, cube, n_rows)))
    report = run_sweep(plan, progress=progress, notify=notify)
    if not report.ok:
        raise RuntimeError(f"wave {k}: {len(report.failed)} block(s) of {cube} failed; "
                           "rerun the same command to retry them")
    return report


@dataclass(frozen=True)
class WaveScore:
    """A scored wave. ``x``: draws (n, d) in parameter units; ``means``/``variances``:
    per draw and output (n, m), the simulated per-path mean and variance; ``imp``: the
    implausibility of each (n, m); ``imax``: its maximum per draw (inf for a draw with a
    failed cell: NaN never becomes a number); ``paths``: paths per cell."""

    x: np.ndarray
    means: np.ndarray
    variances: np.ndarray
    imp: np.ndarray
    paths: int
    use: np.ndarray | None = None  # the outputs scored (None: all; leave-one-out drops some)

    @property
    def imax(self) -> np.ndarray:
        imp = self.imp if self.use is None else self.imp[:, self.use]
        bad = ~np.all(np.isfinite(imp), axis=1)
        return np.where(bad, np.inf, np.max(np.where(np.isfinite(imp), imp, 0),
                                            axis=1, initial=0.0))

    def kept(self, cutoff: float) -> np.ndarray:
        return self.imax <= cutoff


def var_model(target: Any, discrepancy: float) -> float:
    """Model-discrepancy variance of a target: (discrepancy x |observed|)^2."""
    return float((discrepancy * abs(float(target.observed))) ** 2)


def score_wave(cube: Path, x: np.ndarray, episodes: Sequence[Any], discrepancy: float,
               use: np.ndarray | None = None) -> WaveScore:
    """Read the wave's per-path outputs and score every draw against every target."""
    import xarray as xr

    from farm.plan.episodes import implausibility, per_path_quantities
    from kernels.cubeformat import DONE_STATUSES, STATUS_VAR

    ds = xr.open_zarr(str(cube), zarr_format=3)
    names = [v for v in ds.data_vars if str(v).endswith("_paths")]
    arrays = {str(v).removesuffix("_paths"): np.asarray(ds[v].values, dtype=np.float64)
              for v in names}
    done = np.isin(np.asarray(ds[STATUS_VAR].values), DONE_STATUSES)
    n, n_ep = len(x), len(episodes)
    if len(done) != n * n_ep:
        raise ValueError(f"{cube} holds {len(done)} cells, the wave {n} x {n_ep}")
    m = sum(len(ep.targets) for ep in episodes)
    means, variances, imp = (np.full((n, m), np.nan) for _ in range(3))
    n_paths = next(iter(arrays.values())).shape[1]
    for i in range(n):
        j = 0
        for e, ep in enumerate(episodes):
            row = i * n_ep + e
            q = per_path_quantities({k: a[row] for k, a in arrays.items()}) if done[row] else {}
            for t in ep.targets:
                sim = np.asarray(q.get(t.quantity, np.full(n_paths, np.nan)), dtype=float)
                if done[row] and np.all(np.isfinite(sim)):
                    means[i, j], variances[i, j] = float(np.mean(sim)), float(np.var(sim))
                    imp[i, j] = implausibility(sim, t, var_model(t, discrepancy))
                j += 1
    return WaveScore(np.asarray(x, dtype=float), means, variances, imp, int(n_paths), use)


def base_model(farm_overrides: Sequence[str]) -> dict[str, Any]:
    """The base model's values (the composed farm config with the user's overrides)."""
    from omegaconf import OmegaConf

    from farm.plan.compose import compose_config

    model = OmegaConf.to_container(compose_config(list(farm_overrides)).model)
    assert isinstance(model, dict)
    return {str(k): v for k, v in model.items()}


def check_episodes(episodes: Sequence[Any]) -> None:
    """Every target names a quantity and has a positive sd (else ConfigError)."""
    for ep in episodes:
        if not ep.targets:
            raise ConfigError(f"episode {ep.name}: targets", [], "at least one target")
