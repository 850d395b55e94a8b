"""One writer per store (farm.store.lock): OS locks for local stores (filelock), heartbeat
leases on object stores.

Local guarantees tested here (farm/store/oslock.py documents them): a second writer is
refused while the first holds the store, across processes, in one process and through a
symlinked alias; a SIGKILLed holder's lock is free at once; deleting a lock file by hand
lets no second writer in (and the holder puts it back); a filesystem without flock falls
back to a marker lock. Every refresh and the release check the owner token (an edited or
replaced record stops the holder, whose release leaves the other writer's lock alone);
malformed records read as stale, never as a crash; the takeover rule is stated once
(TAKEOVER_RULE) and is true. Object-store leases are tested on moto's S3 server.
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
    STALE_AFTER_S,
    TAKEOVER_RULE,
    StoreLock,
    StoreLockedError,
    break_lock,
    describe_holder,
    is_stale,
    lock_url,
    read_lock,
    store_identity,
)
from farm.store.lockrecord import process_start

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
        # both lock files deleted: the record still names a live holder, which refuses
        for path in oslock.lock_files(str(store)):
            os.remove(path)
        with pytest.raises(StoreLockedError) as err:
            StoreLock(store, heartbeat_interval=None).acquire()
        _one_line_naming(str(err.value), os.getpid())
        a.refresh()  # and the holder puts both back
        assert all(oslock.is_held(p) for p in oslock.lock_files(str(store)))
        # the limit: both lock files and the record deleted before the holder's refresh
        for path in (*oslock.lock_files(str(store)), lock_url(str(store))):
            os.remove(path)
        b = StoreLock(store, heartbeat_interval=None).acquire()
        with pytest.raises(StoreLockedError, match="another writer took the store") as err:
            a.refresh()  # the first writer learns it at once
        assert str(err.value).startswith(f"another writer took the store {store}")
        a.release()  # ... and its release leaves the second writer's lock alone
        assert read_lock(str(store))["token"] == b.token
        assert all(oslock.is_held(p) for p in oslock.lock_files(str(store)))
        with pytest.raises(StoreLockedError):
            StoreLock(store, heartbeat_interval=None).acquire()
        b.release()
        assert read_lock(str(store)) is None
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
    old = time.time() - 600
    Path(lock_url(str(store))).write_text(json.dumps(
        {"token": "t", "pid": 1, "host": "gone", "created": old, "heartbeat": old}))
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
    """When an object store's lock (or a local record without an OS lock) may be taken
    over: TAKEOVER_RULE, case by case."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host, now = socket.gethostname(), time.time()

    def rec(**kw):
        return {"token": "t", "host": host, "pid": os.getpid(), "created": now - 10,
                "heartbeat": now, "pid_started": process_start(os.getpid()), **kw}

    assert not is_stale(rec())  # alive, fresh
    assert is_stale(rec(pid=dead.pid))  # its process exited: at once
    assert is_stale(rec(pid_started=12.0))  # the pid was reused
    assert not is_stale(rec(pid=os.getppid(), pid_started=None))  # no start time: heartbeat
    assert not is_stale({k: v for k, v in rec().items() if k != "pid_started"})
    assert not is_stale(rec(host="node-7", pid=1, heartbeat=now - 60))
    assert is_stale(rec(host="node-7", pid=1, heartbeat=now - 600))
    assert is_stale(rec(host="node-7", pid=1, heartbeat=now - 60), stale_after=30)
    assert not is_stale(rec(host="node-7", pid=1, heartbeat=0, os_lock="held"))


