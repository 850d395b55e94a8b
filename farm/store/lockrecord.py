"""The store lock's record: its fields, who holds it, and when it may be taken over.

A record is JSON ``{token, pid, host, user, pid_started, created, heartbeat, store, lock}``
(times in seconds since the epoch; ``pid_started`` is the holder process's start time,
``null`` when it could not be read). It is the lock itself on an object store
(:mod:`farm.store.leaselock`) and a description of the holder beside a local store's
OS lock (:mod:`farm.store.oslock`). The takeover rule is stated once, in
:data:`TAKEOVER_RULE`, and implemented once, in :func:`is_stale`.
"""

from __future__ import annotations

import json
import math
import socket
import time
from collections.abc import Mapping
from typing import Any

import psutil

__all__ = ["MALFORMED", "STALE_AFTER_S", "TAKEOVER_RULE", "LockHeld", "describe_holder",
           "is_stale", "lock_state", "parse_record", "process_start", "record_problem",
           "since_text"]

STALE_AFTER_S = 120.0  # seconds: a record whose heartbeat is older than this is stale

TAKEOVER_RULE = (
    "A local store's OS lock is never taken over while its process runs (the kernel frees "
    "it when that process ends, even if killed). A lock record without a held OS lock (an "
    "object store's lock, or a local record whose lock files were deleted) is taken over "
    "when its heartbeat is older than {stale_after:.0f} s, whatever its pid fields say; at "
    "once when its holder ran on this host and that process is gone (pid not alive, or "
    "started at another time); and at once when it is malformed (pid, heartbeat or "
    "created missing or not a number, pid_started neither a number nor null).")
"""The one statement of when a store's lock may be taken over (format it with
``stale_after``, in seconds); the refusal messages quote it, docs/cluster.md quotes it
with the default 120 s, and :func:`is_stale` implements it."""

MALFORMED = "malformed lock record (treated as stale)"


class LockHeld(Exception):
    """Another process holds the lock at ``path``; ``info`` is its record (None when there
    is none). Raised by :mod:`farm.store.oslock` and :mod:`farm.store.leaselock`;
    :mod:`farm.store.lock` turns it into a one-line ``StoreLockedError``."""

    def __init__(self, path: str, info: dict | None) -> None:
        super().__init__(path)
        self.path = path
        self.info = info


def process_start(pid: int) -> float | None:
    """The start time (seconds since the epoch) of process ``pid`` on this host; None when
    there is no such process."""
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError, ValueError, OverflowError):
        return None


def parse_record(raw: bytes | str) -> dict | None:
    """A record from its bytes: None when empty, ``{"malformed": why}`` when not a JSON
    object (so that it reads as stale, never as a crash)."""
    if not raw.strip():
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return {"malformed": "not JSON"}
    return info if isinstance(info, dict) else {"malformed": "not a JSON object"}


def _number(value: Any) -> float | None:
    """``value`` as a finite float; None for anything else (text, bool, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _show(value: Any) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def record_problem(info: Mapping[str, Any]) -> str | None:
    """What makes a record malformed (``"pid 'abc' is not a number"``); None when its
    fields are well formed (see :data:`TAKEOVER_RULE`)."""
    if "malformed" in info:
        return f"record is {info['malformed']}"
    for key in ("pid", "heartbeat", "created"):
        if key not in info:
            return f"{key} missing"
        if _number(info[key]) is None:
            return f"{key} {_show(info[key])} is not a number"
    if float(info["pid"]) != int(info["pid"]) or int(info["pid"]) <= 0:
        return f"pid {_show(info['pid'])} is not a process id"
    started = info.get("pid_started")
    if started is not None and _number(started) is None:
        return f"pid_started {_show(started)} is not a number"
    return None


def is_stale(info: Mapping[str, Any], stale_after: float = STALE_AFTER_S) -> bool:
    """True when the lock of record ``info`` may be taken over: :data:`TAKEOVER_RULE`.
    ``info["os_lock"] == "held"`` (set by :mod:`farm.store.oslock`) means a process holds
    the local OS lock: never stale."""
    if info.get("os_lock") == "held":
        return False
    if record_problem(info) is not None:
        return True
    if time.time() - float(info["heartbeat"]) > stale_after:
        return True
    if info.get("host") != socket.gethostname():
        return False
    started = process_start(int(info["pid"]))
    if started is None:
        return True  # its process is gone
    recorded = info.get("pid_started")
    return recorded is not None and abs(started - float(recorded)) > 1.0  # pid reused


def describe_holder(info: Mapping[str, Any] | None) -> str:
    """Who holds a lock, from its record: ``user@host pid N`` (``an unknown holder``)."""
    if not info or "pid" not in info:
        return "an unknown holder"
    user, host, pid = (" ".join(str(info.get(k, "?")).split())[:60]
                       for k in ("user", "host", "pid"))
    return f"{user}@{host} pid {pid}"


def since_text(info: Mapping[str, Any] | None) -> str:
    """`` since <created> (last heartbeat N s ago)`` for a well-formed record, ``(malformed
    lock record (treated as stale): why)`` for a malformed one, '' without a record."""
    if not info or set(info) <= {"os_lock"}:
        return ""
    problem = record_problem(info)
    if problem is not None:
        return f" ({MALFORMED}: {problem})"
    try:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["created"])))
    except (OverflowError, OSError, ValueError):
        when = f"{float(info['created']):.0f} s after the epoch"
    return f" since {when} (last heartbeat {time.time() - float(info['heartbeat']):.0f} s ago)"


def lock_state(info: Mapping[str, Any] | None, stale_after: float = STALE_AFTER_S) -> str:
    """The lock as ``farm status`` shows it: ``none``, ``user@host pid N (running,
    heartbeat 3 s ago)``, ``... (stale, ...)`` or ``malformed lock record (treated as
    stale): why``."""
    if info is None:
        return "none"
    held = info.get("os_lock") == "held"
    problem = record_problem(info) if set(info) - {"os_lock"} else None
    if problem is not None:
        if held:  # the OS lock is what counts: the holder runs
            return f"{describe_holder(info)} (running, OS lock held; malformed record: {problem})"
        return f"{MALFORMED}: {problem}"
    state = "stale" if is_stale(info, stale_after) else "running"
    if "heartbeat" not in info:  # an OS lock whose record is missing
        return f"{describe_holder(info)} ({state})"
    age = time.time() - float(info["heartbeat"])
    return f"{describe_holder(info)} ({state}, heartbeat {age:.0f} s ago)"
