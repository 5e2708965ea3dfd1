"""Ray start-up shared by every parallel step (a cluster when RAY_ADDRESS is set, else local)
and the placement of actor pools over a cluster's nodes."""

from __future__ import annotations

import os
import time
from typing import Any


def init_ray(workers: int | None = None, address: str | None = None) -> Any:
    """Connect to Ray once per process and return the ``ray`` module.

    ``address`` (or RAY_ADDRESS) selects a running cluster, e.g. a KubeRay head. Otherwise a
    local Ray starts with ``workers`` CPUs (default: all cores). Calling again is a no-op.
    """
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    common: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
    if address:
        _connect(ray, address, common)
    else:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            configure_logging=False,
            **common,
        )
    return ray


CLIENT_CONNECT_ATTEMPTS = 3


def _connect(ray: Any, address: str, common: dict[str, Any]) -> None:
    """Join a running cluster. A Ray Client address (``ray://``, KubeRay's) is tried again when
    the connection fails: the head's client server starts a server process per driver, which a
    busy head may not get up in time ("Initialization failure from server", "Starting Ray client
    server failed": ConnectionError or RuntimeError)."""
    for attempt in range(1, CLIENT_CONNECT_ATTEMPTS + 1):
        try:
            ray.init(address=address, **common)
            return
        except (ConnectionError, RuntimeError):
            if not address.startswith("ray://") or attempt == CLIENT_CONNECT_ATTEMPTS:
                raise
            ray.shutdown()
            time.sleep(2.0 * attempt)


def start_spread(ray: Any, actor_cls: Any, count: int, *args: Any) -> list[Any]:
    """``count`` actors of ``actor_cls`` (a ``ray.remote`` class, built with ``args``) placed
    round-robin over the alive nodes that have CPUs, so a pool of I/O actors (0 CPUs each, which
    Ray would pack onto the driver's node) uses every worker node of a cluster. The affinity is
    strict: a soft one falls back to the driver's node whenever the driver's raylet has not yet
    seen the other node's resources, which is common right after a node joins. One such node
    (a local Ray): no preference."""
    nodes = sorted(
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0
    )
    if len(nodes) < 2:
        return [actor_cls.remote(*args) for _ in range(count)]
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return [
        actor_cls.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(nodes[i % len(nodes)], soft=False)
        ).remote(*args)
        for i in range(count)
    ]