def test_a_live_pid_without_pid_started_is_taken_over_once_its_heartbeat_is_old(tmp_path):
    """The rule promised by the refusal message holds: heartbeat older than stale_after
    -> taken over, whatever the pid fields say (here a live process on this host, and no
    pid_started). Before, such a record was refused forever."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        now = time.time()
        live = {"token": "old", "host": socket.gethostname(), "pid": sleeper.pid,
                "user": "someone", "created": now - 900}
        assert not is_stale({**live, "heartbeat": now - 5})
        assert is_stale({**live, "heartbeat": now - 121})
        store = tmp_path / "cube.zarr"  # a local record whose lock files are gone
        Path(lock_url(str(store))).write_text(json.dumps({**live, "heartbeat": now - 5}))
        with pytest.raises(StoreLockedError, match=f"pid {sleeper.pid}") as err:
            StoreLock(store, heartbeat_interval=None).acquire()
        assert TAKEOVER_RULE.format(stale_after=120) in str(err.value)
        Path(lock_url(str(store))).write_text(json.dumps({**live, "heartbeat": now - 300}))
        with StoreLock(store, heartbeat_interval=None) as lock:
            assert read_lock(str(store))["token"] == lock.token
    finally:
        sleeper.kill()
        sleeper.wait()


def test_takeover_rule_is_stated_once_in_the_docs_and_the_messages(tmp_path):
    rule = TAKEOVER_RULE.format(stale_after=STALE_AFTER_S)
    assert "120 s" in rule
    lines = (ROOT / "docs" / "cluster.md").read_text().splitlines()
    docs = " ".join(" ".join(ln.removeprefix(">") for ln in lines).split())  # quoted block
    assert " ".join(rule.split()) in docs, "docs/cluster.md must quote TAKEOVER_RULE"
    holder = _hold(tmp_path / "cube.zarr")
    try:
        with pytest.raises(StoreLockedError) as err:
            StoreLock(tmp_path / "cube.zarr", heartbeat_interval=None).acquire()
        assert rule in str(err.value) and "\n" not in str(err.value)
    finally:
        holder.communicate("\n", timeout=30)


def test_the_store_identity_is_its_real_path_or_normalized_url(tmp_path):
    real = tmp_path / "data" / "cube.zarr"
    real.parent.mkdir()
    alias = tmp_path / "alias.zarr"
    alias.symlink_to(real)
    assert store_identity(alias) == store_identity(tmp_path / "data" / ".." / "data" /
                                                   "cube.zarr") == os.path.realpath(real)
    with StoreLock(alias, heartbeat_interval=None) as lock:
        assert lock.url == os.path.realpath(real)
        assert read_lock(str(real))["store"] == os.path.realpath(real)
    assert store_identity("S3://farm/runs/x.zarr/") == store_identity("s3://farm/runs/x.zarr")
    assert lock_url("S3://farm/runs/x.zarr/") == "s3://farm/runs/x.zarr.farm-lock"


INTRUDER = {"token": "intruder", "pid": 4242, "host": "elsewhere.example", "user": "intruder",
            "pid_started": None}


def _intruder() -> dict:
    return {**INTRUDER, "created": time.time(), "heartbeat": time.time()}


def test_an_edited_record_stops_the_local_holder_and_is_left_in_place(tmp_path):
    store = tmp_path / "cube.zarr"
    a = StoreLock(store, heartbeat_interval=None).acquire()
    Path(lock_url(str(store))).write_text(json.dumps(_intruder()))
    with pytest.raises(StoreLockedError) as err:
        a.refresh()
    msg = str(err.value)
    assert msg.startswith(f"another writer took the store {store}: ") and "\n" not in msg
    assert "intruder@elsewhere.example pid 4242" in msg and a.lost
    with pytest.raises(StoreLockedError, match="another writer took the store"):
        a.check()  # the loss is kept: the run loop sees it without any I/O
    a.release()
    assert json.loads(Path(lock_url(str(store))).read_text())["token"] == "intruder"
    assert [oslock.is_held(p) for p in oslock.lock_files(str(store))] == [False, False]


HOLD_UNTIL_LOST = textwrap.dedent("""
    import sys, time
    from farm.store.lock import StoreLock
    lock = StoreLock(sys.argv[1], heartbeat_interval=0.05).acquire()
    print("locked", flush=True)
    deadline = time.monotonic() + 60
    while not lock.lost and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        lock.check()
    except Exception as exc:
        print(exc, flush=True)
    lock.release()
