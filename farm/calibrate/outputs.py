"""What a calibration leaves behind: ``posterior.csv``, ``posterior.json``, ``waves.csv``.

``posterior.csv``: one row per non-implausible draw of the posterior wave (the last wave
that kept any): the draw's parameter values (their units), its ``I_max`` and, per
``episode/target``, the simulated mean over paths. ``posterior.json``: provenance (the
calibration settings, their hash, the farm's overrides and seed, the episodes and their
digest, the waves, why it stopped, each parameter's prior and posterior range).
``waves.csv``: per wave the draws, cells, draws kept and the non-implausible volume share.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from farm.calibrate.engine import CalibrationResult
from farm.calibrate.posterior import parameter_ranges, posterior_draws

__all__ = ["write_outputs"]


def _atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _num(v: float) -> str:
    return repr(float(v)) if np.isfinite(v) else ("inf" if v == np.inf else "nan")


def write_outputs(result: CalibrationResult, *, report: bool = True) -> dict[str, str]:
    """Write the three files (and ``calibration.html`` with ``report``) into ``cfg.out``;
    returns {kind: path}."""
    cfg = result.cfg
    out = Path(cfg.out)
    x, imax, means = posterior_draws(result)
    header = [*cfg.names, "I_max", *result.labels]
    rows = [[_num(v) for v in (*x[i], imax[i], *means[i])] for i in range(len(x))]
    files = {"posterior": str(out / "posterior.csv"), "provenance": str(out / "posterior.json"),
             "waves": str(out / "waves.csv")}
    _atomic_text(Path(files["posterior"]), _csv_text(header, rows))
    wrows = [[w.k, w.n_cells, w.n_rows, w.n_kept, _num(w.volume_share), _num(w.box_share),
              _num(w.screen_share), f"{w.seconds:.1f}"] for w in result.waves]
    _atomic_text(Path(files["waves"]), _csv_text(
        ["wave", "draws", "cells", "kept", "volume_share", "box_share", "screen_share",
         "seconds"], wrows))
    prov = {
        "calibration": cfg.to_dict(), "calibration_hash": cfg.identity(),
        "episodes": list(cfg.episodes), "episodes_digest": result.digest,
        "seed": cfg.seed, "farm_overrides": list(cfg.farm_overrides),
        "waves": [asdict(w) for w in result.waves], "stopped": result.stopped,
        "posterior_wave": result.posterior_wave, "n_posterior": len(x),
        "parameters": parameter_ranges(result),
        "targets": [{"output": lab, "observed": float(t.observed), "sd": float(t.sd),
                     "kind": t.kind} for lab, t in zip(result.labels, result.targets,
                                                       strict=True)],
    }
    _atomic_text(Path(files["provenance"]), json.dumps(_clean(prov), indent=1))
    if report:
        from farm.calibrate.report import write_report

        files["report"] = str(write_report(result, out / "calibration.html"))
    return files


def _clean(v: Any) -> Any:
    """Plain JSON: non-finite numbers become null (NaN never becomes a number)."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v
