"""One writer per store: :class:`StoreLock`, a context manager held for a whole run.

The holder's record (:mod:`farm.store.lockrecord`: token, pid, host, times) lives in
``<store>.farm-lock``, beside the store, not inside it, so zarr never meets an unknown
member. The store is named by its identity (:func:`store_identity`): a local store's
real path (symlinks resolved, so ``ln -s cube.zarr alias.zarr`` meets the same lock),
an object store's normalized URL. A refused writer gets a one-line
:class:`StoreLockedError` naming the holder and the takeover rule
(:data:`farm.store.lockrecord.TAKEOVER_RULE`, the one statement of it).

- Local paths: OS-level locks from the ``filelock`` package (:mod:`farm.store.oslock`,
  which says what they guarantee): the kernel releases them when the holder dies, so no
  stale lock is left; deleting a lock file by hand does not let a second writer in.
- Object stores (``s3://``, ``gs://``): the record object itself, with a heartbeat
  (:mod:`farm.store.leaselock`). Break a stale one by hand with
  ``python -m farm.store.lock break STORE``.

Every refresh (a background thread every ``heartbeat_interval`` seconds, and the run
loop every ``farm.run.sweep.LOCK_REFRESH_S`` seconds) and the release check that the
record still carries this holder's token. A holder whose record was replaced or deleted
has lost the store: the refresh raises :class:`StoreLockedError` ("another writer took
the store ..."), the heartbeat thread keeps that error for :meth:`StoreLock.check` (the
run loop calls it every second), and nothing of another holder is ever overwritten or
deleted.
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
from typing import Any, Literal

from farm.store import leaselock
from farm.store.lockrecord import (
    STALE_AFTER_S,
    TAKEOVER_RULE,
    LockHeld,
    describe_holder,
    is_stale,
    lock_state,
    process_start,
    since_text,
)
from farm.store.oslock import LOCK_SUFFIX, LocalLock, break_local, read_record
from farm.store.storage import StoreRefusedError, is_remote, normalize_url, sibling_url

__all__ = ["LOCK_SUFFIX", "STALE_AFTER_S", "TAKEOVER_RULE", "StoreLock", "StoreLockedError",
           "break_lock", "describe_holder", "is_stale", "lock_state", "lock_url", "read_lock",
           "store_identity"]

log = logging.getLogger(__name__)

HEARTBEAT_S = 5.0  # seconds between heartbeats of a held lock (read when a lock is made)


class StoreLockedError(StoreRefusedError, RuntimeError):
    """Another writer holds the store's lock (or took it over from this one)."""


def store_identity(url: str | os.PathLike[str]) -> str:
    """What names a store for its lock: the real path of a local store (``~``, relative
    parts and symlinks resolved), the normalized URL of a remote one (scheme in lower
    case, no trailing '/')."""
    norm = normalize_url(url)
    if is_remote(norm):
        scheme, rest = norm.split("://", 1)
        return f"{scheme.lower()}://{rest}"
    return os.path.realpath(norm)


def lock_url(url: str | os.PathLike[str]) -> str:
    """Where the lock record of the store at ``url`` lives: ``<store identity>.farm-lock``."""
    ident = store_identity(url)
    return sibling_url(ident, LOCK_SUFFIX) if is_remote(ident) else ident + LOCK_SUFFIX


def read_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """The lock record of the store at ``url``; None when unlocked.

    A local record comes with ``os_lock`` (:func:`farm.store.oslock.read_record`); a
    leftover record of a holder that is gone is no lock (None). A record that is not a
    JSON object reads as ``{"malformed": why}``.
    """
    ident = store_identity(url)
    if is_remote(ident):
        return leaselock.read_lease(lock_url(ident), storage_options)
    return read_record(ident)


