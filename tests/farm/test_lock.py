"""One writer per store (farm.store.lock): OS locks for local stores (filelock), heartbeat
leases on object stores.

Local guarantees tested here (farm/store/oslock.py documents them): a second writer is
refused while the first holds the store, across processes, in one process and through a
symlinked alias; a SIGKILLed holder's lock is free at once; deleting a lock file by hand
lets no second writer in (and the holder puts it back); a filesystem without flock falls
back to a marker lock.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _cube_helpers import cube_attrs, grid_design, moto_s3

from farm.errors import StoreRefusedError
from farm.store import oslock
from farm.store.lock import (
    StoreLock,
    StoreLockedError,
    break_lock,
    describe_holder,
    is_stale,
    lock_url,
    read_lock,
)

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import sys
    from farm.store.lock import StoreLock
    lock = StoreLock(sys.argv[1], heartbeat_interval=None).acquire()
    print("locked", flush=True)
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


def _python(code: str, *args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


def _hold(store: Path) -> subprocess.Popen:
    """A process holding the store's lock (send a line to release it)."""
    holder = _python(HOLDER, str(store))
    assert holder.stdout.readline().strip() == "locked"
    return holder


def _one_line_naming(msg: str, pid: int) -> None:
    assert "\n" not in msg and f"pid {pid}" in msg and socket.gethostname() in msg, msg


def test_record_beside_the_store_and_released(tmp_path):
    store = tmp_path / "cube.zarr"
    with StoreLock(store) as lock:
        assert Path(lock.lock_url) == tmp_path / "cube.zarr.farm-lock"
        info = read_lock(str(store))
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        assert info["token"] == lock.token and info["heartbeat"] >= info["created"] > 0
        assert info["os_lock"] == "held" and not is_stale(info)
        assert all(oslock.is_held(p) for p in oslock.lock_files(str(store)))
    assert not Path(lock.lock_url).exists() and read_lock(str(store)) is None
    # the OS lock files stay (filelock's design), free
    assert [oslock.is_held(p) for p in oslock.lock_files(str(store))] == [False, False]


def test_second_writer_refused_in_process(tmp_path):
    store = tmp_path / "cube.zarr"
    with StoreLock(store, heartbeat_interval=None):
        with pytest.raises(StoreLockedError) as err:
            StoreLock(store).acquire()
        _one_line_naming(str(err.value), os.getpid())
        assert "farm-lock" in str(err.value) and "OS lock" in str(err.value)
        assert isinstance(err.value, StoreRefusedError)
    with StoreLock(store, heartbeat_interval=None):  # free again
        pass


def test_second_writer_refused_across_processes(tmp_path):
    store = tmp_path / "cube.zarr"
    holder = _hold(store)
    try:
        with pytest.raises(StoreLockedError) as err:
            StoreLock(store).acquire()
        _one_line_naming(str(err.value), holder.pid)
    finally:
        holder.communicate("\n", timeout=30)
    assert holder.returncode == 0
    with StoreLock(store, heartbeat_interval=None):  # and the other way round
        out, _ = _python(TRY, str(store)).communicate(timeout=60)
        assert "refused:" in out and f"pid {os.getpid()}" in out


def test_symlinked_alias_cannot_let_a_second_writer_in(tmp_path):
    real = tmp_path / "data" / "cube.zarr"
    real.mkdir(parents=True)
    alias = tmp_path / "alias.zarr"
    alias.symlink_to(real)  # ln -s STORE alias.zarr
    (tmp_path / "linked").symlink_to(tmp_path / "data")  # a symlinked parent
    via_parent = tmp_path / "linked" / "cube.zarr"
    assert lock_url(str(alias)) == lock_url(str(via_parent)) == str(real) + ".farm-lock"
    holder = _hold(alias)
    try:
        for other in (real, via_parent, alias):
            with pytest.raises(StoreLockedError) as err:
                StoreLock(other, heartbeat_interval=None).acquire()
            _one_line_naming(str(err.value), holder.pid)
    finally:
        holder.communicate("\n", timeout=30)
    with StoreLock(real, heartbeat_interval=None):
        out, _ = _python(TRY, str(alias)).communicate(timeout=60)
        assert "refused:" in out


