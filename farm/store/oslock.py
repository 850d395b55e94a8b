"""The local half of :mod:`farm.store.lock`: OS-level file locks from the ``filelock`` package.

Files beside a local store ``cube.zarr`` (named after its real path, see below):

- ``cube.zarr.farm-lock``: the holder's record, JSON (as on an object store); written
  by the holder, removed when it releases. A record only: it locks nothing.
- ``.cube.zarr.farm-lock`` and ``.cube.zarr.farm-lock.guard``: the two lock files, each
  held with ``filelock.FileLock`` (``flock(2)`` on Linux and macOS) for the whole run.
  They stay in place, empty, after a release (filelock's design: waiters must meet
  the same inode).

What holds, and why:

- One writer: a writer takes both OS locks or neither; ``flock`` excludes a second
  descriptor, in another process or in the same one.
- A crashed holder leaves no stale lock: the kernel drops a ``flock`` when the holder's
  last descriptor closes, on any exit, SIGKILL included. A leftover record is then
  reported as free (:func:`read_record` asks the OS whether the lock is held).
- Aliases do not split the lock: the files are named after ``os.path.realpath`` of the
  store (symlinks of the store and of its parents resolved), so ``ln -s cube.zarr
  alias.zarr`` meets the same locks. (Bind mounts and hard-linked parents are not
  resolved.)
- Deleting a lock file by hand does not let a second writer in. filelock does not
  promise this: a ``flock`` belongs to the inode, and a second writer creates and locks
  a new file at the deleted path. Hence two lock files: the other one still refuses
  the second writer, and the holder puts a deleted one back at its next
  :meth:`LocalLock.refresh` (heartbeat, and after every block). A writer that got both
  OS locks still reads the record, and is refused while it names another live holder
  (:func:`farm.store.lockrecord.is_stale`): only deleting both lock files *and* the
  record lets a second writer in; the first then gets ``StoreLockedError`` ("another
  writer took the store") at its next refresh, and its release leaves the second's
  record and lock files alone.
- The record is checked at every refresh: one that names another holder (edited, or
  written by a second writer) stops the holder (:class:`LockHeld`); a deleted record is
  put back (the OS locks still hold the store).
- NFS: ``flock`` is honoured across hosts on NFSv4 (Linux emulates it with byte-range
  locks). On a filesystem without ``flock`` filelock falls back to its marker-file
  ``SoftFileLock`` (filelock >= 4 does this itself, with a warning; older versions
  raise NotImplementedError and this module takes ``<lock file>.soft`` markers).
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import filelock

from farm.store.lockrecord import (
    MALFORMED,
    STALE_AFTER_S,
    LockHeld,
    describe_holder,
    is_stale,
    parse_record,
    record_problem,
)

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "LocalLock", "LockHeld", "break_local", "is_held", "lock_files",
           "read_record", "record_path", "remove_record"]

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".farm-lock"
WAIT_S = 0.5  # a writer waits this long for the OS locks (a reader's probe takes microseconds)
_NO_FLOCK = {errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOLCK}


def record_path(store_path: str) -> str:
    """``<real store path>.farm-lock``: the holder's record of a local store."""
    return os.path.realpath(store_path) + LOCK_SUFFIX


def lock_files(store_path: str) -> tuple[str, str]:
    """The two OS lock files of a local store, beside its real path (hidden)."""
    parent, name = os.path.split(os.path.realpath(store_path))
    base = os.path.join(parent, f".{name}{LOCK_SUFFIX}")
    return base, base + ".guard"


def is_held(path: str) -> bool | None:
    """Whether a process holds the OS lock on ``path``; None when it cannot be told (no
    ``flock`` on that filesystem). Probes with a non-blocking exclusive ``flock``."""
    if fcntl is None:  # pragma: no cover - not on Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return True
        if exc.errno in _NO_FLOCK:
            return None
        raise
    finally:
        os.close(fd)  # closing drops the probe's lock
    return False


