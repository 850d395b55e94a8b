"""The posterior of a calibration: the kept draws of its posterior wave, and how far
each parameter's range shrank from its prior's."""

from __future__ import annotations

from typing import Any

import numpy as np

from farm.calibrate.engine import CalibrationResult

__all__ = ["parameter_ranges", "posterior_draws"]


def posterior_draws(result: CalibrationResult) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, I_max, means) of the kept draws of the posterior wave (empty when none)."""
    cfg = result.cfg
    if not result.posterior_wave:
        m = len(result.labels)
        return np.zeros((0, len(cfg.priors))), np.zeros(0), np.zeros((0, m))
    s = result.scores[result.posterior_wave - 1]
    keep = s.kept(cfg.cutoff)
    return s.x[keep], s.imax[keep], s.means[keep]


def parameter_ranges(result: CalibrationResult) -> list[dict[str, Any]]:
    """Per parameter: prior [lo, hi], posterior [min, max] over the kept draws and the
    share of the prior's width left (1 = the data do not pin it down; NaN: no draw kept)."""
    x, _, _ = posterior_draws(result)
    out = []
    for j, p in enumerate(result.cfg.priors):
        lo, hi = (float(x[:, j].min()), float(x[:, j].max())) if len(x) else (np.nan, np.nan)
        out.append({"name": p.name, "prior": [p.lo, p.hi], "posterior": [lo, hi],
                    "width_share": (hi - lo) / (p.hi - p.lo) if len(x) else float("nan")})
    return out
