"""Fixtures shared across the test tree: one local Ray for the whole session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[str]:
    """A local Ray (2 CPUs) started once in this process; yields its GCS address.

    Ray's start-up (GCS, raylet, agents) takes 15-25 s on a busy 2-core machine, far longer
    than the work the tests give it. Tests running Ray in this process use this one; tests
    running Ray in a child process (the training pipeline's train-models step) pass its
    address as RAY_ADDRESS, so the child connects to it, as a component connects to a KubeRay
    head in the cluster, instead of starting a Ray of its own.
    """
    ray = pytest.importorskip("ray")
    from assay.parallel import init_ray

    started_here = not ray.is_initialized()
    init_ray(workers=2)
    yield str(ray.get_runtime_context().gcs_address)
    if started_here:
        ray.shutdown()