def test_sigkilled_holder_leaves_no_stale_lock(tmp_path):
    store = tmp_path / "cube.zarr"
    holder = _hold(store)
    assert read_lock(str(store))["pid"] == holder.pid
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert Path(lock_url(str(store))).exists()  # its record is left behind ...
    assert read_lock(str(store)) is None  # ... but the OS dropped the lock: free
    t0 = time.monotonic()
    with StoreLock(store, heartbeat_interval=None) as lock:  # at once, no stale timeout
        assert read_lock(str(store))["token"] == lock.token
    assert time.monotonic() - t0 < 5


def test_deleting_a_lock_file_by_hand_lets_no_second_writer_in(tmp_path, caplog):
    store = tmp_path / "cube.zarr"
    a = StoreLock(store, heartbeat_interval=None).acquire()
    try:
        for path in (lock_url(str(store)), *oslock.lock_files(str(store))):
            os.remove(path)
            with pytest.raises(StoreLockedError) as err:  # the other lock file refuses
                StoreLock(store, heartbeat_interval=None).acquire()
            assert "\n" not in str(err.value)
            a.refresh()  # the holder puts the deleted file back, locked
            assert Path(path).exists() and read_lock(str(store))["token"] == a.token
        assert all(oslock.is_held(p) for p in oslock.lock_files(str(store)))
        assert "deleted by hand" in caplog.text
        # the limit: both lock files deleted before the holder's next refresh
        for path in oslock.lock_files(str(store)):
            os.remove(path)
        b = StoreLock(store, heartbeat_interval=None).acquire()
        with pytest.raises(StoreLockedError, match="lost the lock"):
            a.refresh()  # the first writer learns it at once
        b.release()
    finally:
        a.release()


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
        with pytest.raises(StoreLockedError, match="not broken"):  # never while held
            break_lock(str(store))
    finally:
        lock.release()
    assert not lock.held and not break_lock(str(store))
    Path(lock_url(str(store))).write_text(json.dumps({"pid": 1, "host": "gone"}))
    assert read_lock(str(store)) is None  # a leftover record locks nothing
    assert break_lock(str(store)) and not Path(lock_url(str(store))).exists()


def test_holder_description_is_one_function(tmp_path):
    """The refusal, the lost-lock message and `farm status` name the holder alike."""
    from farm.store.cube import create_cube
    from farm.store.status import store_summary

    design = grid_design()
    cube = create_cube(tmp_path / "c.zarr", design, cube_attrs(design))
    with StoreLock(cube.url, heartbeat_interval=None):
        info = read_lock(cube.url)
        who = describe_holder(info)
        assert who == f"{info['user']}@{socket.gethostname()} pid {os.getpid()}"
        assert f"lock:      {who} (running, heartbeat" in store_summary(cube.url)
        with pytest.raises(StoreLockedError, match=re.escape(f"locked by {who} since ")):
            StoreLock(cube.url).acquire()
    assert describe_holder(None) == describe_holder({}) == "an unknown holder"


@pytest.mark.filterwarnings("ignore:flock not supported")  # filelock >= 4 says so
def test_filesystem_without_flock_falls_back_to_a_marker_lock(tmp_path, monkeypatch):
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    store = tmp_path / "cube.zarr"
    with StoreLock(store, heartbeat_interval=None):
        info = read_lock(str(store))
        assert info["os_lock"] == "unknown" and info["pid"] == os.getpid()
        assert not is_stale(info)  # its process, on this host, is alive
        with pytest.raises(StoreLockedError):
            StoreLock(store, heartbeat_interval=None).acquire()
    assert read_lock(str(store)) is None
    with StoreLock(store, heartbeat_interval=None):  # free again
        pass


def test_staleness_of_a_lease_record():
    """When an object store's lock (or a marker lock) may be taken over."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host, now = socket.gethostname(), time.time()
    assert is_stale({"host": host, "pid": dead.pid, "heartbeat": now})  # exited: at once
    assert not is_stale({"host": host, "pid": os.getppid(), "heartbeat": now - 3600})
    me = {"host": host, "pid": os.getpid(), "heartbeat": now}
    assert is_stale({**me, "pid_started": 12.0})  # the pid was reused
    assert not is_stale({"host": "node-7", "pid": 1, "heartbeat": now - 60})
    assert is_stale({"host": "node-7", "pid": 1, "heartbeat": now - 600})
    assert is_stale({"host": "node-7", "pid": 1, "heartbeat": now - 60}, stale_after=30)
    assert not is_stale({"host": "node-7", "pid": 1, "heartbeat": 0, "os_lock": "held"})


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
