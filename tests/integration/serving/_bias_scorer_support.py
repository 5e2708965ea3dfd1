"""Helpers of the bias-scorer tests: start a real scorer process and talk v2 to it."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from _serving_support import REPO, RunningServer, free_port, wait_ready

MODEL = "bias-scorer"
RATERS = ("sim-gpt", "sim-claude", "sim-llama")
PROVIDERS = {"sim-gpt": "openai", "sim-claude": "anthropic", "sim-llama": "together"}


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Scorer(RunningServer):
    """A running bias scorer: the classifier tests' server handle plus v2 text helpers."""

    @property
    def infer_url(self) -> str:
        return f"{self.url}/v2/models/{MODEL}/infer"

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def infer(self, texts: list[str], **extra: Any) -> httpx.Response:
        body = {"inputs": [text_tensor(texts)], **extra}
        return httpx.post(self.infer_url, json=body, timeout=60)

    def wait_ready(self, timeout_s: float = 90) -> Scorer:
        wait_ready(self, timeout_s)
        return self


def launch(
    entry: str, args: list[str], log_path: Path, env: dict[str, str] | None = None
) -> Scorer:
    """Start ``assay serve bias-scorer`` (entry "cli") or ``python -m assay_serving.bias_scorer``;
    without a caller key file (``ASSAY_SCORER_CALLER_KEYS_FILE`` in ``env``) it is started with
    ``ASSAY_SCORER_ALLOW_ANONYMOUS=1``, as for local development."""
    http_port, grpc_port = free_port(), free_port()
    if entry == "cli":
        assay = str(Path(sys.executable).parent / "assay")
        ports = [f"--http-port={http_port}", f"--grpc-port={grpc_port}"]
        command = [assay, "serve", "bias-scorer", *ports, *args]
    else:
        ports = [f"--http_port={http_port}", f"--grpc_port={grpc_port}"]
        command = [sys.executable, "-m", "assay_serving.bias_scorer", *ports, *args]
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if "ASSAY_SCORER_CALLER_KEYS_FILE" not in full_env:
        full_env.setdefault("ASSAY_SCORER_ALLOW_ANONYMOUS", "1")
    full_env.pop("ASSAY_ENSEMBLE", None)
    full_env.pop("ASSAY_LLM_DAILY_BUDGET_USD", None)
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO, env=full_env, stdout=log_file, stderr=subprocess.STDOUT
        )
    return Scorer(process, http_port, grpc_port, log_path)


def text_tensor(texts: list[str], name: str = "text") -> dict[str, Any]:
    return {"name": name, "shape": [len(texts)], "datatype": "BYTES", "data": texts}


def outputs_of(response: httpx.Response) -> dict[str, list[Any]]:
    return {output["name"]: output["data"] for output in response.json()["outputs"]}


def write_ensemble(path: Path, urls: dict[str, str], **resilience: Any) -> Path:
    """An ensemble file with the three simulated raters, each at its own sim root URL."""
    raters = {}
    for rater, root in urls.items():
        provider = PROVIDERS[rater]
        base = f"{root}/v1" if provider == "openai" else root
        raters[rater] = {
            "provider": provider,
            "model": rater,
            "endpoints": [{"base_url": base}],
            "rpm": 6000,
            "max_tokens": 200,
            "timeout_s": 5,
        }
    path.write_text(yaml.safe_dump({"name": "test", "raters": raters, "resilience": resilience}))
    return path


def received(stats: dict[str, Any]) -> dict[str, int]:
    """Requests the simulated endpoint received, per model."""
    return {name: int(model["received"]) for name, model in stats["models"].items()}


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels`` (0 when none)."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
