"""Ray start-up shared by every parallel step: a cluster when RAY_ADDRESS is set, else local."""

from __future__ import annotations

import os
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
        ray.init(address=address, **common)
    else:
        ray.init(
            num_cpus=workers or os.cpu_count() or 1,
            include_dashboard=False,
            configure_logging=False,
            **common,
        )
    return ray
