"""The fan-out with ``redis_url``: two runs at once (each its own event loop, limiter and Redis
connections, as two processes would have) share one rate limit through a real redis-server;
a Redis that does not answer stops a run before any call (fail closed)."""

from __future__ import annotations

import threading
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


def _two_runs_at_once(tmp_path: Path, ensemble: Any, redis_url: str | None) -> list[Any]:
    summaries: list[Any] = []

    def one(name: str) -> None:
        summaries.append(
            rate_passages(
                passages(40, prefix=name),
                ensemble,
                RatingsStore(tmp_path / name),
                use_ray=False,
                progress=False,
                concurrency=16,
                cache="memory://",
                metrics=RecordingMetrics(),
                redis_url=redis_url,
            )
        )

    threads = [threading.Thread(target=one, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return summaries


def test_two_runs_share_one_limit_through_redis(tmp_path: Path, redis_url: str) -> None:
    """The server allows 20 requests per rolling 2 s and so does the ensemble (600 rpm): two runs
    that each believe they own the limit would send twice that; sharing it, never a violation."""
    config = SimConfig(rate_window_s=2.0, models=[sim_model(MODEL, rpm=20)])
    with start_sim_server(config=config) as sim:
        ensemble = sim_ensemble(
            sim, rpm=600, raters=(MODEL,), rate_window_s=2.0, burst_s=0.2, safety_margin_s=0.1
        )
        summaries = _two_runs_at_once(tmp_path, ensemble, redis_url)
        stats = model_stats(sim)[MODEL]
    assert sorted(s.rated for s in summaries) == [40, 40]
    assert stats["violations"] == 0, stats
    assert 15 <= stats["peak_window_requests"] <= 20  # the shared limit binds, never over


def test_without_redis_two_runs_break_the_limit(tmp_path: Path) -> None:
    """The failure the shared limiter prevents (each run's own in-process bucket)."""
    config = SimConfig(rate_window_s=2.0, models=[sim_model(MODEL, rpm=20)])
    with start_sim_server(config=config) as sim:
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