def _read_json(path: str) -> dict | None:
    """The record file's content: None when absent or empty, ``{"malformed": why}`` when
    it is not a JSON object."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return None
    return parse_record(raw)


def read_record(store_path: str, stale_after: float = STALE_AFTER_S) -> dict | None:
    """The holder's record with ``os_lock`` saying how the lock is known: ``held`` (the OS
    says a process holds it), ``unknown`` (no ``flock`` here: the record's fields tell,
    see :func:`farm.store.lockrecord.is_stale`) or ``free`` (no OS lock, but the record
    names a live holder, or is malformed). None when the store is not locked: no OS lock
    and no record, or only the well-formed, stale record of a holder that is gone."""
    held = [is_held(path) for path in lock_files(store_path)]
    info = _read_json(record_path(store_path))
    if any(held):
        return {**(info or {}), "os_lock": "held"}
    if info is None:
        return None
    if None in held:
        return {**info, "os_lock": "unknown"}
    info = {**info, "os_lock": "free"}
    return info if record_problem(info) is not None or not is_stale(info, stale_after) else None


def remove_record(store_path: str, token: str | None = None) -> bool:
    """Remove the record (only when it holds ``token``, if given); True when removed."""
    path = record_path(store_path)
    if token is not None and (_read_json(path) or {}).get("token") != token:
        return False
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True


def _take(path: str, wait: float) -> filelock.BaseFileLock:
    """Take the OS lock on ``path`` (``filelock.Timeout`` if another holds it)."""
    lock: filelock.BaseFileLock = filelock.FileLock(path, timeout=wait, thread_local=False)
    try:
        lock.acquire()
    except NotImplementedError:  # filelock < 4 on a filesystem without flock
        log.warning("no flock on the filesystem of %s: a marker file lock instead", path)
        lock = filelock.SoftFileLock(path + ".soft", timeout=wait, thread_local=False)
        lock.acquire()
    return lock


def _identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class LocalLock:
    """Both OS locks of a local store and its record; see the module's docstring."""

    def __init__(self, store_path: str, stale_after: float = STALE_AFTER_S) -> None:
        self.store_path = store_path
        self.stale_after = stale_after
        self.paths = lock_files(store_path)
        self.record = record_path(store_path)
        # path -> (its lock, the inode it locked: a lock file deleted by hand is put back)
        self._held: dict[str, tuple[filelock.BaseFileLock, tuple[int, int] | None]] = {}

    def acquire(self, info: Mapping[str, Any]) -> None:
        """Take both OS locks, check the record and write ours, or raise :class:`LockHeld`
        (holding nothing)."""
        os.makedirs(os.path.dirname(self.record) or ".", exist_ok=True)
        try:
            for path in self.paths:
                try:
                    lock = _take(path, WAIT_S)
                except filelock.Timeout:
                    raise LockHeld(path, read_record(self.store_path)) from None
                self._held[path] = (lock, _identity(lock.lock_file))
            self._check_leftover(info)
            self.write(info)
        except BaseException:
            self.release()
            raise

    def _check_leftover(self, info: Mapping[str, Any]) -> None:
        """With both OS locks taken, a record of another holder is a leftover, unless it
        names a live holder whose lock files were deleted by hand (:class:`LockHeld`)."""
        old = _read_json(self.record)
        if old is None or old.get("token") == info.get("token"):
            return
        if not is_stale({**old, "os_lock": "free"}, self.stale_after):
            raise LockHeld(self.record, {**old, "os_lock": "free"})
        if (problem := record_problem(old)) is not None:
            log.warning("%s: %s: %s; replaced", self.record, MALFORMED, problem)
        else:
            log.info("replaced the leftover lock record of %s", describe_holder(old))

    def write(self, info: Mapping[str, Any]) -> None:
        """Write the record atomically (readers never see a partial one)."""
        tmp = f"{self.record}.{info.get('token', os.getpid())}.tmp"
        with open(tmp, "w") as fh:
            json.dump(dict(info), fh)
        os.replace(tmp, self.record)

    def refresh(self, info: Mapping[str, Any]) -> None:
        """Put back a lock file deleted by hand, check that the record is still ours, then
        rewrite it (heartbeat). :class:`LockHeld` when another writer took a deleted
        file's place, or when the record names another holder (nothing is written)."""
        for path, (lock, ident) in list(self._held.items()):
            if ident is None or _identity(lock.lock_file) == ident:
                continue
            try:
                new = _take(path, WAIT_S)
            except filelock.Timeout:
                raise LockHeld(path, read_record(self.store_path)) from None
            log.warning("the lock file %s was deleted by hand; put back (still locked)", path)
            self._drop(lock, ident)  # the deleted inode's lock
            self._held[path] = (new, _identity(new.lock_file))
        now = _read_json(self.record)
        if now is None:
            log.warning("the lock record %s was deleted by hand; put back", self.record)
        elif now.get("token") != info.get("token"):
            raise LockHeld(self.record, now)
        self.write(info)

    @staticmethod
    def _drop(lock: filelock.BaseFileLock, ident: tuple[int, int] | None) -> None:
        """Release ``lock``, unless it is a marker lock whose file is now someone else's
        (filelock < 4's ``SoftFileLock`` deletes its file on release)."""
        if isinstance(lock, filelock.SoftFileLock) and _identity(lock.lock_file) != ident:
            return
        lock.release()

    def release(self, token: str | None = None) -> None:
        """Remove the record (if it is ours), then release the OS locks (the files stay;
        files that are now another writer's are left alone)."""
        if self._held and token is not None:
            remove_record(self.store_path, token)
        for path in reversed(self.paths):
            held = self._held.pop(path, None)
            if held is not None:
                self._drop(*held)


def break_local(store_path: str) -> bool:
    """Remove a local lock that no process holds (a leftover record, or markers where the
    filesystem has no ``flock``); True when there was one. :class:`LockHeld` if held."""
    held = [is_held(path) for path in lock_files(store_path)]
    for path, state in zip(lock_files(store_path), held, strict=True):
        if state:
            raise LockHeld(path, read_record(store_path))
    removed = remove_record(store_path)
    if None in held:  # marker locks: deleting the markers is the break
        for path in lock_files(store_path):
            for marker in (path, path + ".soft"):
                try:
                    os.remove(marker)
                    removed = True
                except FileNotFoundError:
                    pass
    return removed
