"""Where a cube lives: local paths and fsspec URLs (``s3://``, ``gs://``, ...).

Small helpers shared by :mod:`farm.store.cube`, :mod:`farm.store.lock` and :mod:`farm.store.status`:
normalising a store URL, getting its fsspec filesystem, the zarr store object, and
the base class of the errors that mean "the farm refuses this store" (a user error,
exit status 2 in the CLI).

Credentials never pass through here into the cube: ``storage_options`` (or, for
s3fs, the usual ``AWS_*`` environment variables) are handed to fsspec only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec
import zarr.storage

from farm.errors import StoreRefusedError

__all__ = [
    "StoreRefusedError",
    "filesystem",
    "is_remote",
    "normalize_url",
    "remove_store",
    "sibling_url",
    "zarr_store",
]




def is_remote(url: str | os.PathLike[str]) -> bool:
    """True for fsspec URLs with a protocol other than ``file`` (``s3://``, ``gs://``, ...)."""
    text = os.fspath(url)
    if "://" not in text:
        return False
    return text.split("://", 1)[0].lower() not in ("file", "local")


def normalize_url(url: str | os.PathLike[str]) -> str:
    """An absolute local path (``~`` expanded, ``file://`` stripped) or the URL, no trailing '/'."""
    text = os.fspath(url)
    if not text:
        raise ValueError("empty store URL")
    if is_remote(text):
        return text.rstrip("/")
    if text.startswith("file://"):
        text = text[len("file://") :]
    return str(Path(text).expanduser().absolute())


def filesystem(
    url: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem of ``url`` and the path inside it (``bucket/key`` for s3)."""
    fs, path = fsspec.core.url_to_fs(normalize_url(url), **dict(storage_options or {}))
    return fs, path.rstrip("/")


def sibling_url(url: str, suffix: str) -> str:
    """The URL of an object beside the store: ``<store><suffix>`` (e.g. ``cube.zarr.farm-lock``).

    Objects beside the store, not inside it, so zarr never sees them as unknown members.
    """
    norm = normalize_url(url)
    if is_remote(norm):
        proto, rest = norm.split("://", 1)
        if "/" not in rest:
            raise ValueError(f"store URL {url!r} is a bucket root; put the cube under a prefix")
        return f"{proto}://{rest}{suffix}"
    return norm + suffix


def zarr_store(
    url: str, storage_options: Mapping[str, Any] | None = None, *, read_only: bool = False
) -> zarr.storage.StoreLike:
    """A zarr v3 store object for a local path or an fsspec URL."""
    norm = normalize_url(url)
    if is_remote(norm):
        return zarr.storage.FsspecStore.from_url(
            norm, storage_options=dict(storage_options or {}), read_only=read_only
        )
    return zarr.storage.LocalStore(norm, read_only=read_only)


def remove_store(url: str, storage_options: Mapping[str, Any] | None = None) -> None:
    """Delete everything under the store (a directory or an object prefix); no-op if absent."""
    fs, path = filesystem(url, storage_options)
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
    fs.invalidate_cache()
