"""``runtime=cluster``: what the connected Ray cluster offers, and what the farm asks of it.

Used by the driver after ``ray.init(address=...)``:

    info = cluster_info()                     # nodes, hosts, CPUs (alive nodes only)
    log.info("%s", info.summary())            # "using 3 nodes on 3 hosts, 48 CPUs"
    plan = recommend(info, cpus_per_task=cfg.runtime.cpus_per_task,
                     max_in_flight=cfg.runtime.max_in_flight)
    require_shared_store(cfg.store.url, info.n_nodes, n_hosts=info.n_hosts,
                         shared_fs=shared_fs_flag(cfg))

A cube on a local path is only usable when every node sees the same directory:
nodes on one host (tests, a big workstation) or a shared filesystem (NFS, Lustre,
EFS) that the user vouches for. Otherwise blocks written on worker B land on B's
disk and the driver's cube stays empty; :func:`require_shared_store` refuses that.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from farm.store.storage import StoreRefusedError, is_remote, normalize_url

__all__ = [
    "ClusterInfo",
    "LocalStoreOnClusterError",
    "Plan",
    "cluster_info",
    "info_from",
    "recommend",
    "require_shared_store",
    "shared_fs_flag",
]

log = logging.getLogger(__name__)


class LocalStoreOnClusterError(StoreRefusedError, ValueError):
    """A local store path on a multi-host cluster without a shared filesystem (user error)."""


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


@dataclass(frozen=True)
class Plan:
    """What the driver should ask for: CPUs per block task, cap on tasks in flight."""

    cpus_per_task: float
    max_in_flight: int
    slots: int  # block tasks that can run at once (CPUs // cpus_per_task)

    def summary(self) -> str:
        return (f"{self.slots} concurrent block tasks ({_fmt(self.cpus_per_task)} CPU each), "
                f"at most {self.max_in_flight} in flight")


def recommend(
    info: ClusterInfo, *, cpus_per_task: float = 1.0, max_in_flight: int = 0,
    min_in_flight: int = 2,
) -> Plan:
    """In-flight cap and CPUs per task for the cluster.

    ``cpus_per_task`` is kept but clipped to the largest node's CPUs (a task that fits
    no node would wait forever). ``max_in_flight`` 0 means 2 x concurrent slots, so
    every worker has a task queued behind the running one; at least ``min_in_flight``,
    so an autoscaling cluster that starts with no worker CPUs still sees demand.
    """
    if cpus_per_task <= 0:
        raise ValueError(f"cpus_per_task must be > 0, got {cpus_per_task}")
    biggest = max(info.cpus_per_node.values(), default=0.0)
    per_task = float(cpus_per_task)
    if 0 < biggest < per_task:
        log.warning("cpus_per_task=%s exceeds the largest node (%s CPUs); using %s",
                    _fmt(per_task), _fmt(biggest), _fmt(biggest))
        per_task = biggest
    slots = sum(math.floor(c / per_task + 1e-9) for c in info.cpus_per_node.values())
    if slots == 0 and info.cpus > 0:
        slots = max(1, math.floor(info.cpus / per_task + 1e-9))
    cap = int(max_in_flight) if max_in_flight > 0 else max(min_in_flight, 2 * slots)
    return Plan(per_task, cap, slots)


def shared_fs_flag(cfg: Any) -> bool:
    """``cfg.store.shared_fs`` when the config has it, else False."""
    store = getattr(cfg, "store", None)
    try:
        return bool(store.get("shared_fs", False)) if store is not None else False
    except AttributeError:
        return bool(getattr(store, "shared_fs", False))


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
        f"filesystem (NFS, EFS, Lustre), say so with {_shared_fs_hint()}"
    )


def _shared_fs_hint() -> str:
    """The override that vouches for a shared filesystem, if the schema has one."""
    from farm.plan.schema import StoreConfig

    if "shared_fs" in getattr(StoreConfig, "__dataclass_fields__", {}):
        return "store.shared_fs=true"
    return "the shared_fs option of the farm's runtime"
