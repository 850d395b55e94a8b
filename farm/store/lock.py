"""One writer per store: a lock object beside the store, ``<store>.farm-lock``.

The lock holds JSON ``{token, pid, host, user, pid_started, created, heartbeat}``
(times in seconds since the epoch). It lives beside the store, not inside it, so
zarr never meets an unknown member while the run consolidates metadata.

- Local paths: the lock file is created and held with an OS lock (``fcntl.flock``),
  which the kernel drops when the holder dies; a leftover file of a dead holder is
  *stale* and taken over with a logged warning.
- Object stores (``s3://``, ``gs://``): an object with a heartbeat. It is refused
  while fresh (heartbeat younger than ``stale_after``, 120 s) and taken over when
  stale, or at once when its holder was on this host and its process has exited.

A background thread refreshes the heartbeat every ``heartbeat_interval`` seconds
(or call :meth:`StoreLock.refresh` from the run loop). Break a stale lock by hand
with ``python -m farm.store.lock break STORE`` or by deleting ``<store>.farm-lock``.
"""

from __future__ import annotations

import errno
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

import psutil

from farm.store.storage import StoreRefusedError, filesystem, is_remote, normalize_url, sibling_url

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_SUFFIX", "StoreLock", "StoreLockedError", "break_lock", "lock_url", "read_lock"]

log = logging.getLogger(__name__)

LOCK_SUFFIX = ".farm-lock"
STALE_AFTER_S = 120.0
HEARTBEAT_S = 30.0


class StoreLockedError(StoreRefusedError, RuntimeError):
    """Another writer holds the store's lock (or took it over from this one)."""


def lock_url(url: str) -> str:
    """The URL of the lock of the store at ``url``: ``<store>.farm-lock``."""
    return sibling_url(url, LOCK_SUFFIX)


def _process_start(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None


def _describe(info: Mapping[str, Any] | None, lock: str, stale_after: float) -> str:
    if not info:
        holder = "an unknown holder (unreadable lock)"
        age_text = ""
    else:
        holder = f"{info.get('user', '?')}@{info.get('host', '?')} pid {info.get('pid', '?')}"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info.get("created", 0))))
        age = time.time() - float(info.get("heartbeat", 0))
        age_text = f" since {since} (last heartbeat {age:.0f} s ago)"
    return (
        f"the store is locked by {holder}{age_text}: another farm run is writing it. "
        f"If that run is dead, its lock is taken over automatically once the heartbeat is "
        f"older than {stale_after:.0f} s (at once on the same host when its process has "
        f"exited); to break it by hand delete {lock} "
        f"(python -m farm.store.lock break STORE)."
    )


def is_stale(info: Mapping[str, Any], stale_after: float = STALE_AFTER_S) -> bool:
    """True when the lock's holder is gone: dead process on this host, or an old heartbeat."""
    if info.get("host") == socket.gethostname():
        pid = int(info.get("pid", -1))
        started = _process_start(pid) if pid > 0 else None
        if started is None:
            return True
        recorded = info.get("pid_started")
        return recorded is not None and abs(started - float(recorded)) > 1.0  # pid reused
    return time.time() - float(info.get("heartbeat", 0)) > stale_after


