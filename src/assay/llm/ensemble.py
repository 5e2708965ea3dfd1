"""The rater ensemble: which LLMs rate, where they live, and how hard we may call them.

An ensemble file (YAML or TOML) maps rater names to a provider kind, a model, one or more
endpoints and the limits and prices that apply to each endpoint. API keys never appear in the
file: an endpoint names the environment variable that holds its key (``api_key_env``), and the
key is read where the call is made. ``base_url`` may use ``${VAR}`` or ``${VAR:-default}``.

Environment overrides, applied after the file is read (``<NAME>`` is the rater name in upper
case with non-alphanumerics as ``_``): ``ASSAY_RATER_<NAME>_MODEL``, ``_RPM``, ``_TPM``,
``_TEMPERATURE``, ``_MAX_TOKENS``, ``_TIMEOUT_S`` and ``_BASE_URLS`` (comma-separated; replaces
the endpoints' URLs, keeping their key variables in order).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assay.errors import ConfigError
from assay.storage.s3 import local_copy

KNOWN_PROVIDERS: frozenset[str] = frozenset({"openai", "anthropic", "together"})
ENSEMBLE_ENV = "ASSAY_ENSEMBLE"
BUNDLED_PREFIX = "bundled:"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_OVERRIDABLE = {
    "MODEL": "model",
    "RPM": "rpm",
    "TPM": "tpm",
    "TEMPERATURE": "temperature",
    "MAX_TOKENS": "max_tokens",
    "TIMEOUT_S": "timeout_s",
}


class EndpointConfig(BaseModel):
    """One place a rater's model can be called: a base URL and the env var holding its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = Field(default=None, description="API base URL; None = the SDK's default")
    api_key_env: str | None = Field(
        default=None, description="name of the environment variable holding the API key"
    )
    rpm: int | None = Field(
        default=None, gt=0, description="overrides the rater's rpm for this endpoint"
    )
    tpm: int | None = Field(
        default=None, gt=0, description="overrides the rater's tpm for this endpoint"
    )

    @field_validator("api_key_env")
    @classmethod
    def _looks_like_env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(
                "must be the NAME of an environment variable holding the key, never the key"
            )
        return value


class Terms(BaseModel):
    """Where a rater's prices and limits come from and when they were read there."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(min_length=1, description="the provider's price and rate-limit pages")
    as_of: date | None = Field(
        description="the day the prices and limits were read from the source; null for "
        "illustrative prices that no provider charges (the simulator's)"
    )


class RaterConfig(BaseModel):
    """One rater: a provider kind, a model, its endpoints, limits, sampling and prices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str
    model: str = Field(min_length=1)
    endpoints: tuple[EndpointConfig, ...] = Field(
        default=(EndpointConfig(),), min_length=1, description="failover round-robin order"
    )
    rpm: int = Field(default=60, gt=0, description="requests per minute, per endpoint")
    tpm: int | None = Field(default=None, gt=0, description="tokens per minute, per endpoint")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=256, gt=0, le=32_768)
    price_per_1k_input: float = Field(default=0.0, ge=0.0, description="USD per 1,000 input tokens")
    price_per_1k_output: float = Field(
        default=0.0, ge=0.0, description="USD per 1,000 output tokens"
    )
    timeout_s: float = Field(default=30.0, gt=0.0, description="per-call timeout")
    terms: Terms | None = Field(
        default=None, description="source and date of the prices and limits above"
    )

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in KNOWN_PROVIDERS:
            raise ValueError(f"unknown provider {value!r}; use one of {sorted(KNOWN_PROVIDERS)}")
        return value


