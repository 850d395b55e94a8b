"""``runtime=cluster``: what the connected Ray cluster offers, and what the farm asks of it.

Used by the driver after ``ray.init(address=...)``:

    info = cluster_info()                     # nodes, hosts, CPUs (alive nodes only)
    log.info("%s", info.summary())            # "using 3 nodes on 3 hosts, 48 CPUs"
    plan = recommend(info, cpus_per_task=cfg.runtime.cpus_per_task,
                     max_in_flight=cfg.runtime.max_in_flight)
    require_shared_store(cfg.store.url, info.n_nodes, n_hosts=info.n_hosts,
                         shared_fs=shared_fs_flag(cfg))

A task that no node can hold waits forever (Ray's autoscaler only says, every 35 s,
that it cannot fulfil the request): :func:`require_feasible` refuses it before anything
is dispatched, against the nodes of a connected Ray, or for a local run before Ray starts,
against the CPUs the local node will get (``runtime.workers``, else the machine's cores).

A cube on a local path is only usable when every node sees the same directory:
nodes on one host (tests, a big workstation) or a shared filesystem (NFS, Lustre,
EFS) that the user vouches for. Otherwise blocks written on worker B land on B's
disk and the driver's cube stays empty; :func:`require_shared_store` refuses that.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from farm.errors import ConfigError
from farm.plan.plan import RuntimePlan
from farm.store.storage import StoreRefusedError, is_remote, normalize_url

__all__ = [
    "ClusterInfo",
    "LocalStoreOnClusterError",
    "UnmeetableRequestError",
    "cluster_info",
    "info_from",
    "require_feasible",
    "require_shared_store",
]

log = logging.getLogger(__name__)


class LocalStoreOnClusterError(StoreRefusedError, ValueError):
    """A local store path on a multi-host cluster without a shared filesystem (user error)."""


class UnmeetableRequestError(ConfigError):
    """A resource request per task that no node can meet (user error: it would wait forever)."""


@dataclass(frozen=True)
class ClusterInfo:
    """Alive nodes of the connected Ray cluster and its CPU total."""

    node_ids: tuple[str, ...]
    hosts: tuple[str, ...]  # distinct node IP addresses
    cpus: float  # ray.cluster_resources()["CPU"]
    cpus_per_node: Mapping[str, float]

    @property
    def n_nodes(self) -> int:
        return len(self.node_ids)

    @property
    def n_hosts(self) -> int:
        return len(self.hosts)

    def summary(self) -> str:
        """One line, e.g. ``using 2 nodes on 1 host, 2 CPUs``."""
        nodes = f"{self.n_nodes} node{'s' if self.n_nodes != 1 else ''}"
        hosts = f"{self.n_hosts} host{'s' if self.n_hosts != 1 else ''}"
        return f"using {nodes} on {hosts}, {_fmt(self.cpus)} CPUs"


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def info_from(nodes: Iterable[Mapping[str, Any]], resources: Mapping[str, float]) -> ClusterInfo:
    """:class:`ClusterInfo` from ``ray.nodes()`` and ``ray.cluster_resources()`` output."""
    alive = [n for n in nodes if n.get("Alive", n.get("alive", False))]
    ids = tuple(str(n.get("NodeID", "")) for n in alive)
    hosts = tuple(sorted({str(n.get("NodeManagerAddress", "")) for n in alive}))
    per_node = {str(n.get("NodeID", "")): float(n.get("Resources", {}).get("CPU", 0.0))
                for n in alive}
    return ClusterInfo(ids, hosts, float(resources.get("CPU", 0.0)), per_node)


def cluster_info() -> ClusterInfo:
    """The connected cluster (``ray.init`` must have run)."""
    import ray

    info = info_from(ray.nodes(), ray.cluster_resources())
    log.debug("cluster: %s (per node %s)", info.summary(), dict(info.cpus_per_node))
    return info


def require_shared_store(
    url: str, n_nodes: int, *, n_hosts: int | None = None, shared_fs: bool = False
) -> None:
    """Refuse a local store path that the cluster's nodes cannot all see.

    Object stores (``s3://``, ``gs://``, ...) always pass. A local path passes on one
    node, on several nodes of one host (``n_hosts`` == 1), or when ``shared_fs`` says
    the path is on a filesystem every node mounts (NFS, EFS, Lustre). Otherwise raises
    :class:`LocalStoreOnClusterError` (a ``ValueError``) explaining the alternatives.
    """
    if is_remote(url):
        return
    hosts = n_nodes if n_hosts is None else n_hosts
    if n_nodes <= 1 or hosts <= 1 or shared_fs:
        if shared_fs and hosts > 1:
            log.info("store %s: trusting that all %d hosts share this filesystem",
                     url, hosts)
        return
    raise LocalStoreOnClusterError(
        f"store.url={normalize_url(url)} is a local path, but the Ray cluster has {n_nodes} "
        f"nodes on {hosts} hosts: blocks written on other hosts would not reach this cube. "
        "Use an object store (store.url=s3://BUCKET/PREFIX/NAME.zarr, store.endpoint_url=... "
        "for S3-compatible services) or, if every node mounts this path from a shared "
        "filesystem (NFS, EFS, Lustre), say so with store.shared_fs=true"
    )


def require_feasible(runtime: RuntimePlan, *, started_here: bool = False) -> None:
    """Refuse ``runtime.cpus_per_task`` above the CPUs of the largest node.

    With Ray connected (``ray.is_initialized()``) the alive nodes count; else, for a local
    run, the CPUs its node will get (``runtime.workers``, else ``os.cpu_count()``); an
    address not yet connected, or a cluster without any CPU yet (an autoscaler may add
    workers), is not checked. Raises :class:`UnmeetableRequestError` (one
    line: the key, the value, the largest node's CPUs), after ``ray.shutdown()`` when Ray
    was started or connected by this run (``started_here``).
    """
    import ray

    if ray.is_initialized():
        largest = max(cluster_info().cpus_per_node.values(), default=0.0)
        where = "the CPUs of the cluster's largest node"
        if not largest:  # no worker yet: an autoscaler may add some
            log.info("no node with CPUs yet: runtime.cpus_per_task not checked")
            return
    elif not runtime.address:
        largest = float(runtime.workers or os.cpu_count() or 1)
        where = ("runtime.workers, the CPUs of the local Ray node" if runtime.workers
                 else "the CPUs of this machine (the local Ray node)")
    else:
        return
    if runtime.cpus_per_task <= largest:
        return
    if started_here:
        ray.shutdown()
    raise UnmeetableRequestError(
        "runtime.cpus_per_task", runtime.cpus_per_task,
        f"at most {_fmt(largest)}, {where}; a block task that no node can hold "
        "would wait forever")
