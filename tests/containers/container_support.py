"""Helpers of the container tests: the engine (podman or docker), the images under test, and
containers started for a test and always removed after it.

The tests need an engine and the images built by ``make image``. Without them each test skips
with one line that says how to run them; with ``ASSAY_REQUIRE_CONTAINERS=1`` (CI) that is a
failure instead, so a CI machine cannot go green by skipping them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

import pytest

from assay.config import CLASSIFIER_IMAGE as DEFAULT_CLASSIFIER_IMAGE
from assay.config import PIPELINE_IMAGE

CLASSIFIER_IMAGE = os.environ.get("ASSAY_TEST_CLASSIFIER_IMAGE", DEFAULT_CLASSIFIER_IMAGE)
"""The classifier server's image (images/Dockerfile, target ``classifier``)."""
IMAGE = os.environ.get("ASSAY_TEST_IMAGE", PIPELINE_IMAGE)
"""The pipeline image (target ``pipeline``): components, KubeRay, the bias scorer."""
HOW_TO_RUN = "run `make image && make test-image` (needs podman or docker)"
REQUIRE_ENV = "ASSAY_REQUIRE_CONTAINERS"


def unavailable(reason: str) -> NoReturn:
    """Skip the test (one line: why, and how to run it); fail instead when CI requires it."""
    message = f"container tests: {reason}; {HOW_TO_RUN}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


@dataclass(frozen=True)
class Engine:
    """A container engine's CLI: podman or docker (the same commands for what the tests use)."""

    binary: str

    @property
    def name(self) -> str:
        return os.path.basename(self.binary)

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.binary, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{self.name} {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
            )
        return result

    def has_image(self, ref: str) -> bool:
        return self.run("image", "inspect", ref, check=False).returncode == 0

    def inspect_image(self, ref: str) -> dict[str, Any]:
        inspected: list[dict[str, Any]] = json.loads(self.run("image", "inspect", ref).stdout)
        return inspected[0]

    def output(self, image: str, *command: str, options: Sequence[str] = ()) -> str:
        """stdout of ``command`` run to completion in a fresh container of ``image``."""
        return self.run("run", "--rm", *options, image, *command, timeout=300).stdout


def find_engine() -> Engine | None:
    """podman, else docker (``ASSAY_CONTAINER_ENGINE`` names one), if its service answers."""
    wanted = os.environ.get("ASSAY_CONTAINER_ENGINE")
    for name in [wanted] if wanted else ["podman", "docker"]:
        binary = shutil.which(name)
        if binary is None:
            continue
        probe = subprocess.run(
            [binary, "info", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if probe.returncode == 0:
            return Engine(binary)
    return None


@dataclass(frozen=True)
class Running:
    """A detached container and the host ports its container ports are published on."""

    engine: Engine
    container_id: str

    def host_port(self, container_port: int) -> int:
        mapping = self.engine.run("port", self.container_id, f"{container_port}/tcp").stdout
        return int(mapping.split()[0].rsplit(":", 1)[1])

    def logs(self) -> str:
        result = self.engine.run("logs", self.container_id, check=False)
        return result.stdout + result.stderr

    def exec(self, *command: str) -> str:
        return self.engine.run("exec", self.container_id, *command).stdout

    def is_running(self) -> bool:
        state = self.engine.run(
            "inspect", "--format", "{{.State.Running}}", self.container_id, check=False
        )
        return state.stdout.strip() == "true"


@contextmanager
def running(
    engine: Engine,
    image: str,
    command: Sequence[str] = (),
    *,
    options: Sequence[str] = (),
    ports: Sequence[int] = (),
) -> Iterator[Running]:
    """Run ``image`` detached with ``options`` (each of ``ports`` published on an ephemeral
    127.0.0.1 port) and remove the container afterwards, whatever happened."""
    publish = [arg for port in ports for arg in ("-p", f"127.0.0.1::{port}")]
    started = engine.run("run", "-d", *publish, *options, image, *command, timeout=120)
    container = Running(engine, started.stdout.strip().splitlines()[-1])
    try:
        yield container
    finally:
        engine.run("rm", "-f", "-t", "2", container.container_id, check=False, timeout=60)


def wait_until_ready(container: Running, url: str, timeout: float = 60) -> float:
    """Seconds until ``url`` answers 200; fails with the container's logs if it never does."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return time.monotonic() - start
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if not container.is_running():
            break
        time.sleep(0.05)
    raise AssertionError(f"{url} never answered 200; container logs:\n{container.logs()[-4000:]}")
