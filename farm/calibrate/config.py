"""The calibration settings: ``conf/calibration/NAME.yaml`` plus ``calibration.*`` overrides.

:func:`load_calibration` reads the file, applies the overrides, checks every value and
returns a frozen :class:`CalibrationConfig`. Every mistake is a
:class:`farm.errors.ConfigError` naming the key (exit 2 in the CLI). Overrides that are
not ``calibration.*`` are farm overrides (``runtime.workers=2``, ``seed=3``,
``model=oct2025``...): they go to every wave's sweep, except the keys the calibration
sets itself (``sweep.*``, ``store.url``, ``store.paths``, ``store.overwrite``, ``name``).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from farm.errors import ConfigError, show_value
from farm.plan.compose import CONF_DIR

__all__ = ["CalibrationConfig", "Prior", "load_calibration", "split_overrides"]

_INTS = {"n_cells": 2, "paths": 2, "steps": 1, "max_waves": 1, "candidates": 1, "seed": 0}
_FLOATS = ("min_shrink", "cutoff", "model_discrepancy")
KEYS = ("out", "episodes", "priors", *_INTS, *_FLOATS)
_RESERVED = ("sweep", "store.url", "store.paths", "store.overwrite", "name")


@dataclass(frozen=True)
class Prior:
    """A uniform prior on ``[lo, hi]`` in the parameter's units (kernels/paramspec.py)."""

    name: str
    lo: float
    hi: float


@dataclass(frozen=True)
class CalibrationConfig:
    """One calibration. ``out``: its directory; ``episodes``: names under conf/episode;
    ``n_cells``: draws per wave; ``paths``/``steps``: per cell; ``cutoff``: the largest
    implausibility kept; ``model_discrepancy``: the model error's sd as a share of
    |observed|; ``min_shrink``: stop when the kept volume shrinks by less than this
    share; ``candidates``: emulator-screened points per later wave; ``seed``: of the
    draws; ``farm_overrides``: passed to every wave's sweep."""

    name: str
    out: str
    episodes: tuple[str, ...]
    priors: tuple[Prior, ...]
    n_cells: int
    paths: int
    steps: int
    max_waves: int
    min_shrink: float
    cutoff: float
    model_discrepancy: float
    candidates: int
    seed: int
    farm_overrides: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.priors)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["priors"] = {p.name: [p.lo, p.hi] for p in self.priors}
        d["episodes"], d["farm_overrides"] = list(self.episodes), list(self.farm_overrides)
        return d

    def identity(self) -> str:
        """sha256 of what decides the waves' numbers: everything but ``out``, ``name``,
        ``max_waves`` (a longer rerun continues the same waves) and the ``runtime.*``
        overrides (how the sweeps run never changes their numbers)."""
        d = {k: v for k, v in self.to_dict().items() if k not in ("out", "max_waves", "name")}
        d["farm_overrides"] = [o for o in self.farm_overrides
                               if not o.lstrip("+~").startswith("runtime.")]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()

    def without(self, episode: str, out: str) -> CalibrationConfig:
        """The same calibration without one episode, into ``out`` (leave-one-out)."""
        from dataclasses import replace

        return replace(self, episodes=tuple(e for e in self.episodes if e != episode), out=out)


def split_overrides(overrides: Sequence[str], quick: bool = False
                    ) -> tuple[str, list[str], list[str]]:
    """(file name, ``calibration.*`` overrides without the prefix, farm overrides)."""
    name, ours, farm = ("quick" if quick else "default"), [], []
    for ov in overrides:
        ov = str(ov).strip()
        key = ov.lstrip("+~").partition("=")[0]
        if key == "calibration":
            name = ov.partition("=")[2].strip()
        elif key.startswith("calibration."):
            ours.append(ov.lstrip("+").removeprefix("calibration."))
        else:
            if any(key == r or key.startswith(r + ".") for r in _RESERVED):
                raise ConfigError(key, ov.partition("=")[2], "calibration.* keys and farm "
                                  "keys other than sweep.*, store.url, store.paths, "
                                  "store.overwrite and name (farm calibrate sets those)")
            farm.append(ov)
    return name, ours, farm


def load_calibration(overrides: Sequence[str] = (), *, quick: bool = False,
                     conf_dir: Path = CONF_DIR) -> CalibrationConfig:
    """Read ``conf/calibration/<name>.yaml`` (``quick`` with ``quick=True``; another with
    ``calibration=NAME``), apply ``calibration.KEY=VALUE`` overrides, validate."""
    from omegaconf import OmegaConf

    name, ours, farm = split_overrides(overrides, quick)
    files = sorted(p.stem for p in (conf_dir / "calibration").glob("*.yaml"))
    if name not in files:
        raise ConfigError("calibration", name, f"one of {', '.join(files)}")
    raw = OmegaConf.to_container(OmegaConf.load(conf_dir / "calibration" / f"{name}.yaml"))
    assert isinstance(raw, dict)
    for ov in ours:
        key, sep, text = ov.partition("=")
        if not sep and not key.startswith("~"):
            raise ConfigError(f"calibration.{key}", None, "calibration.KEY=VALUE")
        _apply(raw, key, text)
    return _validate(name, raw, tuple(farm))


