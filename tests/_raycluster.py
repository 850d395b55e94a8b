"""A real two-node Ray cluster on 127.0.0.1, started with ``ray start`` (for tests).

Both nodes run on this host under one private ``--temp-dir`` and bind only to the
loopback address. Two Ray quirks are handled so that nothing listens on another
interface:

* ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` in the cluster's environment makes every
  Ray process (head, raylets, the job's driver) resolve "this node" to 127.0.0.1
  instead of the machine's routable address;
* the worker node's ``ray start`` runs Ray's own CLI (``ray.scripts.scripts.main``)
  with two lookups patched: the multi-node guard that the variable above would trip,
  and the rewrite of ``127.0.0.1`` to the routable address.

Teardown terminates, by process id, exactly the processes whose command line names
this cluster's temp dir (``ray stop --force`` would kill every Ray on the machine,
including other test sessions'), then SIGKILLs what is left.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}

_WORKER_START = (
    "import sys\n"
    "import ray._private.ray_constants as rc\n"
    "import ray._private.services as services\n"
    "rc.ENABLE_RAY_CLUSTER = True\n"
    "services.resolve_ip_for_localhost = lambda host: '127.0.0.1' "
    "if services.is_localhost(host) else host\n"
    "from ray.scripts.scripts import main\n"
    "sys.argv = ['ray', *sys.argv[1:]]\n"
    "sys.exit(main())\n"
)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class LoopbackCluster:
    temp_dir: str
    gcs_port: int
    dashboard_port: int
    env: dict[str, str]
    logs: list[Path] = field(default_factory=list)

    @property
    def gcs_address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def processes(self) -> list[psutil.Process]:
        out = []
        for p in psutil.process_iter(["cmdline"]):
            try:
                if any(self.temp_dir in arg for arg in (p.info["cmdline"] or [])):
                    out.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out

    def listening_addresses(self) -> set[str]:
        ips = set()
        for p in self.processes():
            try:
                conns = p.net_connections(kind="inet")
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            ips |= {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN}
        return ips

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in self.logs if p.exists())

    def stop(self) -> None:
        procs = self.processes()
        for p in procs:
            try:
                p.send_signal(signal.SIGTERM)
            except psutil.NoSuchProcess:
                pass
        _, alive = psutil.wait_procs(procs, timeout=10)
        for p in alive:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=5)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _ray_start(args: list[str], env: dict[str, str], log: Path, *, worker: bool) -> None:
    cmd = ([sys.executable, "-c", _WORKER_START, "start", *args] if worker
           else [str(VENV_BIN / "ray"), "start", *args])
    # Output to a file: ray start leaves daemons holding its stdout, a pipe would never close.
    with log.open("w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, timeout=180, cwd=REPO)
    if proc.returncode != 0:
        raise RuntimeError(f"ray start failed ({proc.returncode}):\n"
                           f"{log.read_text(errors='replace')[-4000:]}")


def _cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"))}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",  # `farm` for the job
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": secrets.token_hex(32),
        "RAY_DEDUP_LOGS": "0",
    })
    return env


def start_head(cpus: int = 1, *, temp_dir: str | None = None,
               dashboard: bool = True) -> LoopbackCluster:
    """A head node alone (`ray start --head`) on 127.0.0.1 with token auth, its own temp dir
    (``temp_dir``, else a new one; it records itself there as the machine's last
    cluster, as `ray start` does in /tmp/ray) and free ports; call ``.stop()`` in a
    finally."""
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: sockets
    os.makedirs(temp_dir, exist_ok=True)
    gcs, dash, client, agent = free_ports(4)
    cluster = LoopbackCluster(temp_dir, gcs, dash, _cluster_env())
    log = Path(temp_dir) / "start-head.log"
    cluster.logs.append(log)
    try:
        _ray_start(["--head", "--node-ip-address=127.0.0.1", f"--port={gcs}",
                    f"--include-dashboard={str(dashboard).lower()}",
                    "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                    f"--ray-client-server-port={client}",
                    f"--dashboard-agent-listen-port={agent}", f"--temp-dir={temp_dir}",
                    f"--num-cpus={cpus}", "--disable-usage-stats"],
                   cluster.env, log, worker=False)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def start_cluster(cpus_per_node: int = 1) -> LoopbackCluster:
    """Head + one worker node on 127.0.0.1 with token auth; call ``.stop()`` in a finally."""
    cluster = start_head(cpus_per_node)
    (agent_worker,) = free_ports(1)
    try:
        log = Path(cluster.temp_dir) / "start-worker.log"
        cluster.logs.append(log)
        _ray_start([f"--address={cluster.gcs_address}", "--node-ip-address=127.0.0.1",
                    f"--dashboard-agent-listen-port={agent_worker}",
                    f"--temp-dir={cluster.temp_dir}", f"--num-cpus={cpus_per_node}",
                    "--disable-usage-stats"],
                   cluster.env, log, worker=True)
        _wait_for_nodes(cluster, 2)
    except BaseException:
        cluster.stop()
        raise
    return cluster


_COUNT_NODES = (
    "import ray, sys\n"
    "ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False)\n"
    "print(sum(1 for n in ray.nodes() if n['Alive']))\n"
)


def _wait_for_nodes(cluster: LoopbackCluster, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        proc = subprocess.run([sys.executable, "-c", _COUNT_NODES, cluster.gcs_address],
                              env=cluster.env, capture_output=True, text=True, timeout=60)
        last = proc.stdout.strip() + proc.stderr[-500:]
        if proc.returncode == 0 and proc.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        time.sleep(2)
    raise RuntimeError(f"cluster did not reach {n} nodes: {last}")


_TASK_NODES = (
    "import json, sys\n"
    "from ray.util.state import list_tasks\n"
    "tasks = list_tasks(address=sys.argv[1], filters=[('type', '=', 'NORMAL_TASK')],\n"
    "                   limit=10000, raise_on_missing_output=False)\n"
    "print(json.dumps([[t.name, t.node_id, t.state] for t in tasks]))\n"
)


def task_nodes(cluster: LoopbackCluster) -> list[tuple[str, str, str]]:
    """(name, node id, state) of every normal task the cluster ran (Ray state API)."""
    import json

    proc = subprocess.run([sys.executable, "-c", _TASK_NODES, cluster.dashboard_url],
                          env=cluster.env, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"state API failed: {proc.stderr[-2000:]}")
    return [tuple(t) for t in json.loads(proc.stdout.strip().splitlines()[-1])]
