"""Configuration of the simulated LLM endpoint: its models, their faults and the truth table.

The simulated models are documented simulations, not real LLMs: each turns a hidden "true" bias
score of a passage into a rating with its own bias offset, noise level and refusal rate.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from assay.errors import ConfigError

FAULT_KEYS: dict[str, str] = {
    "429": "rate_limit",
    "500": "server_error",
    "503": "unavailable",
    "timeout": "timeout",
    "malformed": "malformed",
    "badjson": "bad_body",
}
"""Fault-spec key -> ``FaultRates`` field."""

FAULT_SPEC_HELP = (
    "Per-model faults: 'MODEL:KEY=VALUE,...;MODEL:...' where MODEL is a simulated model name or "
    "'*' for all. Keys are probabilities per request - 429 (rate-limited, with Retry-After), "
    "500, 503, timeout (reply only after --timeout-delay seconds), malformed (an answer that is "
    "not the required JSON), badjson (a broken HTTP body) - plus rpm=N (server-side limit over a "
    "rolling window; excess requests get 429 and count as violations). Example: "
    "'sim-gpt:429=0.05,500=0.1,timeout=0.02,malformed=0.03;*:rpm=600'."
)


class FaultRates(BaseModel):
    """Probability per request of each injected fault (they are mutually exclusive)."""

    model_config = ConfigDict(extra="forbid")

    rate_limit: float = Field(default=0.0, ge=0, le=1, description="429 with Retry-After")
    server_error: float = Field(default=0.0, ge=0, le=1, description="500")
    unavailable: float = Field(default=0.0, ge=0, le=1, description="503")
    timeout: float = Field(default=0.0, ge=0, le=1, description="answer only after timeout_delay_s")
    malformed: float = Field(
        default=0.0, ge=0, le=1, description="answer text not in the JSON schema"
    )
    bad_body: float = Field(default=0.0, ge=0, le=1, description="HTTP body that is not valid JSON")

    def total(self) -> float:
        return (
            self.rate_limit
            + self.server_error
            + self.unavailable
            + self.timeout
            + self.malformed
            + self.bad_body
        )


class SimModelConfig(BaseModel):
    """One simulated model: how it distorts the true score, how fast it is, what goes wrong."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="model name clients send, e.g. sim-gpt")
    bias_offset: float = Field(default=0.0, ge=-2, le=2, description="added to the true score")
    noise: float = Field(default=0.3, ge=0, le=2, description="standard deviation of rating noise")
    refusal_rate: float = Field(default=0.0, ge=0, le=1, description="share of passages it refuses")
    latency_s: float = Field(default=0.02, ge=0, description="mean service time of a request")
    latency_jitter_s: float = Field(
        default=0.01, ge=0, description="uniform jitter around latency_s"
    )
    rpm: int | None = Field(
        default=None, gt=0, description="requests per rolling window; None = no limit"
    )
    retry_after_s: float = Field(
        default=1.0, ge=0, description="Retry-After sent with injected 429s"
    )
    limit_headers: bool = Field(
        default=True,
        description="send the rate-limit headers (x-ratelimit-*, anthropic-ratelimit-*) with "
        "every answer; off, clients learn of the limit from 429s and Retry-After only, as with "
        "hosts that send none",
    )
    faults: FaultRates = Field(default_factory=FaultRates)


def default_models() -> list[SimModelConfig]:
    """Three simulated raters with different offsets and noise (named after no real model)."""
    return [
        SimModelConfig(name="sim-gpt", bias_offset=-0.15, noise=0.25, refusal_rate=0.01),
        SimModelConfig(name="sim-claude", bias_offset=-0.3, noise=0.2, refusal_rate=0.02),
        SimModelConfig(name="sim-llama", bias_offset=0.25, noise=0.4, refusal_rate=0.0),
    ]


