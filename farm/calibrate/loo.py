"""Leave-one-episode-out (``farm calibrate --loo``): is each episode predicted by a
calibration that never saw it?

For each episode k a calibration runs into ``<out>/loo-<k>/`` with k simulated at every
draw but left out of the implausibility (so its waves and emulator never see it). Its
prediction for each of k's targets is the 95 % band of the observation: the 2.5-97.5 %
quantiles of the kept draws' simulated means, widened by 1.96 sqrt(sd^2 + var_model)
(the figure's own error and the model discrepancy). A ``value`` target is inside when
its observed figure is in the band; a ``lower_bound`` when the band reaches it.
The verdicts go to ``<out>/loo.json``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from farm.calibrate.config import CalibrationConfig
from farm.calibrate.engine import CalibrationResult, calibrate
from farm.calibrate.posterior import posterior_draws
from farm.calibrate.waves import load_episodes, var_model

__all__ = ["leave_one_out", "predicted_bands"]

log = logging.getLogger(__name__)


def predicted_bands(result: CalibrationResult, episode: str) -> list[dict[str, Any]]:
    """Per target of ``episode``: observed, kind, the predicted 95 % band (None without a
    posterior) and whether the observation is inside it (None without a posterior)."""
    _, _, means = posterior_draws(result)
    rows = []
    for j, (label, t) in enumerate(zip(result.labels, result.targets, strict=True)):
        if label.split("/", 1)[0] != episode:
            continue
        obs = float(t.observed)
        band, inside = None, None
        m = means[:, j][np.isfinite(means[:, j])] if len(means) else np.zeros(0)
        if len(m):
            half = 1.96 * math.sqrt(float(t.sd) ** 2 + var_model(t, result.cfg.model_discrepancy))
            lo, hi = np.quantile(m, [0.025, 0.975])
            band = (float(lo - half), float(hi + half))
            inside = band[1] >= obs if t.kind == "lower_bound" else band[0] <= obs <= band[1]
        rows.append({"output": label, "kind": t.kind, "observed": obs, "band": band,
                     "inside": inside, "n_posterior": len(m)})
    return rows


def leave_one_out(cfg: CalibrationConfig, *, episodes: Sequence[Any] | None = None,
                  progress: Callable[..., Any] | None = None,
                  notify: Callable[[str], None] = log.info) -> list[dict[str, Any]]:
    """Run (or resume) one calibration per left-out episode; returns the verdict rows."""
    episodes = list(episodes) if episodes is not None else load_episodes(cfg.episodes)
    rows: list[dict[str, Any]] = []
    for ep in episodes:
        sub = replace(cfg, out=str(Path(cfg.out) / f"loo-{ep.name}"))
        notify(f"farm: leave-one-out: calibrating without {ep.name} -> {sub.out}")
        result = calibrate(sub, episodes=episodes, progress=progress, notify=notify,
                           held_out=ep.name)
        rows += predicted_bands(result, ep.name)
    path = Path(cfg.out) / "loo.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    tmp.replace(path)
    return rows
