"""One writer per store (farm.store.lock): local lock files and object-store locks."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _cube_helpers import moto_s3

from farm.errors import StoreRefusedError
from farm.store.lock import StoreLock, StoreLockedError, break_lock, lock_url, read_lock

ROOT = Path(__file__).resolve().parent.parent

HOLDER = textwrap.dedent("""
    import sys, time
    from farm.store.lock import StoreLock
    lock = StoreLock(sys.argv[1], heartbeat_interval=None).acquire()
    print("locked", flush=True)
    if sys.argv[2] == "crash":
        import os; os._exit(3)
    sys.stdin.readline()
    lock.release()
""")

TRY = textwrap.dedent("""
    import sys
    from farm.store.lock import StoreLock, StoreLockedError
    try:
        StoreLock(sys.argv[1], heartbeat_interval=None).acquire()
    except StoreLockedError as exc:
        print("refused:", exc); sys.exit(7)
    print("acquired")
""")


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, **kw)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(store: Path, **info) -> Path:
    path = Path(lock_url(str(store)))
    base = {"token": "x", "pid": 1, "host": socket.gethostname(), "user": "someone",
            "created": time.time(), "heartbeat": time.time()}
    path.write_text(json.dumps({**base, **info}))
    return path


def test_lock_file_beside_store_and_released(tmp_path):
    store = tmp_path / "cube.zarr"
    with StoreLock(store) as lock:
        path = Path(lock.lock_url)
        assert path == tmp_path / "cube.zarr.farm-lock"
        info = read_lock(str(store))
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["token"] == lock.token and info["heartbeat"] >= info["created"] > 0
    assert not path.exists() and read_lock(str(store)) is None


def test_second_holder_refused_in_process(tmp_path):
    store = tmp_path / "cube.zarr"
    with StoreLock(store, heartbeat_interval=None):
        with pytest.raises(StoreLockedError) as err:
            StoreLock(store).acquire()
        msg = str(err.value)
        assert f"pid {os.getpid()}" in msg and socket.gethostname() in msg
        assert "farm-lock" in msg and "break" in msg
        assert isinstance(err.value, StoreRefusedError)
    with StoreLock(store, heartbeat_interval=None):  # free again
        pass


def test_second_holder_refused_across_processes(tmp_path):
    store = tmp_path / "cube.zarr"
    holder = _python(HOLDER, str(store), "hold")
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreLockedError, match=f"pid {holder.pid}"):
            StoreLock(store).acquire()
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    with StoreLock(store, heartbeat_interval=None):  # and the other way round
        out, _ = _python(TRY, str(store)).communicate(timeout=60)
        assert "refused:" in out and f"pid {os.getpid()}" in out


def test_crashed_holder_is_taken_over(tmp_path, caplog):
    store = tmp_path / "cube.zarr"
    holder = _python(HOLDER, str(store), "crash")
    assert holder.stdout.readline().strip() == "locked"
    holder.wait(timeout=30)
    assert holder.returncode == 3 and Path(lock_url(str(store))).exists()
    with caplog.at_level(logging.WARNING, logger="farm.store.lock"), StoreLock(store) as lock:
        assert read_lock(str(store))["token"] == lock.token
    assert "stale" in caplog.text and f"pid {holder.pid}" in caplog.text


def test_stale_lock_of_dead_pid_taken_over(tmp_path, caplog):
    store = tmp_path / "cube.zarr"
    dead = _dead_pid()
    _write_lock(store, pid=dead)
    with caplog.at_level(logging.WARNING, logger="farm.store.lock"), StoreLock(store) as lock:
        assert read_lock(str(store))["pid"] == os.getpid() and lock.held
    assert f"pid {dead}" in caplog.text


def test_lock_of_live_pid_or_fresh_remote_host_refused(tmp_path):
    store = tmp_path / "cube.zarr"
    path = _write_lock(store, pid=os.getppid(), pid_started=None)
    with pytest.raises(StoreLockedError):  # flock free but recorded holder alive
        StoreLock(store).acquire()
    path.write_text(json.dumps({"pid": 1, "host": "other-node", "user": "u",
                                "created": time.time(), "heartbeat": time.time()}))
    with pytest.raises(StoreLockedError, match="u@other-node"):
        StoreLock(store).acquire()
    old = time.time() - 3600
    path.write_text(json.dumps({"pid": 1, "host": "other-node", "created": old, "heartbeat": old}))
    with StoreLock(store, heartbeat_interval=None) as lock:
        assert read_lock(str(store))["token"] == lock.token


def test_heartbeat_refresh_and_break(tmp_path):
    store = tmp_path / "cube.zarr"
    lock = StoreLock(store, heartbeat_interval=0.05).acquire()
    try:
        first = read_lock(str(store))["heartbeat"]
        deadline = time.time() + 10
        while read_lock(str(store)).get("heartbeat", 0) <= first and time.time() < deadline:
            time.sleep(0.05)
        assert read_lock(str(store))["heartbeat"] > first
        lock.refresh()
    finally:
        lock.release()
    assert not lock.held and not break_lock(str(store))
    _write_lock(store)
    assert break_lock(str(store)) and read_lock(str(store)) is None


@pytest.mark.slow
def test_object_store_lock():
    with moto_s3() as opts:
        url = "s3://farm/runs/lock-cube.zarr"
        a = StoreLock(url, opts, heartbeat_interval=None).acquire()
        try:
            assert read_lock(url, opts)["token"] == a.token
            with pytest.raises(StoreLockedError, match=r"s3://farm/runs/lock-cube\.zarr\.farm-lock"):
                StoreLock(url, opts, heartbeat_interval=None).acquire()
            a.refresh()
        finally:
            a.release()
        assert read_lock(url, opts) is None
        # a stale lock of another host is taken over; the old holder learns it lost it
        b = StoreLock(url, opts, heartbeat_interval=None).acquire()
        import fsspec

        fs = fsspec.filesystem("s3", **{**opts, "client_kwargs": {}}, skip_instance_cache=True)
        old = time.time() - 600
        fs.pipe_file("farm/runs/lock-cube.zarr.farm-lock", json.dumps(
            {"token": "t", "pid": 1, "host": "node-7", "created": old, "heartbeat": old}).encode())
        c = StoreLock(url, opts, heartbeat_interval=None).acquire()
        with pytest.raises(StoreLockedError, match="lost the lock"):
            b.refresh()
        b.held = False
        c.release()