class Resilience(BaseModel):
    """Retry, breaker and limiter settings shared by every rater of the ensemble."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(
        default=8, ge=1, le=50, description="tries per call, first one included"
    )
    backoff_initial_s: float = Field(default=0.25, gt=0.0)
    backoff_max_s: float = Field(default=10.0, gt=0.0)
    breaker_failures: int = Field(default=5, ge=1, description="consecutive failures that open it")
    breaker_cooldown_s: float = Field(default=15.0, gt=0.0, description="open time before a probe")
    burst_s: float = Field(default=1.0, ge=0.0, description="catch-up allowance after a pause")
    safety_margin_s: float = Field(
        default=0.5, ge=0.0, description="slack for network jitter in the rolling-window guarantee"
    )
    max_pause_s: float = Field(default=60.0, gt=0.0, description="cap on Retry-After pauses")
    rate_window_s: float = Field(
        default=60.0, gt=0.0, description="the providers' rolling window (rpm is per minute)"
    )


class Ensemble(BaseModel):
    """A named set of raters plus the resilience settings they share."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "ensemble"
    raters: dict[str, RaterConfig] = Field(min_length=1)
    resilience: Resilience = Resilience()

    @field_validator("raters")
    @classmethod
    def _rater_names(cls, value: dict[str, RaterConfig]) -> dict[str, RaterConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
                raise ValueError(f"rater name {name!r} must be letters, digits, '_', '.', '-'")
        return value


@dataclass(frozen=True)
class Endpoint:
    """A resolved endpoint of one rater: the unit of rate limiting and circuit breaking."""

    rater: str
    provider: str
    model: str
    base_url: str | None
    api_key_env: str | None
    rpm: int
    tpm: int | None

    @property
    def key(self) -> str:
        """Limiter/breaker identity: limits apply per (URL, model, key)."""
        return f"{self.provider}|{self.base_url or 'default'}|{self.model}|{self.api_key_env}"

    @property
    def label(self) -> str:
        """The ``endpoint`` metric label (no secrets: URL only)."""
        return self.base_url or f"{self.provider}-default"

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        """Read the key from the environment of the process making the call."""
        if self.api_key_env is None:
            return None
        env = os.environ if environ is None else environ
        value = env.get(self.api_key_env)
        if not value:
            raise ConfigError(
                f"rater {self.rater!r}: environment variable {self.api_key_env} "
                "(its API key) is not set"
            )
        return value


def endpoints_of(ensemble: Ensemble, rater: str) -> list[Endpoint]:
    """The rater's endpoints with rater-level limits filled in, in failover order."""
    cfg = ensemble.raters[rater]
    return [
        Endpoint(
            rater=rater,
            provider=cfg.provider,
            model=cfg.model,
            base_url=ep.base_url,
            api_key_env=ep.api_key_env,
            rpm=ep.rpm or cfg.rpm,
            tpm=ep.tpm or cfg.tpm,
        )
        for ep in cfg.endpoints
    ]


def bundled_ensemble_path(name: str = "sim") -> Path:
    """Path of an ensemble file shipped with assay (``sim``: three simulated raters at
    ``$ASSAY_SIM_URL``; ``providers``: the three real providers, keys from the environment)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        raise ConfigError(f"bundled ensemble name {name!r} must be letters, digits, '_', '-'")
    path = Path(str(resources.files("assay.llm").joinpath("ensembles", f"{name}.yaml")))
    if not path.is_file():
        raise ConfigError(f"there is no bundled ensemble {name!r} (see assay/llm/ensembles)")
    return path


def load_ensemble(
    path: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> Ensemble:
    """Read, expand and validate an ensemble file; ConfigError names what is wrong.

    ``path`` is a local file, an ``s3://bucket/key`` object (MINIO_* settings) or
    ``bundled:<name>`` (a file shipped in assay/llm/ensembles); None means ``$ASSAY_ENSEMBLE``
    when set, else the bundled simulated ensemble.
    """
    env = dict(os.environ if environ is None else environ)
    if path is None:
        path = env.get(ENSEMBLE_ENV) or bundled_ensemble_path("sim")
    if isinstance(path, str) and path.startswith(BUNDLED_PREFIX):
        path = bundled_ensemble_path(path[len(BUNDLED_PREFIX) :])
    shown = str(path)
    with local_copy(path) as local:
        raw = _read_mapping(local, shown)
    raw = _expand_env(raw, env, shown)
    raw = _apply_env_overrides(raw, env)
    try:
        return Ensemble.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"ensemble file {shown}: {_first_problem(exc)}") from None


def _read_mapping(path: Path, shown: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"ensemble file {shown} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"ensemble file {shown} is not valid YAML/TOML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"ensemble file {shown} must hold a mapping with a 'raters' section")
    return data


def _expand_env(value: Any, env: Mapping[str, str], path: str) -> Any:
    if isinstance(value, dict):
        return {k: _expand_env(v, env, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, env, path) for v in value]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env and env[name] != "":
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"ensemble file {path}: environment variable {name} is not set")

        return _ENV_REF.sub(substitute, value)
    return value


def _env_prefix(rater: str) -> str:
    return "ASSAY_RATER_" + re.sub(r"[^A-Za-z0-9]", "_", rater).upper() + "_"


def _apply_env_overrides(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    raters = raw.get("raters")
    if not isinstance(raters, dict):
        return raw
    for name, cfg in raters.items():
        if not isinstance(cfg, dict):
            continue
        prefix = _env_prefix(str(name))
        for suffix, field in _OVERRIDABLE.items():
            if env.get(prefix + suffix):
                cfg[field] = env[prefix + suffix]
        if env.get(prefix + "BASE_URLS"):
            urls = [u.strip() for u in env[prefix + "BASE_URLS"].split(",") if u.strip()]
            old = list(cfg.get("endpoints") or [{}])
            cfg["endpoints"] = [
                {**(old[i] if i < len(old) else old[-1]), "base_url": url}
                for i, url in enumerate(urls)
            ]
    return raw


def _first_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"
