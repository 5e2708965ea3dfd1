"""Fixtures for pipeline tests: WDBC written as a CSV in the documented input format; for the
container tests, podman's Docker-compatible API and the image to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from _processes import stop_process

from assay.config import PIPELINE_IMAGE


def write_wdbc_csv(path: Path) -> Path:
    """WDBC as a user would supply it: an id column, shuffled feature columns, M/B labels."""
    import numpy as np

    from assay.data.wdbc import FEATURE_NAMES, load_dataset

    ds = load_dataset()
    frame = ds.X.copy()
    frame.insert(0, "id", np.arange(1000, 1000 + len(frame)))
    frame["diagnosis"] = np.where(ds.y.to_numpy() == 1, "M", "B")
    columns = ["id", "diagnosis", *reversed(FEATURE_NAMES)]
    frame[columns].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def wdbc_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_wdbc_csv(tmp_path_factory.mktemp("data") / "wdbc.csv")


# ---- containers (--runner docker): the engine and the image every container test uses ----

DEFAULT_TEST_IMAGE = PIPELINE_IMAGE


@pytest.fixture(scope="session")
def container_image() -> str:
    """The one image the container tests run: ASSAY_TEST_IMAGE, else the project's tag
    (`make image`)."""
    return os.environ.get("ASSAY_TEST_IMAGE", DEFAULT_TEST_IMAGE)


@pytest.fixture(scope="session")
def docker_host(tmp_path_factory: pytest.TempPathFactory, container_image: str) -> Iterator[str]:
    """DOCKER_HOST of podman's Docker-compatible API, served by a `podman system service`
    started here on a socket of its own and stopped at the end of the session. Skips (with how
    to run them) when podman or the image is missing."""
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("no podman on PATH: container tests skipped (install podman, `make image`)")
    folder = tmp_path_factory.mktemp("podman")
    socket_path = folder / "podman.sock"
    with (folder / "service.log").open("w") as log:
        service = subprocess.Popen(
            [podman, "system", "service", "--time=0", f"unix://{socket_path}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"unix://{socket_path}"
    try:
        _wait_for_engine(url, service)
        if subprocess.run([podman, "image", "exists", container_image]).returncode != 0:
            pytest.skip(f"image {container_image} not built: `make image` or set ASSAY_TEST_IMAGE")
        yield url
    finally:
        stop_process(service, grace_s=30)


def _wait_for_engine(url: str, service: subprocess.Popen[bytes]) -> None:
    import docker

    deadline = time.monotonic() + 60
    while True:
        try:
            client = docker.DockerClient(base_url=url, timeout=10)
            client.ping()
            client.close()
            return
        except Exception:
            if service.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def docker_env(docker_host: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """DOCKER_HOST set for this test's process (the docker runner reads it)."""
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    return docker_host