class SimConfig(BaseModel):
    """Everything the simulated endpoint needs; load it from YAML with ``SimConfig.from_yaml``."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    models: list[SimModelConfig] = Field(default_factory=default_models)
    api_key: SecretStr | None = Field(
        default=None, description="if set, requests must present this key"
    )
    timeout_delay_s: float = Field(
        default=60.0, ge=0, description="how long a 'timeout' fault stalls"
    )
    rate_window_s: float = Field(default=60.0, gt=0, description="length of the rolling rpm window")
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="largest request body accepted (413 above it; a rating prompt is ~100 kB)",
    )
    truth: dict[str, float] = Field(
        default_factory=dict, description="sha256 of passage text (see text_key) -> true score"
    )
    truth_file: Path | None = Field(
        default=None, description="CSV/JSONL/Parquet with text and score"
    )
    truth_text_column: str = "text"
    truth_score_column: str = "true_score"

    @classmethod
    def from_yaml(cls, path: Path) -> SimConfig:
        try:
            data = yaml.safe_load(Path(path).read_text()) or {}
        except OSError as exc:
            raise ConfigError(f"Cannot read the simulator config {path}: {exc.strerror}.") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"The simulator config {path} is not valid YAML: {exc}.") from exc
        return cls.from_mapping(data, source=str(path))

    @classmethod
    def from_mapping(cls, data: Any, source: str = "config") -> SimConfig:
        if not isinstance(data, dict):
            raise ConfigError(f"The simulator {source} must be a mapping of settings.")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ConfigError(f"Invalid simulator {source}: {where}: {first['msg']}.") from exc

    def model(self, name: str) -> SimModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    def with_faults(self, spec: str) -> SimConfig:
        """A copy with a ``--faults`` SPEC applied (see ``FAULT_SPEC_HELP``)."""
        updates = parse_fault_spec(spec, [m.name for m in self.models])
        models = []
        for model in self.models:
            change = updates.get(model.name, {})
            rpm = change.pop("rpm", model.rpm)
            faults = model.faults.model_copy(update=change)
            models.append(model.model_copy(update={"faults": faults, "rpm": rpm}))
        for model in models:
            if model.faults.total() > 1:
                raise ConfigError(f"Fault probabilities for {model.name} add up to more than 1.")
        return self.model_copy(update={"models": models})

    def truth_table(self) -> dict[str, float]:
        """``truth`` merged with ``truth_file`` (the file's rows win)."""
        table = dict(self.truth)
        if self.truth_file is not None:
            table.update(
                load_truth_file(self.truth_file, self.truth_text_column, self.truth_score_column)
            )
        return table


def text_key(text: str) -> str:
    """Key of a passage in the truth table: sha256 of its text without outer whitespace."""
    return hashlib.sha256(text.strip().encode("utf-8")).hexdigest()


def truth_table_from_pairs(pairs: Any) -> dict[str, float]:
    """A truth table from (text, true score) pairs, e.g. ``zip(df.text, df.true_score)``."""
    return {text_key(str(text)): float(score) for text, score in pairs}


def load_truth_file(path: Path, text_column: str, score_column: str) -> dict[str, float]:
    """Truth table from a corpus file (.csv, .jsonl/.json lines or .parquet)."""
    import pandas as pd

    path = Path(path)
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif path.suffix in (".jsonl", ".json"):
            frame = pd.read_json(path, lines=True)
        else:
            frame = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Cannot read the truth table {path}: {exc}.") from exc
    missing = [c for c in (text_column, score_column) if c not in frame.columns]
    if missing:
        raise ConfigError(f"The truth table {path} has no column(s) {', '.join(missing)}.")
    rows = frame[[text_column, score_column]].dropna()
    return truth_table_from_pairs(zip(rows[text_column], rows[score_column], strict=True))


def _parse_assignment(item: str, model: str) -> tuple[str, float]:
    key, sep, raw = item.partition("=")
    key = key.strip().lower()
    if not sep or key not in (*FAULT_KEYS, "rpm"):
        known = ", ".join([*FAULT_KEYS, "rpm"])
        raise ConfigError(f"Bad fault {item!r} for {model}: use KEY=VALUE with KEY one of {known}.")
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"Bad fault value in {item!r} for {model}: not a number.") from None
    if key == "rpm":
        if value <= 0 or value != int(value):
            raise ConfigError(f"rpm for {model} must be a positive whole number, got {raw}.")
        return "rpm", value
    if not 0 <= value <= 1:
        raise ConfigError(f"Fault {key} for {model} must be a probability in [0, 1], got {raw}.")
    return FAULT_KEYS[key], value


def parse_fault_spec(spec: str, model_names: list[str]) -> dict[str, dict[str, Any]]:
    """``{model: {field: value}}`` from a SPEC; ``*`` applies to all, named models override it."""
    per_model: dict[str, dict[str, Any]] = {}
    wildcard: dict[str, Any] = {}
    for section in filter(None, (s.strip() for s in spec.split(";"))):
        model, sep, body = section.partition(":")
        model = model.strip()
        if not sep or not model:
            raise ConfigError(f"Bad fault section {section!r}: expected MODEL:KEY=VALUE,...")
        if model != "*" and model not in model_names:
            raise ConfigError(
                f"Fault spec names unknown model {model!r}; known: {', '.join(model_names)}."
            )
        target = wildcard if model == "*" else per_model.setdefault(model, {})
        for item in filter(None, (i.strip() for i in body.split(","))):
            field, value = _parse_assignment(item, model)
            target[field] = int(value) if field == "rpm" else value
    return {name: {**wildcard, **per_model.get(name, {})} for name in model_names}
