"""Helpers for the orchestration integration tests: ensembles pointed at a running simulated
endpoint and passage tables (the redis-server fixture ``redis_url`` is in tests/conftest.py)."""

from __future__ import annotations

import socket
from typing import Any

import pandas as pd

from assay.llm.ensemble import Ensemble
from assay.sim import SimModelConfig
from assay.sim.server import SimServer

KINDS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}


def sim_model(name: str, **kwargs: Any) -> SimModelConfig:
    return SimModelConfig(name=name, latency_s=0.01, latency_jitter_s=0.005, **kwargs)


def sim_ensemble(
    sim: SimServer | dict[str, list[str]],
    *,
    rpm: int = 600,
    raters: tuple[str, ...] = ("sim-gpt", "sim-claude", "sim-llama"),
    timeout_s: float = 30.0,
    **resilience: Any,
) -> Ensemble:
    """One rater per simulated model, each through its own provider SDK."""

    def urls(model: str) -> list[str]:
        if isinstance(sim, dict):
            return sim[model]
        return [sim.base_url_for(KINDS[model])]

    return Ensemble.model_validate(
        {
            "name": "sim-test",
            "raters": {
                model: {
                    "provider": KINDS[model],
                    "model": model,
                    "endpoints": [{"base_url": u} for u in urls(model)],
                    "rpm": rpm,
                    "max_tokens": 200,
                    "price_per_1k_input": 0.01,
                    "price_per_1k_output": 0.03,
                    "timeout_s": timeout_s,
                }
                for model in raters
            },
            "resilience": resilience,
        }
    )


def passages(n: int, prefix: str = "p") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "passage_id": [f"{prefix}{i:04d}" for i in range(n)],
            "text": [
                f"Passage {prefix}{i}: the council debated taxes and schools." for i in range(n)
            ],
            "publisher": [f"pub{i % 4}" for i in range(n)],
        }
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_stats(sim: SimServer) -> dict[str, dict[str, Any]]:
    stats = sim.stats()
    return stats.get("models", stats)