""")


def test_the_heartbeat_of_a_holder_process_notices_its_record_taken(tmp_path):
    store = tmp_path / "cube.zarr"
    holder = _python(HOLD_UNTIL_LOST, str(store))
    assert holder.stdout.readline().strip() == "locked"
    t0 = time.monotonic()
    Path(lock_url(str(store))).write_text(json.dumps(_intruder()))
    out, _ = holder.communicate(timeout=60)
    assert time.monotonic() - t0 < 10
    assert out.startswith(f"another writer took the store {store}: "), out
    assert "intruder@elsewhere.example pid 4242" in out
    assert json.loads(Path(lock_url(str(store))).read_text())["token"] == "intruder"


MALFORMED_RECORDS = {
    "garbage JSON": b"{not json",
    "a JSON list": b"[1, 2]",
    "pid not a number": {"pid": "abc"},
    "pid missing": {"pid": None},
    "heartbeat not a number": {"heartbeat": "yesterday"},
    "heartbeat NaN": {"heartbeat": float("nan")},
    "created missing": {"created": None},
    "created not a number": {"created": "2025-10-10"},
    "pid_started garbage": {"pid_started": "zz"},
}


def _malformed(kind: str) -> bytes:
    spec = MALFORMED_RECORDS[kind]
    if isinstance(spec, bytes):
        return spec
    now = time.time()
    info = {"token": "t", "pid": os.getpid(), "host": socket.gethostname(), "user": "u",
            "created": now, "heartbeat": now, "pid_started": process_start(os.getpid())}
    info.update(spec)
    return json.dumps({k: v for k, v in info.items() if v is not None}).encode()


@pytest.mark.parametrize("kind", sorted(MALFORMED_RECORDS))
def test_a_malformed_record_is_stale_with_a_message_not_a_crash(tmp_path, kind, caplog,
                                                                capsys):
    from farm.cli import main
    from farm.store.cube import create_cube

    design = grid_design()
    cube = create_cube(tmp_path / "c.zarr", design, cube_attrs(design))
    Path(lock_url(cube.url)).write_bytes(_malformed(kind))
    info = read_lock(cube.url)
    assert is_stale(info)
    assert main(["status", cube.url]) == 0  # farm status
    out = capsys.readouterr().out
    assert "lock:      malformed lock record (treated as stale)" in out, out
    with StoreLock(cube.url, heartbeat_interval=None) as lock:  # taken over, with a message
        assert read_lock(cube.url)["token"] == lock.token
    assert "malformed lock record (treated as stale)" in caplog.text
    # the same record beside a store whose OS lock is held: refused in one line
    holder = _hold(Path(cube.url))
    try:
        Path(lock_url(cube.url)).write_bytes(_malformed(kind))
        with pytest.raises(StoreLockedError) as err:
            StoreLock(cube.url, heartbeat_interval=None).acquire()
        assert "\n" not in str(err.value) and "locked by" in str(err.value)
        assert "malformed record" in store_summary_lock(cube.url)
    finally:
        holder.communicate("\n", timeout=30)


def store_summary_lock(url: str) -> str:
    from farm.store.status import store_summary

    return next(ln for ln in store_summary(url).splitlines() if ln.startswith("lock:"))


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
        with pytest.raises(StoreLockedError, match="another writer took the store"):
            b.refresh()
        b.release()  # leaves c's lease alone
        assert read_lock(url, opts)["token"] == c.token
        c.release()


@pytest.mark.slow
def test_object_store_lease_checks_its_owner_token():
    """A lease rewritten to another owner or deleted stops its holder (refresh, and the
    heartbeat thread within a beat); the release never deletes a lease that is not ours;
    malformed and old-heartbeat leases are taken over."""
    import fsspec

    with moto_s3() as opts:
        url = "s3://farm/runs/token-cube.zarr"
        fs = fsspec.filesystem("s3", **opts, skip_instance_cache=True)
        key = "farm/runs/token-cube.zarr.farm-lock"

        a = StoreLock(url, opts, heartbeat_interval=None).acquire()
        fs.pipe_file(key, json.dumps(_intruder()).encode())  # another writer took it
        with pytest.raises(StoreLockedError) as err:
            a.refresh()
        assert str(err.value).startswith(f"another writer took the store {url}: ")
        assert "intruder@elsewhere.example pid 4242" in str(err.value)
        a.release()
        assert read_lock(url, opts)["token"] == "intruder"  # not deleted: not ours
        fs.rm_file(key)

        b = StoreLock(url, opts, heartbeat_interval=None).acquire()
        fs.rm_file(key)  # broken by hand
        with pytest.raises(StoreLockedError, match="held by nobody: its lock record was deleted"):
            b.refresh()
        b.release()
        assert read_lock(url, opts) is None  # not written back

        c = StoreLock(url, opts, heartbeat_interval=0.05).acquire()
        fs.pipe_file(key, json.dumps(_intruder()).encode())
        deadline = time.monotonic() + 10
        while not c.lost and time.monotonic() < deadline:
            time.sleep(0.02)
        with pytest.raises(StoreLockedError, match="another writer took the store"):
            c.check()
        c.release()
        assert read_lock(url, opts)["token"] == "intruder"

        for kind in ("garbage JSON", "pid not a number", "heartbeat not a number"):
            fs.pipe_file(key, _malformed(kind))
            assert read_lock(url, opts) is not None and is_stale(read_lock(url, opts))
            with StoreLock(url, opts, heartbeat_interval=None) as d:
                assert read_lock(url, opts)["token"] == d.token
        old = time.time() - 300  # a live pid on this host, no pid_started, old heartbeat
        fs.pipe_file(key, json.dumps({"token": "old", "pid": os.getpid(), "created": old,
                                      "heartbeat": old, "host": socket.gethostname()}).encode())
        with StoreLock(url, opts, heartbeat_interval=None) as e:
            assert read_lock(url, opts)["token"] == e.token
