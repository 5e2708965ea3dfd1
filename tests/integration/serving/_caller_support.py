"""Helpers of the caller and spend-store tests: priced simulated raters, a caller key file,
a scorer that reads it, and REST/gRPC calls with a key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import httpx
import redis
import yaml
from _bias_scorer_support import MODEL, Scorer, launch, text_tensor

from assay.bias.rating.task import RatingTask
from assay.llm.ensemble import load_ensemble
from assay.llm.redis_limits import budget_prefix
from assay.llm.usage import utc_today, worst_case_cost

RATER = "sim-gpt"
KEYS = {
    "alice": "alice-key-0123456789abcdefghij",
    "bob": "bob-key-0123456789abcdefghijkl",
    "carol-old": "carol-old-key-0123456789abcdef",
}
GIVE_UP_S = 60.0


def write_priced_ensemble(path: Path, sim_url: str) -> Path:
    rater = {
        "provider": "openai",
        "model": RATER,
        "endpoints": [{"base_url": f"{sim_url}/v1"}],
        "rpm": 60000,
        "max_tokens": 200,
        "price_per_1k_input": 0.01,
        "price_per_1k_output": 0.03,
        "timeout_s": 10,
    }
    path.write_text(
        yaml.safe_dump(
            {"name": "priced", "raters": {RATER: rater}, "resilience": {"max_attempts": 1}}
        )
    )
    return path


def write_keys(path: Path, alice_budget: float | None = None) -> Path:
    alice: dict[str, Any] = {"keys": [KEYS["alice"]]}
    if alice_budget is not None:
        alice["daily_budget_usd"] = alice_budget
    callers = {
        "alice": alice,
        "bob": {"keys": [KEYS["bob"]]},
        "carol": {"keys": ["carol-new-key-0123456789abcdef"], "revoked_keys": [KEYS["carol-old"]]},
    }
    path.write_text(yaml.safe_dump({"callers": callers}))
    return path


def passage(tag: str) -> str:
    """Same length for every passage (one worst case fits all); unique, so no cache hits."""
    return f"Passage {tag:>12}: the council debated taxes, schools and the new bridge."


def worst_of(ensemble: Path) -> float:
    task = RatingTask(passage("x"))
    return worst_case_cost(load_ensemble(str(ensemble), {}).raters[RATER], task.system, task.prompt)


def sim_config(latency_s: float) -> Any:
    from assay.sim import SimConfig, SimModelConfig

    model = SimModelConfig(name=RATER, refusal_rate=0.0, latency_s=latency_s, latency_jitter_s=0)
    return SimConfig(models=[model])


def start(folder: Path, sim_url: str, keys: Path, *args: str) -> Scorer:
    folder.mkdir(parents=True, exist_ok=True)
    ensemble = write_priced_ensemble(folder / "ensemble.yaml", sim_url)
    env = {"ASSAY_SCORER_CALLER_KEYS_FILE": str(keys)}
    common = [f"--ensemble={ensemble}", "--rater_deadline_s=30"]
    return launch("module", [*common, *args], folder / "server.log", env).wait_ready()


def infer(scorer: Scorer, texts: list[str], key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    body = {"inputs": [text_tensor(texts)]}
    return httpx.post(scorer.infer_url, json=body, headers=headers, timeout=GIVE_UP_S)


def grpc_infer(scorer: Scorer, texts: list[str], key: str | None) -> tuple[str, str]:
    """(status code name, details) of a v2 gRPC ModelInfer call with ``authorization``."""
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[len(texts)],
        contents=pb.InferTensorContents(bytes_contents=[t.encode() for t in texts]),
    )
    request = pb.ModelInferRequest(model_name=MODEL, inputs=[tensor])
    metadata = [("authorization", f"Bearer {key}")] if key else []
    with grpc.insecure_channel(f"127.0.0.1:{scorer.grpc_port}") as channel:
        try:
            pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
                request, metadata=metadata, timeout=GIVE_UP_S
            )
        except grpc.RpcError as exc:
            return exc.code().name, exc.details() or ""
    return "OK", ""


def spend_record(url: str, scope: str) -> float:
    """The USD spent today in the Redis budget of ``scope`` (``<model>[:caller:<id>]``)."""
    client = redis.Redis.from_url(url)
    try:
        raw = client.hget(budget_prefix(scope) + utc_today().isoformat(), "spent")
    finally:
        client.close()
    return float(raw) if raw is not None else 0.0
