"""Compose ``conf/`` with Hydra overrides: the only door through which configuration
enters the farm.

``conf/`` is composed with Hydra's compose API against the structured schema of
:mod:`farm.plan.schema` (unknown keys and wrong types fail there). Every problem is a
:class:`farm.errors.ConfigError` whose one-line message names the key, the offending
value and what is allowed. :func:`farm.plan.make_plan` then validates ranges and the
design and turns the result into a frozen :class:`farm.plan.Plan`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from farm.errors import ConfigError, show_value
from farm.plan.hydrakeys import refuse_hydra_keys

__all__ = ["CONF_DIR", "compose_config"]

log = logging.getLogger(__name__)

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _normalise_overrides(overrides: Sequence[str]) -> list[str]:
    """Make the documented override forms work with Hydra's grammar.

    - ``sweep.axes.P=[...]`` adds or replaces an axis (Hydra would demand ``+`` for
      a new key): rewritten to ``++sweep.axes.P=[...]``.
    - ``+experiment=X`` is accepted like ``experiment=X`` (the group is in the
      defaults list as ``experiment: null``).

    ``sweep.axes={p: [...], ...}`` is applied after composition and *replaces* all
    axes (see :func:`compose_config`).
    """
    out = []
    for ov in overrides:
        ov = str(ov).strip()
        if re.match(r"^sweep\.axes\.[A-Za-z_]\w*=", ov):
            ov = "++" + ov
        elif ov.startswith("+experiment="):
            ov = ov[1:]
        out.append(ov)
    return out


def compose_config(overrides: Sequence[str] = (), config_dir: str | Path = CONF_DIR,
                   config_name: str = "config") -> DictConfig:
    """Compose ``conf/`` with Hydra overrides; resolve interpolations (env vars, ``${name}``).

    Raises :class:`ConfigError` for an unknown key, a wrong type, a missing
    group option or a malformed override, naming the key.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.initialize import get_gh_backup, restore_gh_from_backup

    import farm.plan.schema  # noqa: F401  (registers the schema in the ConfigStore)

    ovs = _normalise_overrides(overrides)
    refuse_hydra_keys(ovs)  # the farm has no Hydra runtime: hydra.* would be ignored
    _check_bool_overrides(ovs)
    # after a whole-axes override, axis overrides are applied by us, in order
    first = next((i for i, ov in enumerate(ovs) if ov.startswith("sweep.axes=")), len(ovs))
    axes_ovs = [ov for ov in ovs[first:] if re.match(r"^[+~]*sweep\.axes[.=]", ov)]
    ovs = ovs[:first] + [ov for ov in ovs[first:] if ov not in axes_ovs]
    backup = get_gh_backup()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()),
                                   version_base=None):
            cfg = compose(config_name=config_name, overrides=ovs)
            for ov in axes_ovs:
                _replace_axes(cfg, ov)
        OmegaConf.resolve(cfg)
        _check_known_keys(cfg)
        _user_model_wins(cfg, ovs)
    except ConfigError:
        raise
    except Exception as exc:  # Hydra/OmegaConf raise many types; map them all
        raise _composition_error(exc, ovs + axes_ovs) from exc
    finally:
        restore_gh_from_backup(backup)
    return cfg


def _user_model_wins(cfg: DictConfig, overrides: Sequence[str]) -> None:
    """With ``episode=NAME``, a ``model.P=V`` override replaces the episode's own value of P
    (the episode's values are laid over the composed model by ``make_plan``)."""
    episode = cfg.get("episode")
    ep_model = episode.get("model") if OmegaConf.is_dict(episode) else None
    for ov in overrides:
        m = re.match(r"^\+*model\.(\w+)=", ov)
        if m and OmegaConf.is_dict(ep_model) and m.group(1) in ep_model:
            ep_model[m.group(1)] = cfg.model[m.group(1)]


