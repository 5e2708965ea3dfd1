"""Joining a Ray cluster by a Ray Client address survives a first refused connection (a busy
KubeRay head, or the docker runner's head container, may not start the client's server process
in time). A stand-in for the ``ray`` module records the calls: no cluster runs here."""

from __future__ import annotations

from typing import Any

import pytest

from assay import parallel


class FakeRay:
    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionAbortedError("Initialization failure from server:")
        self.calls: list[str] = []

    def init(self, address: str, **_: Any) -> None:
        self.calls.append(f"init {address}")
        if self.failures:
            self.failures -= 1
            raise self.error

    def shutdown(self) -> None:
        self.calls.append("shutdown")


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.time, "sleep", lambda _: None)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionAbortedError("Initialization failure from server:"),
        RuntimeError("Starting Ray client server failed. See ray_client_server_23000.err"),
    ],
)
def test_a_ray_client_address_is_tried_again_after_a_refused_connection(error: Exception) -> None:
    ray = FakeRay(failures=2, error=error)
    parallel._connect(ray, "ray://head:10001", {})
    assert ray.calls == ["init ray://head:10001", "shutdown"] * 2 + ["init ray://head:10001"]


def test_it_gives_up_after_the_last_attempt() -> None:
    ray = FakeRay(failures=parallel.CLIENT_CONNECT_ATTEMPTS)
    with pytest.raises(ConnectionAbortedError):
        parallel._connect(ray, "ray://head:10001", {})
    assert ray.calls.count("init ray://head:10001") == parallel.CLIENT_CONNECT_ATTEMPTS


def test_a_gcs_address_fails_at_once() -> None:
    ray = FakeRay(failures=1)
    with pytest.raises(ConnectionAbortedError):
        parallel._connect(ray, "127.0.0.1:6379", {})
    assert ray.calls == ["init 127.0.0.1:6379"]
