"""Which stores the farm refuses, and the one-line messages saying why.

A store is refused (a :class:`farm.errors.StoreRefusedError`, exit status 2 in the CLI)
when a new cube would overwrite one without ``overwrite`` (:class:`StoreExistsError`),
when it holds something that is not a farm cube (:class:`NotACubeError`), or when a
resumed cube was made with another configuration (:class:`IncompatibleStoreError`,
naming what differs). The lock's refusal (another writer) is :mod:`farm.store.lock`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from farm.secrets import redact_secrets
from farm.store.configdiff import what_changed
from farm.store.layout import has_content, read_root_attrs
from farm.store.provenance import kernel_fingerprint
from farm.store.storage import StoreRefusedError
from kernels import cubeformat

__all__ = [
    "DamagedCubeError",
    "IncompatibleStoreError",
    "NotACubeError",
    "StoreExistsError",
    "check_creatable",
    "check_openable",
    "compatibility",
    "cube_exists",
    "incompatible",
]


class StoreExistsError(StoreRefusedError, FileExistsError):
    """A cube already exists at the URL and ``overwrite`` was not asked for."""


class NotACubeError(StoreRefusedError, cubeformat.NotACubeError):
    """The URL holds no farm cube (missing, not Zarr, or no ``farm_format`` attr): the
    format's error, refused by the farm like any store it cannot use (exit 2)."""


class DamagedCubeError(StoreRefusedError):
    """The cube's ``status`` is missing or unreadable: ``farm repair STORE`` rebuilds it."""


class IncompatibleStoreError(StoreRefusedError, ValueError):
    """The existing cube was made with another configuration (its ``config_hash`` differs)."""


def cube_exists(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """True when ``url`` holds a farm cube (a Zarr group with a ``farm_format`` attr)."""
    attrs = read_root_attrs(url, storage_options)
    return attrs is not None and "farm_format" in attrs


def check_creatable(url: str, storage_options: Mapping[str, Any] | None, overwrite: bool) -> bool:
    """Whether a new cube may be written at ``url``; True when an old cube must go first.

    Nothing there: False. A farm cube there: True with ``overwrite``, else
    :class:`StoreExistsError`. Anything else there: :class:`NotACubeError` (never deleted).
    """
    if not has_content(url, storage_options):
        return False
    if not cube_exists(url, storage_options):
        raise NotACubeError(
            f"refusing to write a cube at {url}: it exists and is not a farm cube "
            "(no Zarr group with a farm_format attr); choose another store.url"
        )
    if not overwrite:
        raise StoreExistsError(
            f"a cube already exists at {url}; run with the same config to resume it, "
            "or ask for overwrite to replace it"
        )
    return True


def check_openable(url: str, storage_options: Mapping[str, Any] | None) -> None:
    """:class:`NotACubeError` unless ``url`` holds a Zarr v3 group with a ``farm_format`` attr."""
    attrs = read_root_attrs(url, storage_options)
    if attrs is None:
        what = "nothing" if not has_content(url, storage_options) else "no Zarr v3 group"
        raise NotACubeError(f"{url} is not a farm cube: {what} there")
    if "farm_format" not in attrs:
        raise NotACubeError(f"{url} is a Zarr group but not a farm cube (no farm_format attr)")


def compatibility(url: str, attrs: Mapping[str, Any], config_hash: str,
                  config_yaml: str | None = None) -> tuple[bool, str]:
    """Whether the cube at ``url`` (root ``attrs``) was made with ``config_hash``; else a
    message naming what differs (config keys from ``config_yaml``, the kernel's code)."""
    if str(attrs.get("config_hash", "")) == str(config_hash):
        return True, ""
    new_yaml = None if config_yaml is None else redact_secrets(config_yaml)
    diff = what_changed(attrs, str(config_hash), new_yaml, kernel_fingerprint())
    return False, f"the cube at {url} was made with a different configuration: {diff}"


def incompatible(message: str) -> IncompatibleStoreError:
    """The refusal to resume a cube, from :func:`compatibility`'s message."""
    return IncompatibleStoreError(f"{message}. Use another store.url, or add "
                                  "store.overwrite=true to start afresh.")
