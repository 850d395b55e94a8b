"""One writer per store: :class:`StoreLock`, a context manager held for a whole run.

The holder's record is JSON ``{token, pid, host, user, pid_started, created, heartbeat,
store, lock}`` (times in seconds since the epoch) in ``<store>.farm-lock``, beside the
store, not inside it, so zarr never meets an unknown member. A refused writer gets a
one-line :class:`StoreLockedError` naming the holder (:func:`describe_holder`).

- Local paths: OS-level locks from the ``filelock`` package (:mod:`farm.store.oslock`,
  which says what they guarantee): the kernel releases them when the holder dies, so no
  stale lock is left; symlinked aliases of a store meet the same lock; deleting a lock
  file by hand does not let a second writer in.
- Object stores (``s3://``, ``gs://``): the record object itself, with a heartbeat. It
  is refused while fresh (heartbeat younger than ``stale_after``, 120 s) and taken over
  when stale, or at once when its holder was on this host and its process has exited.
  Break a stale one by hand with ``python -m farm.store.lock break STORE``.

A background thread refreshes the heartbeat every ``heartbeat_interval`` seconds (the
run loop also calls :meth:`StoreLock.refresh`); a holder that lost its lock learns it
there (:class:`StoreLockedError`, "lost the lock").
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

from farm.store.leaselock import (
    STALE_AFTER_S,
    acquire_lease,
    break_lease,
    is_stale,
    process_start,
    read_lease,
    refresh_lease,
    release_lease,
)
from farm.store.oslock import LOCK_SUFFIX, LocalLock, LockHeld, break_local, read_record
from farm.store.oslock import record_path as local_record_path
from farm.store.storage import StoreRefusedError, is_remote, normalize_url, sibling_url

__all__ = [
    "LOCK_SUFFIX",
    "STALE_AFTER_S",
    "StoreLock",
    "StoreLockedError",
    "break_lock",
    "describe_holder",
    "is_stale",
    "lock_url",
    "read_lock",
]

log = logging.getLogger(__name__)

HEARTBEAT_S = 30.0


class StoreLockedError(StoreRefusedError, RuntimeError):
    """Another writer holds the store's lock (or took it over from this one)."""


def lock_url(url: str) -> str:
    """Where the lock record of the store at ``url`` lives: ``<store>.farm-lock`` (for a
    local store, beside its real path: symlinks resolved)."""
    norm = normalize_url(url)
    return sibling_url(norm, LOCK_SUFFIX) if is_remote(norm) else local_record_path(norm)


def describe_holder(info: Mapping[str, Any] | None) -> str:
    """Who holds a lock, from its record: ``user@host pid N`` (``an unknown holder``)."""
    if not info or "pid" not in info:
        return "an unknown holder"
    return f"{info.get('user', '?')}@{info.get('host', '?')} pid {info.get('pid', '?')}"


def _since(info: Mapping[str, Any] | None) -> str:
    if not info or "created" not in info:
        return ""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["created"])))
    age = time.time() - float(info.get("heartbeat", 0))
    return f" since {when} (last heartbeat {age:.0f} s ago)"


def read_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """The lock record of the store at ``url``; None when unlocked, ``{}`` if unreadable.

    A local record comes with ``os_lock``: ``held`` (the OS says a process holds the
    lock) or ``unknown`` (no ``flock`` on that filesystem); a leftover record of a dead
    holder is no lock (None).
    """
    norm = normalize_url(url)
    return read_lease(lock_url(norm), storage_options) if is_remote(norm) else read_record(norm)


