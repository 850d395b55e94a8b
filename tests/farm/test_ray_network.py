"""The farm's local Ray on the loopback address only, its processes gone after a run (even
after a SIGKILL of the driver), and no run that waits forever for CPUs no node has.

Every Ray here is real: a driver subprocess starts it exactly as `farm run` does
(farm.run.dispatch.start_ray) and runs a tiny task; the sockets are read from the
operating system (psutil) for the driver and every process it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from conftest import FARM_SMALL

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}
AGENTS = {"ray::DashboardAgent", "ray::RuntimeEnvAgent"}
ENV = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}  # a local Ray, always

# A farm driver: starts the local Ray as `farm run` does, runs a tiny task, says READY,
# then waits for its stdin to close and shuts Ray down.
DRIVER = """
import os, sys
import ray
from farm.run.dispatch import start_ray

start_ray(None, 2)

@ray.remote(num_cpus=1)
def pid():
    return os.getpid()

pids = ray.get([pid.remote() for _ in range(4)])
print("READY", len(set(pids)), flush=True)
sys.stdin.read()
ray.shutdown()
print("DOWN", flush=True)
"""


def _start_driver() -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", DRIVER], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=ENV)
    line = proc.stdout.readline()
    assert line.startswith("READY"), f"driver did not start Ray: {line!r}"
    return proc


def _ray_processes(driver: subprocess.Popen) -> list[psutil.Process]:
    """Every process the driver started (GCS, raylet, agents, workers, helpers)."""
    return psutil.Process(driver.pid).children(recursive=True)


def _listening(procs: list[psutil.Process]) -> list[tuple[str, int, str, int, str]]:
    """(name, pid, address, port, TCP/UDP) of every listening TCP socket and every bound
    UDP socket without a peer."""
    found = []
    for p in procs:
        try:
            name, conns = p.name(), p.net_connections(kind="inet")
        except psutil.Error:
            continue
        for c in conns:
            tcp = c.type == socket.SOCK_STREAM
            if (tcp and c.status == psutil.CONN_LISTEN) or (not tcp and not c.raddr):
                found.append((name, p.pid, c.laddr.ip, c.laddr.port, "TCP" if tcp else "UDP"))
    return found


def _kill_all(procs: list[psutil.Process]) -> None:
    for p in procs:
        try:
            p.kill()
        except psutil.Error:
            pass


@pytest.mark.timeout(240)
def test_local_ray_listens_on_loopback_only_and_is_gone_after_the_run():
    driver = _start_driver()
    procs: list[psutil.Process] = []
    try:
        time.sleep(1.0)  # let every worker and agent finish binding
        procs = _ray_processes(driver)
        names = {p.name() for p in procs if p.is_running()}
        assert {"gcs_server", "raylet"} | AGENTS <= names, names
        sockets = _listening([psutil.Process(driver.pid), *procs])
        assert len({s[1] for s in sockets}) >= 5, sockets  # driver, GCS, raylet, agents...
        offenders = [f"{n}[{pid}] {proto} {ip}:{port}" for n, pid, ip, port, proto in sockets
                     if ip not in LOOPBACK]
        assert not offenders, "Ray listens beyond 127.0.0.1: " + "; ".join(offenders)

        driver.stdin.close()  # the run ends: ray.shutdown()
        assert driver.stdout.readline().strip() == "DOWN"
        driver.wait(timeout=60)
        _, alive = psutil.wait_procs(procs, timeout=15)
        assert not alive, f"left running after the run: {[(p.pid, p.name()) for p in alive]}"
    finally:
        _kill_all(procs)
        if driver.poll() is None:
            driver.kill()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_next_run_reaps_what_a_sigkilled_driver_left():
    """A driver killed with SIGKILL leaves its two agents running for about a minute (they
    try to tell the dead GCS that the raylet died); the next local start kills them."""
    first = _start_driver()
    procs = _ray_processes(first)
    second = None
    try:
        agents = [p for p in procs if p.name() in AGENTS]
        assert {p.name() for p in agents} == AGENTS, [p.name() for p in procs]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        t0 = time.monotonic()
        second = _start_driver()  # the next run: start_ray reaps before ray.init
        _, alive = psutil.wait_procs(procs, timeout=5)
        assert not alive, (f"{time.monotonic() - t0:.0f} s after the SIGKILL still running: "
                           f"{[(p.pid, p.name()) for p in alive]}")
        second.stdin.close()
        second.wait(timeout=60)
    finally:
        _kill_all(procs)
        for d in (first, second):
            if d is not None and d.poll() is None:
                _kill_all(_ray_processes(d))
                d.kill()


def test_reaper_spares_live_drivers_and_reused_pids(tmp_path, monkeypatch):
    """Records of a dead driver: its processes are killed, unless the pid now belongs to
    another process (other start time). A live driver's record is left alone."""
    import tempfile

    from farm.run import raynet

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # records in tmp_path
    folder = raynet.records_dir()
    folder.mkdir()
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]

    def ident(proc: subprocess.Popen) -> list:
        p = psutil.Process(proc.pid)
        return [p.pid, p.create_time(), p.name()]

    dead = subprocess.Popen(sleeper)
    dead_ident = ident(dead)
    dead.kill()
    dead.wait()
    victim, reused, kept = (subprocess.Popen(sleeper) for _ in range(3))
    try:
        ids = {p.pid: ident(p) for p in (victim, reused, kept)}
        ids[reused.pid][1] -= 100.0  # recorded before: the pid was reused since
        me = psutil.Process()
        (folder / "dead.json").write_text(json.dumps(
            {"driver": dead_ident, "processes": [ids[victim.pid], ids[reused.pid]]}))
        (folder / "live.json").write_text(json.dumps(
            {"driver": [me.pid, me.create_time(), me.name()], "processes": [ids[kept.pid]]}))
        (folder / "broken.json").write_text("{")
        assert raynet.reap_stale_sessions() == 1
        victim.wait(timeout=10)  # gone (its status was already collected by the reaper)
        assert reused.poll() is None and kept.poll() is None
        assert sorted(p.name for p in folder.iterdir()) == ["live.json"]
    finally:
        for p in (victim, reused, kept):
            p.kill()
            p.wait()


