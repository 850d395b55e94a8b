"""Key-by-key difference of two resolved configs (YAML text), for refusal messages.

``farm run`` refuses to resume a store made with another configuration; the message
names what differs, e.g. ``sweep.paths: 256 -> 512; model.leverage: 10.0 -> 20.0``.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

__all__ = ["NOT_HASHED", "describe_difference", "flatten_config", "what_changed"]

NOT_HASHED = ("name", "runtime", "store")
"""Config sections that never change the numbers (not in :func:`farm.plan.config.config_hash`)."""

_ABSENT = object()


def flatten_config(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b.c": leaf}``; lists and scalars are leaves."""
    if isinstance(obj, dict):
        if not obj and prefix:
            return {prefix: {}}
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flatten_config(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix or "<root>": obj}


def _fmt(value: Any) -> str:
    if value is _ABSENT:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value if value and not any(c in value for c in ";>,[]") else repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return json.dumps(value, default=str, sort_keys=True)
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Equal leaves, NaN equal to NaN (``corr_alt_eq: .nan`` means "derive it")."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a is not _ABSENT and b is not _ABSENT and a == b and _fmt(a) == _fmt(b)


def _ignored(key: str, ignore: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in ignore)


def describe_difference(old_yaml: str, new_yaml: str, ignore: Iterable[str] = ()) -> str:
    """The differing keys of two YAML configs: ``"sweep.paths: 256 -> 512; model.x: ..."``.

    Keys are dotted paths, in the order of the old config then keys only in the new one;
    a key missing on one side shows ``(absent)``. Keys equal to or under a prefix in
    ``ignore`` are skipped. Returns ``""`` when nothing differs. Text that is not a YAML
    mapping falls back to a line diff.
    """
    ignore = tuple(ignore)
    try:
        old = yaml.safe_load(old_yaml or "") or {}
        new = yaml.safe_load(new_yaml or "") or {}
    except yaml.YAMLError:
        old = new = None
    if not isinstance(old, dict) or not isinstance(new, dict):
        lines = difflib.unified_diff(
            (old_yaml or "").splitlines(), (new_yaml or "").splitlines(), "stored", "new",
            lineterm="", n=0,
        )
        return "\n".join(lines)
    flat_old, flat_new = flatten_config(old), flatten_config(new)
    keys = list(flat_old) + [k for k in flat_new if k not in flat_old]
    parts = []
    for key in keys:
        if _ignored(key, ignore):
            continue
        a, b = flat_old.get(key, _ABSENT), flat_new.get(key, _ABSENT)
        if _same(a, b):
            continue
        if a is _ABSENT or b is _ABSENT or a != b or _fmt(a) != _fmt(b):  # 1 vs 1.0 differs
            parts.append(f"{key}: {_fmt(a)} -> {_fmt(b)}")
    return "; ".join(parts)


def what_changed(stored: Mapping[str, Any], config_hash: str, config_yaml: str | None,
                 kernel: str) -> str:
    """Why a cube's ``stored`` attrs do not match a run's ``config_hash``: the differing
    keys that change the numbers (:data:`NOT_HASHED` sections left out), a kernel change
    (``kernel``: this code's fingerprint), else the two hashes."""
    parts = []
    if config_yaml is not None:
        parts.append(describe_difference(str(stored.get("config", "")), config_yaml,
                                         ignore=NOT_HASHED))
    old_kernel = str(stored.get("kernel_sha256", "?"))
    if old_kernel != kernel:
        parts.append(f"the kernel code changed (kernel {old_kernel} -> {kernel})")
    old_hash = str(stored.get("config_hash", ""))
    return "; ".join(p for p in parts if p) or (
        f"config_hash {old_hash[:12] or '(none)'} -> {config_hash[:12]}")