def break_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Delete the store's lock; True when there was one. An object store's lock goes
    whoever holds it; a local OS lock is never broken while held (StoreLockedError)."""
    ident = store_identity(url)
    if not is_remote(ident):
        try:
            return break_local(ident)
        except LockHeld as held:
            raise StoreLockedError(
                f"{ident}: not broken: {describe_holder(held.info)} holds its OS lock, which "
                "is freed when that process ends (stop it to free the store)") from None
    return leaselock.break_lease(lock_url(ident), storage_options)


class StoreLock:
    """Context manager holding the single-writer lock of the store at ``url``.

    >>> with StoreLock("cube.zarr") as lock:   # doctest: +SKIP
    ...     for block in blocks:
    ...         lock.check()                    # the heartbeat thread found the lock lost?
    ...         run(block)
    ...         lock.refresh()                  # still ours? (StoreLockedError if not)

    ``stale_after`` (seconds) is the takeover rule's heartbeat age; ``heartbeat_interval``
    (seconds; None: no heartbeat thread) defaults to :data:`HEARTBEAT_S`.
    """

    def __init__(
        self,
        url: str | os.PathLike[str],
        storage_options: Mapping[str, Any] | None = None,
        *,
        stale_after: float = STALE_AFTER_S,
        heartbeat_interval: float | Literal["default"] | None = "default",
    ) -> None:
        self.url = store_identity(url)
        self.lock_url = lock_url(self.url)
        self.storage_options = dict(storage_options or {})
        self.stale_after = float(stale_after)
        self.heartbeat_interval = (HEARTBEAT_S if heartbeat_interval == "default"
                                   else heartbeat_interval)
        self.remote = is_remote(self.url)
        self.token = uuid.uuid4().hex
        self.held = False
        self._lost_error: StoreLockedError | None = None
        self._local = None if self.remote else LocalLock(self.url, self.stale_after)
        self._created = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._io = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreLock({self.url!r}, held={self.held}, lost={self.lost})"

    @property
    def lost(self) -> bool:
        """True once a refresh (the heartbeat's or the run loop's) found the lock taken."""
        return self._lost_error is not None

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
        return StoreLockedError(
            f"{self.url}: the store is locked by {describe_holder(info)}{since_text(info)}: "
            f"another farm run is writing it (lock {self.lock_url}). "
            f"{TAKEOVER_RULE.format(stale_after=self.stale_after)} To break a stale lock by "
            "hand: python -m farm.store.lock break STORE.")

    def _taken(self, held: LockHeld) -> StoreLockedError:
        holder = ("nobody: its lock record was deleted" if held.info is None
                  else describe_holder(held.info))
        why = f" (its lock file {held.path} was deleted by hand)" if (
            self._local is not None and held.path != self.lock_url) else ""
        return StoreLockedError(
            f"another writer took the store {self.url}: its lock {self.lock_url} is now held "
            f"by {holder}{why}; this run stopped (blocks already written are kept and none is "
            "marked failed: rerun when that writer is done)")

    # ---- public -------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        if self.held:
            return self
        self._created = time.time()
        try:
            if self._local is not None:
                self._local.acquire(self._info())
            elif old := leaselock.acquire_lease(self.lock_url, self.storage_options, self._info(),
                                      self.stale_after):
                log.warning("took over the stale lock %s of %s", self.lock_url,
                            describe_holder(old))
        except LockHeld as held:
            raise self._refuse(held.info) from None
        self.held = True
        self._lost_error = None
        log.info("locked %s", self.lock_url)
        if self.heartbeat_interval:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._beat, name=f"farm-lock-heartbeat {self.url}", daemon=True
            )
            self._thread.start()
        return self

    def check(self) -> None:
        """Raise the :class:`StoreLockedError` a refresh found (the lock was taken); no I/O."""
        if self._lost_error is not None:
            raise self._lost_error

    def refresh(self) -> None:
        """Check that the record is still ours, then update its heartbeat (a local lock
        also puts back a lock file or record deleted by hand); :class:`StoreLockedError`
        ("another writer took the store") when it is not ours any more."""
        if not self.held:
            raise RuntimeError(f"lock on {self.url} is not held")
        self.check()
        with self._io:
            try:
                if self._local is None:
                    leaselock.refresh_lease(self.lock_url, self.storage_options, self._info())
                else:
                    self._local.refresh(self._info())
            except LockHeld as held:
                self._lost_error = self._taken(held)
                raise self._lost_error from None

    def _beat(self) -> None:
        assert self.heartbeat_interval
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self.refresh()
            except StoreLockedError as exc:
                log.error("%s", exc)
                return
            except Exception:
                log.exception("heartbeat of the lock %s failed", self.lock_url)
                if not self.held:
                    return

    def release(self) -> None:
        """Stop the heartbeat and release the lock: the record is deleted only if it is
        still ours, and another writer's lock files are left alone."""
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
                leaselock.release_lease(self.lock_url, self.storage_options, self.token)
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