def read_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> dict | None:
    """The lock info of the store at ``url`` or None when unlocked (``{}`` if unreadable)."""
    fs, path = filesystem(lock_url(url), storage_options)
    try:
        raw = fs.cat_file(path)
    except (FileNotFoundError, IsADirectoryError):
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def break_lock(url: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Delete the store's lock whoever holds it; True when there was one."""
    fs, path = filesystem(lock_url(url), storage_options)
    try:
        fs.rm_file(path)
    except FileNotFoundError:
        return False
    log.warning("broke the lock %s", lock_url(url))
    return True


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
        self._fd: int | None = None
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
            "pid_started": _process_start(os.getpid()), "created": self._created,
            "heartbeat": time.time(), "store": self.url,
        }

    def _refuse(self, info: Mapping[str, Any] | None) -> StoreLockedError:
        return StoreLockedError(f"{self.url}: " + _describe(info, self.lock_url, self.stale_after))

    # ---- local --------------------------------------------------------------------
    def _write_fd(self) -> None:
        assert self._fd is not None
        data = json.dumps(self._info()).encode()
        os.lseek(self._fd, 0, os.SEEK_SET)
        os.ftruncate(self._fd, 0)
        os.write(self._fd, data)
        os.fsync(self._fd)

    def _acquire_local(self) -> None:
        path = self.lock_url
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        for _attempt in range(5):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if fcntl is not None:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except OSError as exc:
                        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                            raise self._refuse(read_lock(self.url)) from None
                        log.warning("flock unsupported on %s (%s): pid checks only", path, exc)
                try:  # the file may have been unlinked by its releasing holder: retry
                    same = os.fstat(fd).st_ino == os.stat(path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                raw = os.pread(fd, 1 << 16, 0)
                if raw.strip():
                    try:
                        old = json.loads(raw)
                    except ValueError:
                        old = {}
                    if old and not is_stale(old, self.stale_after):
                        raise self._refuse(old)  # flock ineffective (e.g. other NFS host)
                    log.warning("taking over the stale lock %s of %s", path, _holder(old))
                self._fd = fd
                self._write_fd()
                return
            except BaseException:
                if self._fd != fd:
                    os.close(fd)
                raise
        raise self._refuse(read_lock(self.url))

    # ---- object stores ------------------------------------------------------------
    def _acquire_remote(self) -> None:
        fs, path = filesystem(self.lock_url, self.storage_options)
        old = read_lock(self.url, self.storage_options)
        if old is not None:
            if old and not is_stale(old, self.stale_after):
                raise self._refuse(old)
            log.warning("taking over the stale lock %s of %s", self.lock_url, _holder(old))
        fs.pipe_file(path, json.dumps(self._info()).encode())
        time.sleep(0.05)  # let a racing writer land, then check we won
        now = read_lock(self.url, self.storage_options)
        if not now or now.get("token") != self.token:
            raise self._refuse(now)

    # ---- public -------------------------------------------------------------------
    def acquire(self) -> StoreLock:
        """Take the lock or raise :class:`StoreLockedError` naming the holder."""
        if self.held:
            return self
        self._created = time.time()
        if self.remote:
            self._acquire_remote()
        else:
            self._acquire_local()
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
        """Update the heartbeat; :class:`StoreLockedError` if the lock was taken from us."""
        if not self.held:
            raise RuntimeError(f"lock on {self.url} is not held")
        with self._io:
            if not self.remote:
                self._write_fd()
                return
            now = read_lock(self.url, self.storage_options)
            if not now or now.get("token") != self.token:
                raise StoreLockedError(
                    f"{self.url}: lost the lock {self.lock_url} (now held by {_holder(now)})"
                )
            fs, path = filesystem(self.lock_url, self.storage_options)
            fs.pipe_file(path, json.dumps(self._info()).encode())

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
        """Stop the heartbeat and delete the lock (only if it is still ours)."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        self._thread = None
        with self._io:
            self.held = False
            if self.remote:
                now = read_lock(self.url, self.storage_options)
                if now and now.get("token") == self.token:
                    fs, path = filesystem(self.lock_url, self.storage_options)
                    fs.rm_file(path)
            elif self._fd is not None:
                try:  # unlink while holding the flock; waiters re-check the inode
                    os.unlink(self.lock_url)
                except FileNotFoundError:
                    pass
                os.close(self._fd)
                self._fd = None
        log.info("unlocked %s", self.lock_url)

    def __enter__(self) -> StoreLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _holder(info: Mapping[str, Any] | None) -> str:
    if not info:
        return "an unknown holder"
    return f"{info.get('user', '?')}@{info.get('host', '?')} pid {info.get('pid', '?')}"


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
    sys.stdout.write(("lock removed" if break_lock(args[1]) else "no lock") + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
