"""The object-store half of :mod:`farm.store.lock`: a lock record with a heartbeat (a lease).

An object store (``s3://``, ``gs://``) has no OS lock, so the lock is the record object
``<store>.farm-lock`` itself: written if absent (then read back: the last writer of a
race wins and the others are refused), refreshed by its holder's heartbeat, refused
while fresh, taken over when stale (heartbeat older than ``stale_after``) or at once
when its holder was on this host and its process has exited (:func:`is_stale`).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

import psutil

from farm.store.oslock import LockHeld
from farm.store.storage import filesystem

__all__ = ["STALE_AFTER_S", "acquire_lease", "break_lease", "is_stale", "process_start",
           "read_lease", "refresh_lease", "release_lease"]

log = logging.getLogger(__name__)

STALE_AFTER_S = 120.0  # a lease whose heartbeat is older than this is taken over


def process_start(pid: int) -> float | None:
    """The start time of process ``pid`` on this host (None when there is none)."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def is_stale(info: Mapping[str, Any], stale_after: float = STALE_AFTER_S) -> bool:
    """True when the lock's holder is gone: dead process on this host, or an old heartbeat.
    Never for a local lock the OS reports held (``os_lock: held``)."""
    if info.get("os_lock") == "held":
        return False
    if info.get("host") == socket.gethostname():
        pid = int(info.get("pid", -1))
        started = process_start(pid) if pid > 0 else None
        if started is None:
            return True
        recorded = info.get("pid_started")
        return recorded is not None and abs(started - float(recorded)) > 1.0  # pid reused
    return time.time() - float(info.get("heartbeat", 0)) > stale_after


def read_lease(lock_url: str, storage_options: Mapping[str, Any] | None) -> dict | None:
    """The record at ``lock_url``: None when absent, ``{}`` when unreadable."""
    fs, path = filesystem(lock_url, storage_options)
    try:
        raw = fs.cat_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def acquire_lease(lock_url: str, storage_options: Mapping[str, Any] | None,
                  info: Mapping[str, Any], stale_after: float) -> dict | None:
    """Write ``info`` as the record unless a fresh one is there (:class:`LockHeld`);
    returns the stale record it took over, if any."""
    old = read_lease(lock_url, storage_options)
    if old and not is_stale(old, stale_after):
        raise LockHeld(lock_url, old)
    fs, path = filesystem(lock_url, storage_options)
    fs.pipe_file(path, json.dumps(dict(info)).encode())
    time.sleep(0.05)  # let a racing writer land, then check we won
    now = read_lease(lock_url, storage_options)
    if not now or now.get("token") != info["token"]:
        raise LockHeld(lock_url, now)
    return old


def refresh_lease(lock_url: str, storage_options: Mapping[str, Any] | None,
                  info: Mapping[str, Any]) -> None:
    """Rewrite the record (heartbeat); :class:`LockHeld` when it is no longer ours."""
    now = read_lease(lock_url, storage_options)
    if not now or now.get("token") != info["token"]:
        raise LockHeld(lock_url, now)
    fs, path = filesystem(lock_url, storage_options)
    fs.pipe_file(path, json.dumps(dict(info)).encode())


def release_lease(lock_url: str, storage_options: Mapping[str, Any] | None, token: str) -> None:
    """Delete the record if it is still ours."""
    now = read_lease(lock_url, storage_options)
    if now and now.get("token") == token:
        fs, path = filesystem(lock_url, storage_options)
        fs.rm_file(path)


def break_lease(lock_url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """Delete the record whoever holds it; True when there was one."""
    fs, path = filesystem(lock_url, storage_options)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        return False
    log.warning("broke the lock %s", lock_url)
    return True