def test_ray_private_loopback_switch_is_still_there():
    """raynet.loopback_only sets ray._private.ray_constants.ENABLE_RAY_CLUSTER (what
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 sets at import) so that ray.init keeps 127.0.0.1
    as the node's address. A ray release that drops the constant or rewrites the loopback
    address anyway fails here by name (and the socket test above fails too)."""
    code = (
        "import ray._private.ray_constants as c, ray._private.services as s\n"
        "from farm.run.raynet import loopback_only\n"
        "before = c.ENABLE_RAY_CLUSTER\n"
        "with loopback_only():\n"
        "    inside = s.resolve_ip_for_localhost('127.0.0.1')\n"
        "print(type(before).__name__, inside, c.ENABLE_RAY_CLUSTER is before)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["bool", "127.0.0.1", "True"], proc.stdout


# ---- resource requests that no node can meet -------------------------------------------
def _runtime(**kw):
    from farm.plan.plan import RuntimePlan

    base = dict(workers=0, block_cells=4, max_in_flight=0, retries=0, address=None,
                cpus_per_task=1)
    return RuntimePlan(**{**base, **kw})


def test_connected_ray_refuses_a_task_larger_than_every_node(ray_local):
    from farm.errors import UserError
    from farm.run.cluster import require_feasible

    largest = max(n["Resources"].get("CPU", 0) for n in ray_local.nodes() if n["Alive"])
    require_feasible(_runtime(cpus_per_task=int(largest), address="auto"))  # fits
    with pytest.raises(UserError) as err:
        require_feasible(_runtime(cpus_per_task=64, address="auto"))
    msg = str(err.value)
    assert "\n" not in msg and "runtime.cpus_per_task=64" in msg, msg
    assert f"at most {int(largest)}," in msg and "largest node" in msg, msg
    assert ray_local.is_initialized()  # not started by this run: left running


def test_local_run_refuses_before_ray_starts(tmp_path):
    """`farm run runtime.cpus_per_task=64` on this machine: exit 2 at once, one line naming
    the key, the value and the CPUs there are; no store written, no Ray started."""
    url = tmp_path / "big.zarr"
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", "import sys; from farm.cli import main; "
                           "sys.exit(main())", "run", *FARM_SMALL, f"store.url={url}",
                           "runtime.cpus_per_task=64", "runtime.workers=2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=ENV)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "runtime.cpus_per_task=64" in lines[0] and "at most 2," in lines[0], lines[0]
    assert not url.exists()
    assert time.monotonic() - t0 < 60
