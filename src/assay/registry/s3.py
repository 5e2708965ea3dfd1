"""A registry in an S3-compatible bucket (MinIO in the cluster) through the ``minio`` client
(``assay.storage.s3.make_minio_client``, shared with every other s3:// reader).

Connection settings come from ``assay.config.MinioSettings`` (MINIO_ENDPOINT, MINIO_ACCESS_KEY,
MINIO_SECRET_KEY, MINIO_SECURE, MINIO_REGION). Object stores have no atomic rename: a version
is uploaded file by file with its card last, and readers treat a version without a card as
absent. A version number is claimed first by a conditional write of ``<name>/.claims/<version>``
(``If-None-Match: *``): of two writers racing for a number exactly one wins, the other takes the
next. Aliases move by compare-and-swap on the pointer's ETag (``If-Match``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from assay.config import MinioSettings
from assay.errors import RegistryError
from assay.registry.base import CARD_FILE, CLAIMS_DIR, Registry
from assay.storage.s3 import describe_error as _describe
from assay.storage.s3 import error_code as _error_code
from assay.storage.s3 import make_minio_client, put_if, read_object, read_with_etag


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
            return read_object(self._client, self.bucket, full)
        except Exception as exc:
            if _error_code(exc) in {"NoSuchKey", "NoSuchBucket"}:
                return None
            raise self._error("read", full, exc) from exc

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

    def _put_if(self, key: str, data: bytes, etag: str | None) -> bool:
        self._ensure_bucket()
        full = self._key(key)
        try:
            return put_if(self._client, self.bucket, full, data, "application/json", etag=etag)
        except Exception as exc:
            raise self._error("write", full, exc) from exc

    def _swap_small(self, key: str, expected: bytes | None, data: bytes) -> bool:
        full = self._key(key)
        try:
            found = read_with_etag(self._client, self.bucket, full)
        except Exception as exc:
            raise self._error("read", full, exc) from exc
        if expected is None:
            return found is None and self._put_if(key, data, None)
        if found is None or found[0] != expected:
            return False
        return self._put_if(key, data, found[1])

    def _publish_version(self, name: str, version: str, files: dict[str, bytes]) -> bool:
        if not self._put_if(f"{name}/{CLAIMS_DIR}/{version}", files[CARD_FILE], None):
            return False
        for filename in sorted(files, key=lambda f: f == CARD_FILE):  # the card last
            content_type = (
                "application/json" if filename.endswith(".json") else ("application/octet-stream")
            )
            self._put(f"{name}/{version}/{filename}", files[filename], content_type)
        return True

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
