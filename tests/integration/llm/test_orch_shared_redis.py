"""The fan-out with ``redis_url``: two runs at once (each its own event loop, limiter and Redis
connections, as two processes would have) share one rate limit through a real redis-server;
a Redis that does not answer stops a run before any call (fail closed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from _orch_support import free_port, model_stats, passages, sim_ensemble, sim_model

from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.errors import ConfigError
from assay.obs.metrics_llm import RecordingMetrics
from assay.sim import SimConfig, start_sim_server

pytestmark = [pytest.mark.integration, pytest.mark.redis]
MODEL = "sim-gpt"


def _server_without_limit_headers() -> SimConfig:
    """20 requests per rolling 2 s, made known only by 429s. With ``x-ratelimit-remaining``
    headers, runs that share no limiter pause together once the window is full and overrun it
    only where they resume at the same instant; under load they sometimes did not, and the test
    of that failure failed. Without them the limiter alone keeps a run under the limit."""
    return SimConfig(rate_window_s=2.0, models=[sim_model(MODEL, rpm=20, limit_headers=False)])


def _rate_in_process(frame: Any, ensemble: Any, store: Path, redis_url: str | None) -> Any:
    return rate_passages(
        frame,
        ensemble,
        RatingsStore(store),
        use_ray=False,
        progress=False,
        concurrency=16,
        cache="memory://",
        metrics=RecordingMetrics(),
        redis_url=redis_url,
    )


def _two_runs_at_once(tmp_path: Path, ensemble: Any, redis_url: str | None) -> list[Any]:
    summaries: list[Any] = []

    def one(name: str) -> None:
        summaries.append(
            _rate_in_process(passages(40, prefix=name), ensemble, tmp_path / name, redis_url)
        )

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return summaries


def test_two_runs_share_one_limit_through_redis(tmp_path: Path, redis_url: str) -> None:
    """The server allows 20 requests per rolling 2 s and so does the ensemble (600 rpm): two runs
    that each believe they own the limit would send twice that; sharing it, never a violation,
    with no rate-limit header to help."""
    with start_sim_server(config=_server_without_limit_headers()) as sim:
        ensemble = sim_ensemble(
            sim, rpm=600, raters=(MODEL,), rate_window_s=2.0, burst_s=0.2, safety_margin_s=0.1
        )
        summaries = _two_runs_at_once(tmp_path, ensemble, redis_url)
        stats = model_stats(sim)[MODEL]
    assert sorted(s.rated for s in summaries) == [40, 40]
    assert stats["violations"] == 0, stats
    assert 15 <= stats["peak_window_requests"] <= 20  # the shared limit binds, never over


def test_without_redis_two_runs_break_the_limit(tmp_path: Path) -> None:
    """The failure the shared limiter prevents (each run's own in-process bucket): the same
    runs and server as above, without Redis."""
    with start_sim_server(config=_server_without_limit_headers()) as sim:
        ensemble = sim_ensemble(
            sim,
            rpm=600,
            raters=(MODEL,),
            rate_window_s=2.0,
            burst_s=0.2,
            safety_margin_s=0.1,
            max_attempts=10,
        )
        _two_runs_at_once(tmp_path, ensemble, None)
        stats = model_stats(sim)[MODEL]
    assert stats["violations"] > 0, stats


def test_an_unreachable_redis_stops_the_run_before_any_call(tmp_path: Path) -> None:
    with start_sim_server(config=SimConfig(models=[sim_model(MODEL)])) as sim:
        ensemble = sim_ensemble(sim, raters=(MODEL,))
        with pytest.raises(ConfigError, match="fail closed"):
            rate_passages(
                passages(3),
                ensemble,
                RatingsStore(tmp_path),
                use_ray=False,
                progress=False,
                redis_url=f"redis://127.0.0.1:{free_port()}/0",
            )
        assert model_stats(sim)[MODEL]["received"] == 0


RAY_RUN = """
import json, sys
import pandas as pd
from assay.bias.rating.fanout import rate_passages
from assay.bias.store import RatingsStore
from assay.llm.ensemble import Ensemble
args = json.loads(sys.argv[1])
summary = rate_passages(
    pd.read_json(args["passages"], orient="records"),
    Ensemble.model_validate_json(args["ensemble"]),
    RatingsStore(args["store"]),
    use_ray=True, workers=2, concurrency=16, progress=False, cache="memory://",
    redis_url=args["redis_url"],
)
print("RATED", summary.rated, flush=True)
"""


@pytest.mark.slow
def test_a_ray_fanout_and_an_in_process_one_share_the_limit_through_redis(
    tmp_path: Path, redis_url: str, ray_cluster: dict[str, str]
) -> None:
    """The Ray path (its limiter actor keeps the buckets in Redis) shares the limit with an
    in-process run. The in-process run starts only once the Ray run's calls reach the server,
    and each run alone needs about 10 s at the server's limit, so the two overlap."""
    config = SimConfig(rate_window_s=2.0, models=[sim_model(MODEL, rpm=20)])
    with start_sim_server(config=config) as sim:
        ensemble = sim_ensemble(
            sim, rpm=600, raters=(MODEL,), rate_window_s=2.0, burst_s=0.2, safety_margin_s=0.1
        )
        frame = tmp_path / "passages.json"
        passages(100, prefix="ray").to_json(frame, orient="records")
        args = {
            "passages": str(frame),
            "ensemble": ensemble.model_dump_json(),
            "store": str(tmp_path / "ray"),
            "redis_url": redis_url,
        }
        ray_run = subprocess.Popen(
            [sys.executable, "-c", RAY_RUN, json.dumps(args)],
            env={**os.environ, **ray_cluster, "ASSAY_CACHE": "memory://"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _wait_for_calls(sim, ray_run, at_least=5)
            local = _rate_in_process(
                passages(100, prefix="local"), ensemble, tmp_path / "local", redis_url
            )
            out, err = ray_run.communicate(timeout=300)
        finally:
            ray_run.kill()
        stats = model_stats(sim)[MODEL]
    assert ray_run.returncode == 0, err[-3000:]
    assert "RATED 100" in out and local.rated == 100
    assert stats["violations"] == 0, stats
    assert 15 <= stats["peak_window_requests"] <= 20


def _wait_for_calls(sim: Any, process: subprocess.Popen[str], at_least: int) -> None:
    deadline = time.monotonic() + 180
    while model_stats(sim)[MODEL]["received"] < at_least:
        if process.poll() is not None:
            raise AssertionError(f"the Ray run ended early: {process.communicate()[1][-3000:]}")
        assert time.monotonic() < deadline, "the Ray run made no call in 180 s"
        time.sleep(0.2)
