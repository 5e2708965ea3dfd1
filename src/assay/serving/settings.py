"""The options of each model server, declared once (pydantic-settings, ``ASSAY_`` environment).

Each field carries its :class:`Flags`; ``python -m assay_serving.<server>`` builds its argparse
parser
from them (:mod:`assay.serving.arguments`) and ``assay serve <server>`` its Typer options
(``assay.commands._serve_options``), so both entry points take the same flags, defaults, bounds
and environment variables. A value given on the command line wins over the environment, which
wins over the default.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, SettingsConfigDict

from assay.config import redis_url_with_password
from assay.errors import ConfigError

ENV_PREFIX = "ASSAY_"
LOG_LEVELS = ("debug", "info", "warning", "error")
SERVED_NAME_ENV = "ASSAY_SERVED_MODEL_NAME"
DEPRECATED_ENV = {"ASSAY_MODEL_NAME": ("name", SERVED_NAME_ENV)}
"""Old variable -> (field, new variable). ``ASSAY_MODEL_NAME`` is the registry model name of
``assay train``; the servers read it for one more release, with a warning."""
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
"""Admits the bias scorer's largest batch (64 passages x 20,000 characters, JSON-escaped)."""
CLASSIFIER_MAX_REQUEST_BYTES = 2 * 1024 * 1024
"""Admits 1,024 rows x 30 features of full-precision JSON numbers (about 0.8 MB)."""
DEFAULT_MAX_BUFFERED_BYTES = 64 * 1024 * 1024
"""Bodies still arriving, across connections: 8 of the scorer's or 32 of the classifier's largest
requests at once, well inside the pods' 512 Mi beside the process's own ~200-300 MB."""


class Flags:
    """How a field is spelled on the command line: canonical name first, then old spellings.

    ``off`` is the flag that sets a boolean field to False (``--no-grpc``).
    """

    __slots__ = ("names", "off")

    def __init__(self, *names: str, off: str | None = None) -> None:
        self.names = names
        self.off = off

    def __repr__(self) -> str:
        return f"Flags({', '.join(self.names)}, off={self.off})"