def break_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Delete the store's lock; True when there was one. An object store's lock goes
    whoever holds it; a local OS lock is never broken while held (StoreLockedError)."""
    norm = normalize_url(url)
    if not is_remote(norm):
        try:
            return break_local(norm)
        except LockHeld as held:
            raise StoreLockedError(
                f"{norm}: not broken: {describe_holder(held.info)} holds its OS lock, which "
                "is freed when that process ends (stop it to free the store)") from None
    return break_lease(lock_url(norm), storage_options)


class StoreLock:
    """Context manager holding the single-writer lock of the store at ``url``.

    >>> with StoreLock("cube.zarr") as lock:   # doctest: +SKIP
    ...     run()                               # lock.refresh() is also called by a thread
    """

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any] | None = None,
        *,
        stale_after: float = STALE_AFTER_S,
        heartbeat_interval: float | None = HEARTBEAT_S,
    ) -> None:
        self.url = normalize_url(url)
        self.lock_url = lock_url(self.url)
        self.storage_options = dict(storage_options or {})
        self.stale_after = float(stale_after)
        self.heartbeat_interval = heartbeat_interval
        self.remote = is_remote(self.url)
        self.token = uuid.uuid4().hex
        self.held = False
        self.lost = False
        self._local = None if self.remote else LocalLock(self.url)
        self._created = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreLock({self.url!r}, held={self.held})"

    def _info(self) -> dict[str, Any]:
        try:
            user = getpass.getuser()
        except (KeyError, OSError):
            user = "?"
        return {
            "token": self.token, "pid": os.getpid(), "host": socket.gethostname(), "user": user,
            "pid_started": process_start(os.getpid()), "created": self._created,
            "heartbeat": time.time(), "store": self.url,
            "lock": "heartbeat" if self.remote else "os",
        }

    def _refuse(self, info: Mapping[str, Any] | None) -> StoreLockedError:
        holder = describe_holder(info) + _since(info)
        if not self.remote:
            return StoreLockedError(
                f"{self.url}: the store is locked by {holder}: another farm run is writing it "
                f"(record {self.lock_url}). Its lock is an OS lock, freed when that process "
                "ends, even if killed: wait for it or stop it.")
        return StoreLockedError(
            f"{self.url}: the store is locked by {holder}: another farm run is writing it. "
            f"If that run is dead, its lock is taken over automatically once the heartbeat "
            f"is older than {self.stale_after:.0f} s (at once on the same host when its "
            f"process has exited); to break it by hand delete {self.lock_url} "
            "(python -m farm.store.lock break STORE).")

    def _lost(self, info: Mapping[str, Any] | None, why: str = "") -> StoreLockedError:
        return StoreLockedError(f"{self.url}: lost the lock {self.lock_url}{why} "
                                f"(now held by {describe_holder(info)})")

    # ---- public -------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        if self.held:
            return self
        self._created = time.time()
        try:
            if self._local is not None:
                self._local.acquire(self._info())
            elif old := acquire_lease(self.lock_url, self.storage_options, self._info(),
                                      self.stale_after):
                log.warning("took over the stale lock %s of %s", self.lock_url,
                            describe_holder(old))
        except LockHeld as held:
            raise self._refuse(held.info) from None
        self.held = True
        log.info("locked %s", self.lock_url)
        if self.heartbeat_interval:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat, name=f"farm-lock-heartbeat {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def refresh(self) -> None:
        """Update the heartbeat (a local lock also puts back a lock file deleted by hand);
        :class:`StoreLockedError` if the lock was taken from us."""
        if not self.held:
            raise RuntimeError(f"lock on {self.url} is not held")
        with self._io:
            try:
                if self._local is None:
                    refresh_lease(self.lock_url, self.storage_options, self._info())
                else:
                    self._local.refresh(self._info())
            except LockHeld as held:
                why = "" if self._local is None else (
                    f": its lock file {held.path} was deleted by hand and another writer took it")
                raise self._lost(held.info, why) from None

    def _beat(self) -> None:
        assert self.heartbeat_interval
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self.refresh()
            except StoreLockedError as exc:
                self.lost = True
                log.error("%s", exc)
                return
            except Exception:
                log.exception("heartbeat of the lock %s failed", self.lock_url)
                if not self.held:
                    return

    def release(self) -> None:
        """Stop the heartbeat and release the lock (its record only if it is still ours)."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
        with self._io:
            self.held = False
            if self._local is not None:
                self._local.release(self.token)
            else:
                release_lease(self.lock_url, self.storage_options, self.token)
        log.info("unlocked %s", self.lock_url)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def main(argv: list[str] | None = None) -> int:
    """``python -m farm.store.lock show|break STORE``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in ("show", "break"):
        sys.stderr.write("usage: python -m farm.store.lock show|break STORE\n")
        return 2
    if args[0] == "show":
        info = read_lock(args[1])
        sys.stdout.write(("unlocked" if info is None else json.dumps(info, indent=2)) + "\n")
        return 0
    try:
        broken = break_lock(args[1])
    except StoreLockedError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(("lock removed" if broken else "no lock") + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