def _apply(raw: dict[str, Any], key: str, text: str) -> None:
    from omegaconf import OmegaConf

    if key.startswith("~priors."):
        raw.get("priors", {}).pop(key.removeprefix("~priors."), None)
        return
    try:
        value = OmegaConf.to_container(OmegaConf.from_dotlist([f"v={text}"]))["v"]  # type: ignore[index]
    except Exception:
        raise ConfigError(f"calibration.{key}", text, "a YAML value (lists as [a,b])") from None
    parts = key.split(".")
    if parts[0] not in KEYS or len(parts) > (2 if parts[0] == "priors" else 1):
        raise _unknown(key, value)
    if len(parts) == 2:
        raw.setdefault("priors", {})[parts[1]] = value
    else:
        raw[key] = value


def _unknown(key: str, value: Any) -> ConfigError:
    import difflib

    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f" (did you mean calibration.{close[0]}?)" if close else ""
    return ConfigError(f"calibration.{key}", value, f"keys of calibration: {', '.join(KEYS)}",
                       f"unknown config key calibration.{key} (value {show_value(value)}); "
                       f"allowed: keys of calibration: {', '.join(KEYS)}{hint}")


def _number(raw: dict[str, Any], key: str, integer: bool) -> float:
    value = raw.get(key)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if integer and ok and float(value) != int(value):
        ok = False
    if not ok:
        raise ConfigError(f"calibration.{key}", value, "an integer" if integer else "a number")
    return float(value)


def _validate(name: str, raw: dict[str, Any], farm: tuple[str, ...]) -> CalibrationConfig:
    for key in raw:
        if key not in KEYS:
            raise _unknown(str(key), raw[key])
    vals: dict[str, Any] = {}
    for key, low in _INTS.items():
        v = _number(raw, key, integer=True)
        if v < low:
            raise ConfigError(f"calibration.{key}", int(v), f"an integer >= {low}")
        vals[key] = int(v)
    for key in _FLOATS:
        vals[key] = _number(raw, key, integer=False)
    if not 0 <= vals["min_shrink"] < 1:
        raise ConfigError("calibration.min_shrink", vals["min_shrink"], "a share in [0, 1)")
    if vals["cutoff"] <= 0:
        raise ConfigError("calibration.cutoff", vals["cutoff"], "a number > 0")
    if vals["model_discrepancy"] < 0:
        raise ConfigError("calibration.model_discrepancy", vals["model_discrepancy"],
                          "a number >= 0 (a share of |observed|)")
    out = raw.get("out")
    if not isinstance(out, str) or not out.strip() or "://" in out:
        raise ConfigError("calibration.out", out, "a local directory path")
    return CalibrationConfig(name=name, out=out, episodes=_episodes(raw.get("episodes")),
                             priors=_priors(raw.get("priors")), farm_overrides=farm, **vals)


def _priors(priors: Any) -> tuple[Prior, ...]:
    from farm.plan.axes import check_axis_name
    from kernels.paramspec import SPECS

    if not isinstance(priors, dict) or not priors:
        raise ConfigError("calibration.priors", priors, "a mapping {parameter: [lo, hi]} "
                          "with at least one parameter")
    out = []
    for pname, rng in priors.items():
        key = f"calibration.priors.{pname}"
        check_axis_name(str(pname), key)
        if (not isinstance(rng, list) or len(rng) != 2 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in rng)):
            raise ConfigError(key, rng, "[lo, hi]: two finite numbers")
        lo, hi = float(rng[0]), float(rng[1])
        if lo >= hi:
            raise ConfigError(key, rng, "[lo, hi] with lo < hi")
        allowed = SPECS[str(pname)].range
        if not (allowed.contains(lo) and allowed.contains(hi)):
            raise ConfigError(key, rng, f"[lo, hi] inside the parameter's range {allowed}")
        out.append(Prior(str(pname), lo, hi))
    return tuple(out)


def _episodes(value: Any) -> tuple[str, ...]:
    from farm.plan.episodes import list_episodes

    shipped = list(list_episodes())
    if value == "all":
        if not shipped:
            raise ConfigError("calibration.episodes", value, "episodes under conf/episode/")
        return tuple(shipped)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError("calibration.episodes", value, "all, or a list of episode names")
    for e in value:
        if e not in shipped:
            raise ConfigError("calibration.episodes", e, f"one of {', '.join(shipped)}")
    if len(set(value)) != len(value):
        raise ConfigError("calibration.episodes", value, "each episode once")
    return tuple(str(e) for e in value)
