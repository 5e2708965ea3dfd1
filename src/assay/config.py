"""Typed settings read from the environment once and passed explicitly.

Nothing here reads the environment at import time: call ``Settings()`` (or a section such as
``MinioSettings()``) where a command starts, then pass the object down.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

import assay
from assay.errors import ConfigError, UsageError

PIPELINE_IMAGE = f"ghcr.io/assay-ml/assay:{assay.__version__}"
"""The image every pipeline step runs in by default (images/Dockerfile, target ``pipeline``),
tagged with assay's version (images/build.sh tags it so); the cluster's copy of this reference is
manifests/base/kustomization.yaml ``images:`` (a test checks that the two agree).
``ASSAY_IMAGE`` or ``assay compile --image`` picks another."""

CLASSIFIER_IMAGE = f"ghcr.io/assay-ml/assay-classifier:{assay.__version__}"
"""The classifier server's lean image (images/Dockerfile, target ``classifier``), same tag."""


def default_registry_uri() -> str:
    """The file:// registry under the current directory's ``.assay/registry``."""
    return "file://" + str(Path(".assay/registry").absolute())


class MinioSettings(BaseSettings):
    """Connection to MinIO (or any S3-compatible store) for s3:// registry roots."""

    model_config = SettingsConfigDict(env_prefix="MINIO_", extra="ignore")

    endpoint: str | None = Field(
        None, description="host:port of the S3 API; required for any s3:// location"
    )
    access_key: SecretStr | None = None
    secret_key: SecretStr | None = None
    secure: bool = Field(False, description="use https")
    region: str | None = None


class ModelTrustSettings(BaseSettings):
    """Who signs model versions and whose signatures readers accept (read once at the edge)."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    signing_key: str = Field(
        "",
        description="PEM Ed25519 private key of the register step (a Secret mounted in that "
        "step only); empty: a file:// registry uses <registry parent>/keys/signing-key.pem, "
        "made on first use",
    )
    trusted_keys: str = Field(
        "",
        description="comma-separated public keys (PEM files, or folders of *.pub files) whose "
        "signatures are accepted; empty: a file:// registry's <registry parent>/keys",
    )
    allow_unsigned_models: bool = Field(
        False, description="load unsigned model folders (local experiments only)"
    )


class Settings(BaseSettings):
    """Process-wide settings; every field can be set through an ``ASSAY_*`` variable."""

    model_config = SettingsConfigDict(env_prefix="ASSAY_", extra="ignore")

    registry: str = Field(default_factory=default_registry_uri, description="registry root URI")
    cache: str = Field("memory://", description="LLM response cache: memory:// or redis://...")
    redis_url: str | None = Field(
        None,
        description="Redis shared by every process for LLM rate limits, the daily budget and "
        "(unless ASSAY_CACHE names another) the response cache; unset: per process",
    )
    redis_password: SecretStr | None = Field(
        None,
        description="password of the Redis at ASSAY_REDIS_URL (requirepass; in the cluster from "
        "Secret assay-redis), unless the URL carries its own",
    )
    log_json: bool = Field(False, description="emit JSON log lines instead of console lines")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    seed: int = 42
    ray_address: str | None = Field(
        None, validation_alias="RAY_ADDRESS", description="Ray cluster; local Ray when unset"
    )
    image: str = Field(
        PIPELINE_IMAGE,
        pattern=r"^\S+$",
        description="container image of every pipeline step (the compiled IR's executors)",
    )

    @property
    def shared_redis_url(self) -> str | None:
        """ASSAY_REDIS_URL with ASSAY_REDIS_PASSWORD as its credentials (None: no shared Redis)."""
        return redis_url_with_password(self.redis_url, self.redis_password)

    @property
    def cache_uri(self) -> str:
        """ASSAY_CACHE when it names a cache, else the shared Redis, else memory://."""
        return cache_uri(self.cache, self.shared_redis_url)


def redis_url_with_password(url: str | None, password: SecretStr | str | None) -> str | None:
    """``url`` authenticating with ``password`` (``redis://:<password>@host...``; a ``unix://``
    socket takes it as the ``password`` query parameter). A URL that already carries a password
    keeps it; one different from ``password`` is a :class:`ConfigError` (which one is meant?)."""
    secret = password.get_secret_value() if isinstance(password, SecretStr) else password
    if url is None or not secret:
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    if parts.scheme == "unix":
        own = query.get("password")
    else:
        own = None if parts.password is None else unquote(parts.password)
    if own is not None:
        if own != secret:
            raise ConfigError(
                "ASSAY_REDIS_URL carries a password and ASSAY_REDIS_PASSWORD is another: set one"
            )
        return url
    if parts.scheme == "unix":  # no netloc: urlunsplit would drop the "//"
        return f"{url.partition('?')[0]}?{urlencode({**query, 'password': secret})}"
    user = quote(parts.username or "", safe="")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(secret, safe='')}@{host}"))


def cache_uri(cache: str | None, redis_url: str | None) -> str:
    """The cache to open: an explicit non-memory ``cache`` wins; else ``redis_url``; else memory."""
    if cache and cache not in ("memory", "memory://"):
        return cache
    return redis_url or "memory://"


def invalid_option(exc: ValidationError) -> UsageError:
    """The first problem of a settings validation error as one sentence: ``Invalid <field>:
    <why>.``"""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "option"
    message = str(first["msg"]).removeprefix("Value error, ")
    return UsageError(f"Invalid {where}: {message}.")