class ServerSettings(BaseSettings):
    """What every server takes: model name, ports, gRPC switch, logs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        extra="forbid",
        frozen=True,
    )

    name: Annotated[str, Flags("--name", "--model_name")] = Field(
        "model", validation_alias=SERVED_NAME_ENV, description="Model name in the v2 URLs."
    )
    http_port: Annotated[int, Flags("--http-port", "--http_port")] = Field(
        8080, ge=0, le=65535, description="REST port (also /metrics)."
    )
    grpc_port: Annotated[int, Flags("--grpc-port", "--grpc_port")] = Field(
        8081, ge=0, le=65535, description="gRPC port."
    )
    enable_grpc: Annotated[bool, Flags("--enable-grpc", "--enable_grpc", off="--no-grpc")] = Field(
        True, description="Serve gRPC as well as REST."
    )
    log_level: Annotated[str, Flags("--log-level", "--log_level")] = Field(
        "info", description="debug logs every request; info logs a sample."
    )
    log_sample_rate: Annotated[float, Flags("--log-sample-rate", "--log_sample_rate")] = Field(
        0.01, ge=0.0, le=1.0, description="Share of requests logged at info level."
    )
    max_request_bytes: Annotated[int, Flags("--max-request-bytes")] = Field(
        DEFAULT_MAX_REQUEST_BYTES,
        ge=1024,
        description="Largest request body accepted (413 above it, before parsing); also the "
        "gRPC receive limit.",
    )
    max_header_bytes: Annotated[int, Flags("--max-header-bytes")] = Field(
        16 * 1024,
        ge=1024,
        description="Largest request head (request line and headers) accepted (431 above it).",
    )
    header_timeout_s: Annotated[float, Flags("--header-timeout")] = Field(
        10.0,
        ge=0.1,
        description="Seconds a connection gets to send a whole request head (then 408 and close).",
    )
    body_timeout_s: Annotated[float, Flags("--body-timeout")] = Field(
        30.0,
        ge=0.1,
        description="Seconds a request gets to send its whole body after its head (then 408 and "
        "close).",
    )
    max_buffered_bytes: Annotated[int, Flags("--max-buffered-bytes")] = Field(
        DEFAULT_MAX_BUFFERED_BYTES,
        ge=1024,
        description="Request body bytes held at once across all connections still sending "
        "theirs; a request that would go over it is answered 503 with Retry-After.",
    )
    admin_token_file: Annotated[str | None, Flags("--admin-token-file")] = Field(
        None,
        description="File holding the admin token the /v2/repository load/unload endpoints "
        "need (Authorization: Bearer); without it they are disabled.",
    )

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.lower() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}, not {value!r}")
        return value.lower()

    @property
    def debug_logs(self) -> bool:
        return self.log_level.lower() == "debug"


class ClassifierServerSettings(ServerSettings):
    """``assay serve classifier`` / ``python -m assay_serving.classifier``."""

    name: Annotated[str, Flags("--name", "--model_name")] = Field(
        "wdbc-classifier",
        validation_alias=SERVED_NAME_ENV,
        description="Model name in the v2 URLs.",
    )
    model_uri: Annotated[str, Flags("--model", "--model_uri")] = Field(
        "/mnt/models",
        description="A registry model URI <root>/<name>/<version|alias> (file:// or s3://), or "
        "a version folder with model.joblib + model-card.json.",
    )
    workers: Annotated[int, Flags("--workers")] = Field(
        1, ge=1, description="REST worker processes (metrics and reload are per process)."
    )
    max_batch_rows: Annotated[int, Flags("--max-batch-rows", "--max_batch_rows")] = Field(
        1024, ge=1, description="Largest batch a request may send; also the adaptive batch cap."
    )
    max_request_bytes: Annotated[int, Flags("--max-request-bytes")] = Field(
        CLASSIFIER_MAX_REQUEST_BYTES,
        ge=1024,
        description="Largest request body accepted (413 above it, before parsing); also the "
        "gRPC receive limit.",
    )
    max_batch_wait_ms: Annotated[float, Flags("--max-batch-wait-ms", "--max_batch_wait_ms")] = (
        Field(0.0, ge=0.0, description="Extra wait to gather concurrent requests, in ms.")
    )
    fast_rest: Annotated[bool, Flags("--fast-rest", off="--no-fast-rest")] = Field(
        True,
        description="Answer plain v2 JSON inference requests on a lean route (same checks, "
        "metrics and answers) on a uvloop event loop; off: KServe's FastAPI route for every "
        "request, on asyncio's loop.",
    )
    compile: Annotated[bool, Flags("--compile", off="--no-compile")] = Field(
        True,
        description="ONNX Runtime where it reproduces scikit-learn; off: scikit-learn.",
    )
    reload_interval: Annotated[float, Flags("--reload-interval", "--reload_interval")] = Field(
        0.0,
        ge=0.0,
        description="Seconds between checks of the model URI for a new version (0: off).",
    )
    trusted_keys: Annotated[str, Flags("--trusted-keys")] = Field(
        "",
        description="Public keys whose model signatures are accepted: comma-separated PEM "
        "files or folders of *.pub files (a ConfigMap in the cluster); empty: a file:// "
        "registry's own <registry parent>/keys.",
    )
    allow_unsigned_models: Annotated[bool, Flags("--allow-unsigned-models")] = Field(
        False,
        description="Load a model folder that carries no signature (a local build; never in "
        "the cluster).",
    )


class BiasScorerServerSettings(ServerSettings):
    """``assay serve bias-scorer`` / ``python -m assay_serving.bias_scorer``."""

    name: Annotated[str, Flags("--name", "--model_name")] = Field(
        "bias-scorer", validation_alias=SERVED_NAME_ENV, description="Model name in the v2 URLs."
    )
    ensemble_path: Annotated[str | None, Flags("--ensemble", "--raters")] = Field(
        None,
        validation_alias="ASSAY_ENSEMBLE",
        description="Ensemble file (YAML/TOML) naming the raters; default: the bundled simulated "
        "ensemble, whose endpoint is $ASSAY_SIM_URL (http://127.0.0.1:8000 when unset).",
    )
    sim: Annotated[bool, Flags("--sim")] = Field(
        False, description="Start the simulated LLM endpoint in this process and rate with it."
    )
    max_batch_rows: Annotated[int, Flags("--max-batch-rows", "--max_batch_rows")] = Field(
        64,
        ge=1,
        validation_alias="ASSAY_SCORER_MAX_BATCH",
        description="Most passages one request may send.",
    )
    max_text_chars: Annotated[int, Flags("--max-text-chars", "--max_text_chars")] = Field(
        20_000,
        ge=1,
        validation_alias="ASSAY_SCORER_MAX_TEXT_CHARS",
        description="Longest passage accepted, in characters.",
    )
    max_concurrency: Annotated[int, Flags("--max-concurrency", "--max_concurrency")] = Field(
        8,
        ge=1,
        validation_alias="ASSAY_SCORER_MAX_CONCURRENCY",
        description="Passages rated at once, across requests.",
    )
    rater_deadline_s: Annotated[float, Flags("--deadline", "--rater_deadline_s")] = Field(
        30.0,
        ge=0.1,
        validation_alias="ASSAY_SCORER_DEADLINE_S",
        description="Seconds a rater gets per passage, retries included.",
    )
    request_deadline_s: Annotated[float, Flags("--request-deadline", "--request_deadline_s")] = (
        Field(
            100.0,
            ge=0.1,
            validation_alias="ASSAY_SCORER_REQUEST_DEADLINE_S",
            description="Seconds a whole request gets (below the gateway's 120 s); raters still "
            "rating then are reported missing with reason 'timeout'.",
        )
    )
    max_queued_passages: Annotated[int, Flags("--max-queued-passages", "--max_queued_passages")] = (
        Field(
            256,
            ge=1,
            validation_alias="ASSAY_SCORER_MAX_QUEUED",
            description="Passages admitted at once, across requests; beyond it a request gets 429 "
            "with Retry-After.",
        )
    )
    max_passage_tokens: Annotated[int, Flags("--max-passage-tokens", "--max_passage_tokens")] = (
        Field(
            24_000,
            ge=1,
            validation_alias="ASSAY_SCORER_MAX_PASSAGE_TOKENS",
            description="Most prompt tokens one passage may cost a rater, bounded by its UTF-8 "
            "bytes (a byte-level BPE makes at most one token per byte); a longer passage is a "
            "400.",
        )
    )
    daily_budget_usd: Annotated[float | None, Flags("--daily-budget", "--daily_budget_usd")] = (
        Field(
            None,
            ge=0.0,
            validation_alias="ASSAY_LLM_DAILY_BUDGET_USD",
            description="Stop calling raters once this many USD are spent in a UTC day "
            "(default: no cap).",
        )
    )
    caller_keys_file: Annotated[str | None, Flags("--caller-keys-file")] = Field(
        None,
        validation_alias="ASSAY_SCORER_CALLER_KEYS_FILE",
        description="YAML file of the callers and their API keys (mounted from a Secret; see "
        "docs/bias-scorer-auth.md): inference then needs 'Authorization: Bearer <key>' and each "
        "caller has its own daily budget and queue share. Unset: the server does not start "
        "unless --allow-anonymous is given.",
    )
    allow_anonymous: Annotated[bool, Flags("--allow-anonymous")] = Field(
        False,
        validation_alias="ASSAY_SCORER_ALLOW_ANONYMOUS",
        description="Local development only: serve without a caller key file; every request is "
        "the caller 'anonymous', limited to --anonymous-daily-budget and --anonymous-max-queued.",
    )
    anonymous_daily_budget_usd: Annotated[float, Flags("--anonymous-daily-budget")] = Field(
        1.0,
        ge=0.0,
        validation_alias="ASSAY_SCORER_ANONYMOUS_DAILY_BUDGET_USD",
        description="USD the anonymous caller (--allow-anonymous) may spend in a UTC day.",
    )
    anonymous_max_queued_passages: Annotated[int, Flags("--anonymous-max-queued")] = Field(
        16,
        ge=1,
        validation_alias="ASSAY_SCORER_ANONYMOUS_MAX_QUEUED",
        description="Passages the anonymous caller (--allow-anonymous) may have in progress.",
    )
    caller_daily_budget_usd: Annotated[float | None, Flags("--caller-daily-budget")] = Field(
        None,
        ge=0.0,
        validation_alias="ASSAY_SCORER_CALLER_DAILY_BUDGET_USD",
        description="USD one caller may spend in a UTC day unless the key file sets its own "
        "(default: only the scorer's --daily-budget).",
    )
    caller_max_queued_passages: Annotated[int, Flags("--caller-max-queued")] = Field(
        64,
        ge=1,
        validation_alias="ASSAY_SCORER_CALLER_MAX_QUEUED",
        description="Passages one caller may have in progress unless the key file sets its own "
        "share; beyond it that caller gets 429 (a caller with nothing in progress is admitted).",
    )
    redis_url: Annotated[str | None, Flags("--redis-url")] = Field(
        None,
        validation_alias="ASSAY_REDIS_URL",
        description="Redis (redis://host:port/db) holding the rate limits, the daily budget and "
        "the cache shared by every replica; it must answer at start-up (fail closed). Unset: "
        "each process has its own.",
    )
    redis_password: Annotated[SecretStr | None, Flags()] = Field(
        None,
        validation_alias="ASSAY_REDIS_PASSWORD",
        description="Password of the --redis-url Redis (requirepass; in the cluster from Secret "
        "assay-redis), unless the URL carries its own. Environment only: a command-line value "
        "would show in the process list.",
    )

    @property
    def redis_connection_url(self) -> str | None:
        """--redis-url authenticating with ASSAY_REDIS_PASSWORD (None: no shared Redis)."""
        return redis_url_with_password(self.redis_url, self.redis_password)


S = TypeVar("S", bound=ServerSettings)


def flags_of(field: FieldInfo) -> Flags:
    found = [item for item in field.metadata if isinstance(item, Flags)]
    if len(found) != 1:
        raise TypeError(f"a server settings field needs exactly one Flags, got {found}")
    return found[0]


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable that sets the field."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else ENV_PREFIX + name.upper()


def bounds_of(field: FieldInfo) -> tuple[float | None, float | None]:
    """(minimum, maximum) from the field's ``ge``/``le`` constraints."""
    low = next((m.ge for m in field.metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in field.metadata if getattr(m, "le", None) is not None), None)
    return low, high


