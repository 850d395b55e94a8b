"""Calibration episodes as data: ``conf/episode/<name>.yaml`` -> a frozen :class:`Episode`.

An episode is one historical day (or a calm control): the model values that day
(``model``, keys of :data:`kernels.paramspec.SPECS`, laid over the composed model) and
public figures to compare with (``targets``). Each target names a per-path
``quantity`` (:data:`QUANTITIES`, computed by :func:`per_path_quantities` from the
kernel's per-path outputs), the ``observed`` figure, its uncertainty ``sd`` (same unit)
and its ``kind``: ``value`` (two-sided) or ``lower_bound`` (the truth is at least the
figure). :func:`implausibility` measures a simulation against a target (docs/calibration.md);
it, :class:`Target` and :func:`per_path_quantities` live in :mod:`farm.plan.targets` (plain
numpy, which the run's texts import) and are re-exported here.

Plain Python and numpy after :func:`episode_from`; a mistake in an episode is a
:class:`farm.errors.ConfigError` naming the key (``episode.targets.liq.sd``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from farm.errors import ConfigError
from farm.plan.targets import (
    KINDS,
    PLAUSIBLE,
    QUANTITIES,
    Target,
    implausibility,
    is_number,
    per_path_quantities,
)

__all__ = ["EPISODE_DIR", "KINDS", "PLAUSIBLE", "QUANTITIES", "Episode", "Target",
           "apply_episode", "episode_from", "implausibility", "list_episodes",
           "per_path_quantities"]

EPISODE_DIR = Path(__file__).resolve().parents[2] / "conf" / "episode"
_EPISODE_KEYS = ("name", "date", "description", "model", "targets")
_TARGET_KEYS = ("quantity", "observed", "sd", "kind")


@dataclass(frozen=True)
class Episode:
    """A calibration episode: the day's model values and its targets."""

    name: str
    date: str
    description: str
    model: Mapping[str, float]
    targets: tuple[Target, ...]


def _plain(node: Any) -> Any:
    """A config node as plain containers (plain data is returned as it is)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def list_episodes() -> list[str]:
    """Names of the shipped episodes (``conf/episode/*.yaml``), sorted."""
    return sorted(p.stem for p in EPISODE_DIR.glob("*.yaml"))


def _mapping(key: str, value: Any, allowed: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(key, value, allowed)
    return {str(k): v for k, v in value.items()}


def _unknown(key: str, node: Mapping[str, Any], known: tuple[str, ...]) -> None:
    for k in node:
        if k not in known:
            raise ConfigError(f"{key}.{k}", node[k], f"keys of {key}: {', '.join(known)}",
                              f"unknown config key {key}.{k}; allowed: keys of {key}: "
                              f"{', '.join(known)}")


def _target(name: str, node: Any) -> Target:
    key = f"episode.targets.{name}"
    node = _mapping(key, node, "a mapping {quantity, observed, sd, kind}")
    _unknown(key, node, _TARGET_KEYS)
    for field in _TARGET_KEYS:
        if node.get(field) is None:
            allowed = {"quantity": " | ".join(QUANTITIES), "kind": " | ".join(KINDS)}.get(
                field, "a finite number" + (" > 0" if field == "sd" else ""))
            raise ConfigError(f"{key}.{field}", None, allowed,
                              f"missing config key {key}.{field}; allowed: {allowed}")
    return Target(name=name, quantity=str(node["quantity"]), observed=node["observed"],
                  sd=node["sd"], kind=str(node["kind"]))


def _model(node: Any, base: Mapping[str, Any]) -> dict[str, float]:
    """The episode's model values, each a known scalar parameter, in range with the rest of
    the composed model (``base``); errors name ``episode.model.<p>``."""
    from farm.plan.validation import params_error
    from kernels.params import VECTOR_FIELDS, make_params
    from kernels.paramspec import SPECS

    node = _mapping("episode.model", node or {}, "a mapping {model parameter: value}")
    scalars = [n for n in SPECS if n not in VECTOR_FIELDS]
    for k, v in node.items():
        if k not in scalars:
            close = difflib.get_close_matches(k, scalars, n=1)
            raise ConfigError(f"episode.model.{k}", v, "a scalar model parameter (a key of "
                              "kernels/paramspec.py SPECS, not a bucket table)"
                              + (f"; did you mean {close[0]}?" if close else ""))
        if not is_number(v):
            raise ConfigError(f"episode.model.{k}", v, "a number")
    model = {k: float(v) for k, v in node.items()}
    values = {k: v for k, v in base.items() if k != "t_dof"} | model
    try:
        make_params(values)
    except ValueError as exc:
        raise params_error(exc, lambda n: f"episode.model.{n}" if n in model else f"model.{n}",
                           lambda n: values.get(n)) from None
    return model


def episode_from(cfg: Any) -> Episode:
    """The :class:`Episode` of a composed config (its ``episode`` section), validated.

    ``cfg`` is the composed config (DictConfig or a plain mapping with ``episode`` and,
    optionally, ``model``). Raises ConfigError naming the key of the first mistake.
    """
    cfg = _plain(cfg)
    node = cfg.get("episode") if isinstance(cfg, Mapping) else None
    if node is None:
        raise ConfigError("episode", None, "an episode: episode=NAME with NAME one of "
                          + ", ".join(list_episodes()))
    node = _mapping("episode", node, "a mapping {name, date, description, model, targets}")
    _unknown("episode", node, _EPISODE_KEYS)
    for k in ("name", "date", "description"):
        if not isinstance(node.get(k), str) or not node[k].strip():
            raise ConfigError(f"episode.{k}", node.get(k), "a non-empty string")
    targets = _mapping("episode.targets", node.get("targets"),
                       "a mapping {target name: {quantity, observed, sd, kind}}")
    if not targets:
        raise ConfigError("episode.targets", {}, "at least one target")
    base = cfg.get("model") or {}
    return Episode(name=node["name"], date=node["date"], description=node["description"],
                   model=_model(node.get("model"), base),
                   targets=tuple(_target(n, t) for n, t in targets.items()))


def apply_episode(cfg: Any) -> Episode | None:
    """Lay the episode of a composed config (if any) over its model, in place, and check
    that the run can answer it: one cell, per-path values stored. None without an episode."""
    if cfg.get("episode") is None:
        return None
    episode = episode_from(cfg)
    for k, v in episode.model.items():
        cfg.model[k] = v
    axes = _plain(cfg.sweep.axes) or {}
    if axes or cfg.sweep.method != "grid":
        raise ConfigError("sweep.axes", axes, "no axes with an episode (it is one cell: "
                          "sweep=single, the default of episode=NAME)")
    if not cfg.store.paths:
        raise ConfigError("store.paths", False, "true with an episode (its table is made "
                          "from the per-path values)")
    return episode
