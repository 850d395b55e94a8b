"""The object-store half of :mod:`farm.store.lock`: a lock record with a heartbeat (a lease).

An object store (``s3://``, ``gs://``) has no OS lock, so the lock is the record object
``<store>.farm-lock`` itself: written if absent or stale (then read back: the last
writer of a race wins and the others are refused), refreshed by its holder's heartbeat,
refused while fresh, taken over by :data:`farm.store.lockrecord.TAKEOVER_RULE`
(:func:`farm.store.lockrecord.is_stale`). Every refresh and the release first read the
record back and check its ``token``: a holder whose record was replaced or deleted learns
it there (:class:`LockHeld`) and never overwrites nor deletes another holder's record.
(An object store has no compare-and-swap: the read and the write are two requests, so a
takeover landing between them is seen at the next refresh.)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from farm.store.lockrecord import (
    MALFORMED,
    STALE_AFTER_S,
    LockHeld,
    describe_holder,
    is_stale,
    parse_record,
    process_start,
    record_problem,
)
from farm.store.storage import filesystem

__all__ = ["STALE_AFTER_S", "acquire_lease", "break_lease", "is_stale", "process_start",
           "read_lease", "refresh_lease", "release_lease"]

log = logging.getLogger(__name__)


def read_lease(lock_url: str, storage_options: Mapping[str, Any] | None) -> dict | None:
    """The record at ``lock_url``: None when absent, ``{"malformed": why}`` when it is not
    a JSON object. (An ``os_lock`` field is dropped: only a local probe may set it.)"""
    fs, path = filesystem(lock_url, storage_options)
    try:
        raw = fs.cat_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    info = parse_record(raw)
    if info is not None:
        info.pop("os_lock", None)
    return info


def acquire_lease(lock_url: str, storage_options: Mapping[str, Any] | None,
                  info: Mapping[str, Any], stale_after: float) -> dict | None:
    """Write ``info`` as the record unless a fresh one is there (:class:`LockHeld`);
    returns the stale record it took over, if any."""
    old = read_lease(lock_url, storage_options)
    if old is not None and not is_stale(old, stale_after):
        raise LockHeld(lock_url, old)
    if old is not None and (problem := record_problem(old)) is not None:
        log.warning("%s: %s: %s; taking it over", lock_url, MALFORMED, problem)
    fs, path = filesystem(lock_url, storage_options)
    fs.pipe_file(path, json.dumps(dict(info)).encode())
    time.sleep(0.05)  # let a racing writer land, then check we won
    now = read_lease(lock_url, storage_options)
    if now is None or now.get("token") != info["token"]:
        raise LockHeld(lock_url, now)
    return old


def refresh_lease(lock_url: str, storage_options: Mapping[str, Any] | None,
                  info: Mapping[str, Any]) -> None:
    """Rewrite the record (heartbeat) if it is still ours; :class:`LockHeld` (with the
    record now there, None if deleted) when it is not: nothing is written then."""
    now = read_lease(lock_url, storage_options)
    if now is None or now.get("token") != info["token"]:
        raise LockHeld(lock_url, now)
    fs, path = filesystem(lock_url, storage_options)
    fs.pipe_file(path, json.dumps(dict(info)).encode())


def release_lease(lock_url: str, storage_options: Mapping[str, Any] | None, token: str) -> bool:
    """Delete the record if it is still ours (True); another holder's is left alone."""
    now = read_lease(lock_url, storage_options)
    if now is None or now.get("token") != token:
        if now is not None:
            log.warning("%s is held by %s, not by this run: left in place", lock_url,
                        describe_holder(now))
        return False
    fs, path = filesystem(lock_url, storage_options)
    fs.rm_file(path)
    return True


def break_lease(lock_url: str, storage_options: Mapping[str, Any] | None) -> bool:
    """Delete the record whoever holds it; True when there was one."""
    fs, path = filesystem(lock_url, storage_options)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        return False
    log.warning("broke the lock %s", lock_url)
    return True
