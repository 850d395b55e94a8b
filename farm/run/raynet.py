"""The farm's local Ray: every process bound to 127.0.0.1, leftovers of dead drivers reaped.

**Loopback only.** Ray 2.60 binds its servers (GCS, raylet, object manager, every
worker's and the driver's gRPC server, the dashboard agent, the runtime-env agent) to
the node's IP address, but ``ray.init(_node_ip_address="127.0.0.1")`` replaces a
loopback address with the machine's routable one, so all of them listened on every
interface or on the host's address. Ray keeps the loopback address only with its
multi-node mode off, the documented switch ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``
(made for laptops), which Ray reads once, when it is imported. :func:`loopback_only`
therefore sets the module constant that variable fills, while ``ray.init`` starts the
node, and restores it: the farm's one use of it, pinned by
tests/farm/test_ray_network.py (``test_ray_private_loopback_switch_is_still_there``).
The dashboard is off (``include_dashboard=False``); the dashboard agent and the
runtime-env agent cannot be turned off (the raylet starts them; a farm run uses a
runtime environment) and bind 127.0.0.1 like the rest.

**A new Ray, never a running one.** ``ray.init()`` without an address joins a cluster it
finds (``$RAY_ADDRESS``, or the last ``ray start --head`` recorded in Ray's temp dir)
and then refuses ``num_cpus``; :func:`start_local` passes ``address="local"``, so a local
run starts its own node beside any other Ray on the machine (``runtime.address=auto``
joins one instead). The start (:func:`farm.run.dispatch.start_ray`) also sets Ray's
driver logging to ERROR: its warnings, such as the note that token authentication is on
(Ray's default for a new node), stay out of the output; errors still show.

**Leftovers.** A driver killed with SIGKILL takes its GCS, raylet and workers with it
(Linux parent-death signals), but the two agents then try for a minute to report the
raylet's death to the dead GCS (a 60 s timeout fixed in Ray). :func:`record_session`
writes, per local session, the driver's and its Ray processes' ids (pid and start time)
to :func:`records_dir`; :func:`reap_stale_sessions`, run by the next local start, kills
the processes of every recorded session whose driver is gone. A live driver's session
is never touched, and a pid reused by another program is told apart by its start time.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

__all__ = ["LOOPBACK", "loopback_only", "reap_stale_sessions", "record_session",
           "records_dir", "start_local"]

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_START_TOLERANCE_S = 0.05  # process start times compared to within this (seconds)


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """While inside, a Ray node started by ``ray.init(_node_ip_address="127.0.0.1")``
    keeps 127.0.0.1 as its address (Ray's multi-node mode off, as with
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``). Raises AttributeError if Ray dropped it."""
    import ray._private.ray_constants as constants

    saved = constants.ENABLE_RAY_CLUSTER  # AttributeError: the switch is gone
    constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        constants.ENABLE_RAY_CLUSTER = saved


def start_local(num_cpus: int, **kwargs: Any) -> None:
    """Start a new local Ray node of ``num_cpus`` CPUs on 127.0.0.1 (never joining a running
    cluster), without the dashboard, and record its processes (forgotten at a normal
    exit). ``kwargs`` go to ``ray.init``."""
    import atexit

    import ray

    # no dashboard, hence nothing reads Ray's metrics: not collecting them saves ~1 %
    # of a core (Ray's idle processes take ~4 % of one core, BENCHMARKS.md)
    with loopback_only():
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False,
                 _node_ip_address=LOOPBACK,
                 _system_config={"enable_metrics_collection": False}, **kwargs)
    atexit.register(forget_session, record_session())


def records_dir() -> Path:
    """Where local sessions are recorded: ``<temp dir>/farm-ray-<uid>`` (per user)."""
    return Path(tempfile.gettempdir()) / f"farm-ray-{os.getuid()}"


def _ident(proc: psutil.Process) -> list[Any]:
    """``[pid, start time (s since the epoch), name]`` of a process."""
    return [proc.pid, proc.create_time(), proc.name()]


def _is_ray_process(proc: psutil.Process, ray_dir: str) -> bool:
    """A process Ray started: gcs_server, raylet, ``ray::...`` (agents, workers) or a
    Python script of the ray package (monitor, log monitor, dashboard head)."""
    name = proc.name()
    return (name in ("gcs_server", "raylet") or name.startswith("ray::")
            or any(ray_dir in arg for arg in proc.cmdline()))


def _record_path(driver: list[Any]) -> Path:
    return records_dir() / f"{driver[0]}-{int(driver[1] * 1000)}.json"


def record_session() -> Path:
    """Record this driver and the Ray processes it started (its descendants); returns
    the record's path. Call once ``ray.init`` has started a local node."""
    import ray

    ray_dir = os.path.dirname(ray.__file__)
    me = psutil.Process()
    procs = []
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if _is_ray_process(child, ray_dir):
                procs.append(_ident(child))
    driver = _ident(me)
    path = _record_path(driver)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"driver": driver, "processes": procs}))
    tmp.replace(path)
    log.debug("recorded local Ray session in %s (%d processes)", path, len(procs))
    return path


def _alive(ident: list[Any]) -> psutil.Process | None:
    """The process ``ident`` names if it is still running (same pid, start time, name)."""
    pid, started, name = ident
    try:
        proc = psutil.Process(int(pid))
        if (abs(proc.create_time() - float(started)) > _START_TOLERANCE_S
                or proc.name() != name or proc.status() == psutil.STATUS_ZOMBIE):
            return None
        return proc
    except (psutil.Error, ValueError, TypeError):
        return None


def reap_stale_sessions(wait_s: float = 5.0) -> int:
    """Kill (SIGKILL) the leftover processes of recorded sessions whose driver is gone and
    delete their records; sessions of live drivers are left alone. Waits up to
    ``wait_s`` seconds for the killed processes to end. Returns how many were killed."""
    folder = records_dir()
    if not folder.is_dir():
        return 0
    victims: list[psutil.Process] = []
    for path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(path.read_text())
            driver, idents = record["driver"], record["processes"]
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("removing an unreadable Ray session record %s", path)
            path.unlink(missing_ok=True)
            continue
        if _alive(driver) is not None:
            continue
        stale = [p for p in map(_alive, idents) if p is not None]
        for proc in stale:
            with contextlib.suppress(psutil.Error):
                proc.kill()
                victims.append(proc)
        if stale:
            log.info("killed %d leftover Ray process(es) of dead driver %s: %s", len(stale),
                     driver[0], ", ".join(f"{p.pid}" for p in stale))
        path.unlink(missing_ok=True)
    if victims:
        psutil.wait_procs(victims, timeout=wait_s)
    return len(victims)


def forget_session(path: Path) -> None:
    """Delete this driver's own record (at exit: its session is over)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
