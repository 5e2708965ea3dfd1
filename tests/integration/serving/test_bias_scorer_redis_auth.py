"""The bias scorer against a Redis that requires a password (the manifests' Redis, ``requirepass``
from Secret assay-redis), with real parts only: a redis-server with ``requirepass`` on
127.0.0.1, ``python -m assay_serving.bias_scorer`` processes and a simulated priced endpoint.

Without ASSAY_REDIS_PASSWORD the scorer does not start (fail closed: the shared limits cannot be
read); with it, the scorer serves and its spend lands in that Redis, the day's and the caller's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _bias_scorer_support import MODEL, launch
from _caller_support import KEYS, infer, passage, sim_config, spend_record, write_keys
from _caller_support import write_priced_ensemble as priced

from assay.config import redis_url_with_password

pytestmark = [pytest.mark.integration, pytest.mark.redis]


@pytest.fixture
def fast_sim() -> Iterator[Any]:
    from assay.sim import start_sim_server

    with start_sim_server(port=0, config=sim_config(0.0)) as sim:
        yield sim


def _scorer_args(folder: Path, sim_url: str, redis_url: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    ensemble = priced(folder / "ensemble.yaml", sim_url)
    return [f"--ensemble={ensemble}", f"--redis-url={redis_url}", "--daily-budget=100", "--no-grpc"]


def test_the_scorer_needs_the_password_and_spends_through_it(
    tmp_path: Path, password_redis: tuple[str, str], fast_sim: Any
) -> None:
    url, password = password_redis
    keys = write_keys(tmp_path / "callers.yaml", alice_budget=100.0)
    env = {"ASSAY_SCORER_CALLER_KEYS_FILE": str(keys)}

    refused = launch(
        "module", _scorer_args(tmp_path / "a", fast_sim.base_url, url), tmp_path / "a.log", env
    )
    try:
        status = refused.process.wait(timeout=120)
    finally:
        refused.stop()
    log = (tmp_path / "a.log").read_text()
    assert status != 0, log[-2000:]
    assert "refuses this client" in log and "ASSAY_REDIS_PASSWORD" in log, log[-2000:]
    assert password not in log

    env["ASSAY_REDIS_PASSWORD"] = password
    scorer = launch(
        "module", _scorer_args(tmp_path / "b", fast_sim.base_url, url), tmp_path / "b.log", env
    ).wait_ready()
    try:
        answer = infer(scorer, [passage("with-password")], KEYS["alice"])
    finally:
        scorer.stop()
    assert answer.status_code == 200, answer.text
    authenticated = redis_url_with_password(url, password) or ""
    assert spend_record(authenticated, MODEL) > 0
    assert spend_record(authenticated, f"{MODEL}:caller:alice") > 0
    assert password not in (tmp_path / "b.log").read_text()
