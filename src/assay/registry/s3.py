"""A registry in an S3-compatible bucket (MinIO in the cluster) through the ``minio`` client.

Connection settings come from ``assay.config.MinioSettings`` (MINIO_ENDPOINT, MINIO_ACCESS_KEY,
MINIO_SECRET_KEY, MINIO_SECURE, MINIO_REGION). Object stores have no atomic rename: a version
is uploaded file by file with its card last, and readers treat a version without a card as
absent. Two writers racing for the same number are detected by re-reading the card afterwards.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from assay.config import MinioSettings
from assay.errors import RegistryError
from assay.registry.base import CARD_FILE, MODEL_FILE, Registry


class S3Registry(Registry):
    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        settings: MinioSettings | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._client = client if client is not None else make_minio_client(settings)
        self._bucket_checked = False

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix)
        start = len(self.prefix) + 1 if self.prefix else 0
        try:
            return [
                obj.object_name[start:]
                for obj in self._client.list_objects(self.bucket, prefix=full, recursive=True)
                if not obj.is_dir
            ]
        except Exception as exc:
            if _error_code(exc) == "NoSuchBucket":
                return []
            raise self._error("list", full, exc) from exc

    def _read_bytes(self, key: str) -> bytes | None:
        full = self._key(key)
        try:
            response = self._client.get_object(self.bucket, full)
        except Exception as exc:
            if _error_code(exc) in {"NoSuchKey", "NoSuchBucket"}:
                return None
            raise self._error("read", full, exc) from exc
        try:
            data: bytes = response.read()
            return data
        finally:
            response.close()
            response.release_conn()

    def _put(self, key: str, data: bytes, content_type: str) -> None:
        self._ensure_bucket()
        full = self._key(key)
        try:
            self._client.put_object(
                self.bucket, full, io.BytesIO(data), len(data), content_type=content_type
            )
        except Exception as exc:
            raise self._error("write", full, exc) from exc

    def _write_small(self, key: str, data: bytes) -> None:
        self._put(key, data, "application/json")

    def _publish_version(self, name: str, version: str, model_dir: Path, card: bytes) -> bool:
        card_key = f"{name}/{version}/{CARD_FILE}"
        if self._read_bytes(card_key) is not None:
            return False
        self._put(
            f"{name}/{version}/{MODEL_FILE}",
            (model_dir / MODEL_FILE).read_bytes(),
            "application/octet-stream",
        )
        self._put(card_key, card, "application/json")
        return self._read_bytes(card_key) == card

    def _fetch(self, key: str, dest: Path) -> None:
        full = self._key(key)
        try:
            self._client.fget_object(self.bucket, full, str(dest))
        except Exception as exc:
            if _error_code(exc) in {"NoSuchKey", "NoSuchBucket"}:
                raise RegistryError(
                    f"Registry object s3://{self.bucket}/{full} is missing."
                ) from exc
            raise self._error("download", full, exc) from exc

    def _ensure_bucket(self) -> None:
        if self._bucket_checked:
            return
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except Exception as exc:
            if _error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise self._error("create bucket", self.bucket, exc) from exc
        self._bucket_checked = True

    def _error(self, action: str, key: str, exc: Exception) -> RegistryError:
        return RegistryError(
            f"S3 registry could not {action} s3://{self.bucket}/{key}: {_describe(exc)}."
        )


def make_minio_client(settings: MinioSettings | None) -> Any:
    """A ``minio.Minio`` client from MINIO_* settings (bounded retries and connect timeout)."""
    import urllib3
    from minio import Minio

    settings = settings or MinioSettings(**{})
    endpoint = settings.endpoint
    for scheme in ("http://", "https://"):
        if endpoint.startswith(scheme):
            endpoint = endpoint[len(scheme) :]
    return Minio(
        endpoint.rstrip("/"),
        access_key=settings.access_key.get_secret_value() if settings.access_key else None,
        secret_key=settings.secret_key.get_secret_value() if settings.secret_key else None,
        secure=settings.secure,
        region=settings.region,
        http_client=urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10.0, read=300.0),
            retries=urllib3.Retry(
                total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]
            ),
        ),
    )


def _error_code(exc: Exception) -> str | None:
    return getattr(exc, "code", None)


def _describe(exc: Exception) -> str:
    code = _error_code(exc)
    if code:
        return f"{code} ({getattr(exc, 'message', '') or exc})"
    return f"{type(exc).__name__}: {exc}"