def _replace_axes(cfg: DictConfig, override: str) -> None:
    """Apply one axes override ourselves: ``sweep.axes={p: [...], ...}`` *replaces*
    all axes (Hydra would merge); ``sweep.axes.p=[...]`` / ``~sweep.axes.p`` after it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import open_dict

    parsed = OverridesParser.create().parse_override(override)
    key = parsed.key_or_group
    if parsed.is_delete():
        leaf = key.split(".", 2)[2] if key.count(".") >= 2 else None
        if leaf is None or leaf not in cfg.sweep.axes:
            raise ConfigError(key, None, "an existing axis to delete")
        with open_dict(cfg.sweep.axes):
            del cfg.sweep.axes[leaf]
        return
    value = parsed.value()
    if key == "sweep.axes":
        if not isinstance(value, dict):
            raise ConfigError("sweep.axes", value, "a mapping {param: [v1, v2, ...], ...}")
        cfg.sweep.axes = value
    else:
        with open_dict(cfg.sweep.axes):
            cfg.sweep.axes[key.split(".", 2)[2]] = value


def _check_bool_overrides(overrides: Sequence[str]) -> None:
    """A switch (``store.overwrite``, ``store.paths``, ...) is set with ``true`` or ``false``
    only: OmegaConf would take ``-1`` or ``yes`` for true, and ``store.overwrite`` deletes."""
    for ov in overrides:
        key, sep, value = ov.lstrip("+").partition("=")
        if sep and not key.startswith("~") and _expected(key) == "true or false" and (
                value.strip().lower() not in ("true", "false")):
            raise ConfigError(key, value, "true or false")


def _check_known_keys(cfg: DictConfig) -> None:
    """Refuse a key the schema does not have: Hydra lets ``+key=v`` / ``++key=v`` add any
    key, even under a structured node. Only ``sweep.axes`` takes keys of the user's choice
    (the swept parameters, checked by the validation)."""
    import dataclasses

    from farm.plan.schema import FarmConfig

    def walk(node: Any, schema: Any, prefix: str) -> None:
        fields = {f.name: f for f in dataclasses.fields(schema)}
        for key in node:
            full = f"{prefix}{key}"
            if key not in fields:
                value = OmegaConf.to_container(node[key]) if OmegaConf.is_config(
                    node[key]) else node[key]
                raise _unknown_key(full, value)
            sub = fields[key].default_factory
            if (full != "sweep.axes" and OmegaConf.is_dict(node[key])
                    and dataclasses.is_dataclass(sub)):
                walk(node[key], sub, f"{full}.")

    walk(cfg, FarmConfig, "")


def _unknown_key(full_key: str, value: Any) -> ConfigError:
    """'unknown config key K (value V); allowed: keys of its parent (did you mean ...?)'."""
    parent, _, leaf = full_key.rpartition(".")
    allowed = _known_keys_hint(parent, leaf)
    return ConfigError(full_key, value, allowed,
                       f"unknown config key {full_key}"
                       + (f" (value {show_value(value)})" if value is not None else "")
                       + f"; allowed: {allowed}")


def _override_parts(overrides: Sequence[str], key: str | None) -> tuple[str | None, str | None]:
    """(key, value text) of the override setting exactly ``key`` (or the first one)."""
    for ov in overrides:
        k, sep, v = ov.lstrip("+~").partition("=")
        if sep and (key is None or k == key):
            return k, v
    return None, None


def _expected(full_key: str) -> str:
    """What the schema allows at ``full_key`` (e.g. ``a number``), for messages."""
    import dataclasses
    import typing

    from farm.plan.schema import FarmConfig

    tp: Any = FarmConfig
    in_list = False
    for part in re.sub(r"\[\d+\]", ".[]", full_key).split("."):
        if part == "[]":
            in_list = True
            continue
        fields = {f.name: f.type for f in dataclasses.fields(tp)} if dataclasses.is_dataclass(
            tp) else {}
        if part not in fields:
            return "a value of the schema's type"
        hints = typing.get_type_hints(tp)
        tp = hints.get(part, fields[part])
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    names = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
    if origin in (list, typing.List) and args:  # noqa: UP006
        return names.get(args[0], "a value") if in_list else f"a list of {names[args[0]][2:]}s"
    if origin is typing.Union:
        inner = [a for a in args if a is not type(None)]
        return f"{names.get(inner[0], 'a value')} or null"
    if origin in (dict, typing.Dict):  # noqa: UP006
        return "a mapping"
    return names.get(tp, "a value of the schema's type")


def _composition_error(exc: Exception, overrides: Sequence[str]) -> ConfigError:
    """Turn a Hydra/OmegaConf composition error into a ConfigError naming the key."""
    from hydra.errors import MissingConfigException, OverrideParseException
    from omegaconf.errors import OmegaConfBaseException

    text = " ".join(str(exc).split())
    if isinstance(exc, MissingConfigException):
        missing = getattr(exc, "missing_cfg_file", None) or ""
        group, _, option = missing.rpartition("/")
        options = getattr(exc, "options", None)
        allowed = ", ".join(options) if options else "an existing config file under conf/"
        key = group or "config"
        return ConfigError(key, option or missing, allowed,
                           f"invalid config {key}={option or missing!r}: no such option "
                           f"(conf/{missing}.yaml not found); allowed: {allowed}")
    if isinstance(exc, OverrideParseException):
        bad = _bad_override(overrides) or (overrides[0] if overrides else "")
        key, _, value = bad.lstrip("+~").partition("=")
        return ConfigError(key or "overrides", value or bad,
                           "key=value with Hydra's override grammar (lists as [a,b])",
                           f"cannot parse override {bad!r}: {text}; allowed: key=value with "
                           "Hydra's override grammar (lists as [a,b])")
    m = re.search(r"Sweep parameters '([^=']+)=([^']*)'", text)
    if m:
        key = m.group(1).lstrip("+~")
        return ConfigError(key, m.group(2), "one value (a list [v1, v2, ...] for an axis)",
                           f"invalid config {key}={m.group(2)!r}: sweeps such as "
                           "range()/choice() need --multirun, which the farm does not use; "
                           "allowed: one value (a list [v1, v2, ...] for an axis)")
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, OmegaConfBaseException):
        cause = cause.__cause__ or cause.__context__
    if isinstance(cause, OmegaConfBaseException) and getattr(cause, "full_key", None):
        full_key = str(cause.full_key)
        from omegaconf.errors import ConfigAttributeError, ConfigKeyError

        _, ov_value = _override_parts(overrides, full_key)
        value = getattr(cause, "value", None)
        value = ov_value if value is None and ov_value is not None else value
        if isinstance(cause, ConfigKeyError | ConfigAttributeError):
            return _unknown_key(full_key, value)
        allowed = _expected(full_key)
        return ConfigError(full_key, value, allowed,
                           f"invalid config {full_key}={show_value(value)}: wrong type; "
                           f"allowed: {allowed}")
    key, value = _override_parts(overrides, None)
    return ConfigError(key or "config", value, "a valid configuration",
                       f"cannot compose the configuration: {text}")


def _bad_override(overrides: Sequence[str]) -> str | None:
    """The first override Hydra's grammar rejects."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for ov in overrides:
        try:
            parser.parse_override(ov)
        except Exception:
            return ov
    return None


def _known_keys_hint(parent: str, leaf: str) -> str:
    """'a key of <parent>' plus a close match, for unknown-key messages."""
    import dataclasses
    import difflib

    from farm.plan.schema import FarmConfig

    node: Any = FarmConfig
    for part in [p for p in parent.split(".") if p]:
        fields = {f.name: f for f in dataclasses.fields(node)} if dataclasses.is_dataclass(
            node) else {}
        if part not in fields:
            node = None
            break
        node = fields[part].default_factory if fields[part].default_factory is not (
            dataclasses.MISSING) else None
    names = [f.name for f in dataclasses.fields(node)] if node and dataclasses.is_dataclass(
        node) else []
    where = parent or "the top level"
    close = difflib.get_close_matches(leaf, names, n=1)
    hint = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
    if names and len(names) <= 12:
        return f"keys of {where}: {', '.join(names)}{hint}"
    return f"a key of {where}{hint}"

