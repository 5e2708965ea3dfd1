"""The contenders of ``llm_bench.py``, each run in its own process: assay's fan-out, LiteLLM's
Router and a naive thread pool with tenacity. Each imports its own stack when it runs, so no
process carries another contender's libraries."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

MODELS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}


def _passages(per_model: int) -> Any:
    import pandas as pd

    return pd.DataFrame(
        {
            "passage_id": [f"b{i:05d}" for i in range(per_model)],
            "text": [
                f"Benchmark passage {i}: the council debated taxes." for i in range(per_model)
            ],
            "publisher": [f"pub{i % 5}" for i in range(per_model)],
        }
    )


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.5), "p99": pick(0.99), "max": ordered[-1]}


def run_assay(
    url: str, per_model: int, rpm: int, work: Path, local: bool, in_flight: int
) -> dict[str, Any]:
    from assay.bias.rating.fanout import rate_passages
    from assay.bias.store import RatingsStore
    from assay.llm.ensemble import Ensemble
    from assay.obs.metrics_llm import RecordingMetrics

    ensemble = Ensemble.model_validate(
        {
            "name": "bench",
            "raters": {
                model: {
                    "provider": kind,
                    "model": model,
                    "endpoints": [{"base_url": url + "/v1" if kind == "openai" else url}],
                    "rpm": rpm,
                    "max_tokens": 200,
                }
                for model, kind in MODELS.items()
            },
        }
    )
    if not local:
        from assay.parallel import init_ray

        try:
            init_ray()
        except Exception:  # Ray's 30 s start-up deadline can pass on an overloaded machine
            import ray

            ray.shutdown()
            init_ray()
    work.parent.mkdir(parents=True, exist_ok=True)
    (work.parent / "assay.ready").touch()
    summary = rate_passages(
        _passages(per_model),
        ensemble,
        RatingsStore(work),
        concurrency=in_flight,
        use_ray=not local,
        progress=False,
        cache="memory://",
        metrics=RecordingMetrics(),
    )
    stored = RatingsStore(work).to_frame()
    return {
        "ok": int((stored["error"] == "").sum()),
        "failed": int((stored["error"] != "").sum()),
        "latency": _quantiles(summary.latencies_s),
    }


def _messages(text: str) -> list[dict[str, str]]:
    from assay.bias.prompt import build_messages

    system, user = build_messages(text)
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def run_litellm(url: str, per_model: int, rpm: int, in_flight: int) -> dict[str, Any]:
    """LiteLLM's Router: one deployment per model with its rpm, usage-based routing (v2) with
    pre-call checks, 3 retries; the same in-flight cap as assay."""
    from litellm import Router

    from assay.bias.prompt import parse_rating

    prefixes = {"openai": "openai/", "anthropic": "anthropic/", "together": "together_ai/"}
    router = Router(
        model_list=[
            {
                "model_name": model,
                "litellm_params": {
                    "model": prefixes[kind] + model,
                    "api_base": url if kind == "anthropic" else url + "/v1",
                    "api_key": "sim",
                    "rpm": rpm,
                    "timeout": 30,
                },
            }
            for model, kind in MODELS.items()
        ],
        routing_strategy="usage-based-routing-v2",
        enable_pre_call_checks=True,
        num_retries=3,
    )
    texts = _passages(per_model)["text"].tolist()
    counts = {"ok": 0, "failed": 0}
    latencies: list[float] = []

    async def one(model: str, text: str, slots: asyncio.Semaphore) -> None:
        async with slots:
            sent = time.monotonic()
            try:
                response = await router.acompletion(
                    model=model, messages=_messages(text), max_tokens=200, temperature=0.0
                )
                parse_rating(response.choices[0].message.content or "")
                counts["ok"] += 1
            except Exception:
                pass  # lost: LiteLLM gives up after its retries; nothing is recorded
            latencies.append(time.monotonic() - sent)

    async def run_all() -> None:
        slots = asyncio.Semaphore(in_flight)
        await asyncio.gather(*(one(m, t, slots) for t in texts for m in MODELS))

    asyncio.run(run_all())
    return {"ok": counts["ok"], "failed": 0, "latency": _quantiles(latencies)}


def run_naive(url: str, per_model: int, rpm: int) -> dict[str, Any]:
    """The seed's shape: ThreadPoolExecutor(10), SDK clients, tenacity retry around each call,
    and each thread pacing itself so that 10 threads together aim at the limit."""
    import threading

    import anthropic
    import openai
    import together
    from tenacity import retry, stop_after_attempt, wait_random_exponential

    from assay.bias.prompt import build_messages, parse_rating

    threads = 10
    pace_s = threads / (len(MODELS) * rpm / 60.0)
    local = threading.local()

    def clients() -> dict[str, Any]:
        if not hasattr(local, "clients"):
            local.clients = {
                "openai": openai.OpenAI(base_url=url + "/v1", api_key="sim", max_retries=0),
                "anthropic": anthropic.Anthropic(base_url=url, api_key="sim", max_retries=0),
                "together": together.Together(base_url=url, api_key="sim", max_retries=0),
            }
        return local.clients

    @retry(stop=stop_after_attempt(3), wait=wait_random_exponential(multiplier=1, max=10))
    def call(model: str, text: str) -> str:
        system, user = build_messages(text)
        kind = MODELS[model]
        client = clients()[kind]
        if kind == "anthropic":
            message = client.messages.create(
                model=model,
                system=system,
                max_tokens=200,
                messages=[{"role": "user", "content": user}],
            )
            return str(message.content[0].text)
        response = client.chat.completions.create(
            model=model, messages=_messages(text), max_tokens=200, temperature=0.0
        )
        return str(response.choices[0].message.content)

    def task(model: str, text: str) -> tuple[bool, float]:
        sent = time.monotonic()
        try:
            ok = bool(parse_rating(call(model, text)))
        except Exception:
            ok = False  # lost
        elapsed = time.monotonic() - sent
        time.sleep(max(0.0, pace_s - elapsed))
        return ok, elapsed

    texts = _passages(per_model)["text"].tolist()
    with ThreadPoolExecutor(threads) as pool:
        results = list(pool.map(lambda mt: task(*mt), [(m, t) for t in texts for m in MODELS]))
    return {
        "ok": sum(ok for ok, _ in results),
        "failed": 0,
        "latency": _quantiles([elapsed for _, elapsed in results]),
    }


def contender(args: argparse.Namespace) -> None:
    if args.contender == "assay":
        result = run_assay(
            args.sim_url,
            args.per_model,
            args.rpm,
            Path(args.work),
            args.assay_local,
            args.in_flight,
        )
    elif args.contender == "litellm":
        result = run_litellm(args.sim_url, args.per_model, args.rpm, args.in_flight)
    else:
        result = run_naive(args.sim_url, args.per_model, args.rpm)
    print("RESULT " + json.dumps(result), flush=True)