def help_text(name: str, field: FieldInfo) -> str:
    return f"{field.description} (env {env_name(name, field)})"


def option_fields(settings: type[ServerSettings]) -> Iterator[tuple[str, FieldInfo, Flags]]:
    """Every command-line option of a server, in declaration order: (field name, field, flags).
    A field whose ``Flags()`` names no flag is read from the environment only."""
    for name, field in settings.model_fields.items():
        flags = flags_of(field)
        if flags.names:
            yield name, field, flags


def settings_from(settings: type[S], given: Mapping[str, Any]) -> S:
    """The server's settings: ``given`` (command-line values), then environment, then defaults.

    A bad value is a :class:`ConfigError` naming its flag and environment variable.
    """
    given = {**_deprecated_environment(given), **given}
    by_key = {_init_key(name, settings.model_fields[name]): value for name, value in given.items()}
    try:
        return settings(**by_key)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = str(error["loc"][0]) if error["loc"] else ""
            field = _field_by_key(settings, key)
            where = (" / ".join([*flags_of(field[1]).names[:1], env_name(*field)]) if field
                     else key or "value")  # fmt: skip
            problems.append(f"{where}: {error['msg']}")
        raise ConfigError("; ".join(problems)) from None


def _deprecated_environment(given: Mapping[str, Any]) -> dict[str, Any]:
    """Values set only through a deprecated variable, each with a warning on stderr."""
    found = {}
    for old, (field, new) in DEPRECATED_ENV.items():
        if os.environ.get(old) and not os.environ.get(new) and field not in given:
            print(
                f"warning: {old} is deprecated for the servers and will be removed in the next "
                f"release; use {new} (or --name).",
                file=sys.stderr,
            )
            found[field] = os.environ[old]
    return found


def _init_key(name: str, field: FieldInfo) -> str:
    """The keyword a field is set by: its environment alias when it has one (the field name would
    also make pydantic-settings read ``ASSAY_<NAME>``, another server's variable)."""
    alias = field.validation_alias
    return alias if isinstance(alias, str) else name


def _field_by_key(settings: type[ServerSettings], key: str) -> tuple[str, FieldInfo] | None:
    for name, field in settings.model_fields.items():
        if key in (name, field.validation_alias):
            return name, field
    return None
