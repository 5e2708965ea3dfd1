"""``s3://bucket/key`` locations through the ``minio`` client (settings: ``MinioSettings``).

``local_copy(location)`` is what readers use: a local path passes through unchanged, an
``s3://`` object is downloaded to a temporary folder, and an ``s3://`` prefix (a "folder") is
downloaded with everything under it; the copy is removed when the ``with`` block ends. A missing
bucket, object or prefix raises :class:`StorageError` naming the URI.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from assay.config import MinioSettings
from assay.errors import AssayError

SCHEME = "s3://"
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchObject"})


class StorageError(AssayError):
    """An ``s3://`` location is malformed, missing or unreachable; the message names it."""

    exit_code = 2


@dataclass(frozen=True)
class S3Location:
    """A bucket and a key (or key prefix, without leading slash)."""

    bucket: str
    key: str = ""

    @property
    def uri(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def child(self, name: str) -> S3Location:
        return S3Location(self.bucket, f"{self.key.rstrip('/')}/{name}" if self.key else name)


def is_s3_uri(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(SCHEME)


def parse_s3_uri(uri: str) -> S3Location:
    """``s3://bucket/key`` -> S3Location; StorageError when it names no bucket."""
    if not is_s3_uri(uri):
        raise StorageError(f"{uri!r} is not an s3:// URI (use s3://bucket/key).")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    if not bucket:
        raise StorageError(f"{uri!r} names no bucket; use s3://bucket/key.")
    return S3Location(bucket, key.strip("/"))


def make_minio_client(settings: MinioSettings | None) -> Any:
    """A ``minio.Minio`` client from MINIO_* settings (bounded retries and connect timeout)."""
    import urllib3
    from minio import Minio

    settings = settings or MinioSettings(**{})
    endpoint = settings.endpoint
    if not endpoint:
        raise StorageError(
            "s3:// locations need MINIO_ENDPOINT (host:port of the S3 API, e.g. "
            "localhost:9000), and it is not set."
        )
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


def error_code(exc: Exception) -> str | None:
    """The S3 error code of a minio ``S3Error`` (None for other exceptions)."""
    return getattr(exc, "code", None)


def describe_error(exc: Exception) -> str:
    code = error_code(exc)
    if code:
        return f"{code} ({getattr(exc, 'message', '') or exc})"
    return f"{type(exc).__name__}: {exc}"


def read_object(client: Any, bucket: str, key: str) -> bytes:
    """One object's bytes, its connection released; the client's exception when it fails."""
    response = client.get_object(bucket, key)
    try:
        data: bytes = response.read()
        return data
    finally:
        response.close()
        response.release_conn()


PRECONDITION_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})


def put_if(
    client: Any,
    bucket: str,
    key: str,
    data: bytes,
    content_type: str,
    *,
    etag: str | None = None,
) -> bool:
    """Write ``key`` only if it is absent (``etag`` None: ``If-None-Match: *``) or still holds
    the object with ``etag`` (``If-Match``); False when another writer got there first.

    S3 conditional writes (MinIO, AWS since 2024, moto) make the claim atomic on the server.
    minio's public ``put_object`` turns unknown headers into user metadata, so this goes
    through its ``_put_object``, which sends headers as given (minio is pinned below 8).
    """
    condition = {"If-None-Match": "*"} if etag is None else {"If-Match": etag}
    headers = {"Content-Type": content_type, **condition}
    try:
        client._put_object(bucket, key, data, headers)
    except Exception as exc:
        if error_code(exc) in PRECONDITION_CODES:
            return False
        raise
    return True


def read_with_etag(client: Any, bucket: str, key: str) -> tuple[bytes, str] | None:
    """An object's bytes and the ETag they were read at, or None when it does not exist."""
    try:
        response = client.get_object(bucket, key)
    except Exception as exc:
        if error_code(exc) in {"NoSuchKey", "NoSuchBucket"}:
            return None
        raise
    try:
        return response.read(), str(response.headers.get("ETag", ""))
    finally:
        response.close()
        response.release_conn()


class ObjectStore:
    """Small-object operations on one S3 endpoint; every failure is a StorageError naming
    the URI it concerns."""

    def __init__(self, client: Any = None, settings: MinioSettings | None = None) -> None:
        self.client = client if client is not None else make_minio_client(settings)

    def list_keys(self, prefix: S3Location) -> list[str]:
        """Keys of the objects under ``prefix`` (recursive, sorted); [] for a missing bucket."""
        try:
            objects = self.client.list_objects(prefix.bucket, prefix=prefix.key, recursive=True)
            return sorted(obj.object_name for obj in objects if not obj.is_dir)
        except Exception as exc:
            if error_code(exc) == "NoSuchBucket":
                return []
            raise _failed("list", prefix, exc) from exc

    def get_bytes(self, where: S3Location) -> bytes:
        try:
            return read_object(self.client, where.bucket, where.key)
        except Exception as exc:
            raise _failed("read", where, exc) from exc

    def put_bytes(self, where: S3Location, data: bytes, content_type: str) -> None:
        """Write one object (S3 makes it visible whole or not at all)."""
        try:
            self.client.put_object(
                where.bucket, where.key, io.BytesIO(data), len(data), content_type=content_type
            )
        except Exception as exc:
            raise _failed("write", where, exc) from exc

    def bucket_exists(self, bucket: str) -> bool:
        try:
            return bool(self.client.bucket_exists(bucket))
        except Exception as exc:
            raise _failed("check", S3Location(bucket), exc) from exc

    def download(self, where: S3Location, dest_dir: Path) -> Path:
        """The object ``where`` to ``dest_dir/<its name>``, or, when no such object exists,
        every object under the prefix ``where/`` to ``dest_dir/<prefix name>/...``."""
        if where.key and not where.key.endswith("/") and self._is_object(where):
            dest = dest_dir / PurePosixPath(where.key).name
            self._fetch(where, dest)
            return dest
        prefix = where.key.rstrip("/") + "/" if where.key else ""
        keys = self.list_keys(S3Location(where.bucket, prefix))
        if not keys:
            if not self.bucket_exists(where.bucket):
                raise StorageError(f"{where.uri}: bucket {where.bucket!r} does not exist.")
            raise StorageError(f"{where.uri} does not exist (no object or folder of that name).")
        folder = dest_dir / (PurePosixPath(where.key.rstrip("/")).name or where.bucket)
        for key in keys:
            relative = PurePosixPath(key[len(prefix) :])
            if ".." in relative.parts:
                raise StorageError(f"{where.uri}: refusing the object name {key!r}.")
            self._fetch(S3Location(where.bucket, key), folder / relative)
        return folder

    def _is_object(self, where: S3Location) -> bool:
        try:
            self.client.stat_object(where.bucket, where.key)
            return True
        except Exception as exc:
            if error_code(exc) in MISSING_CODES or _is_404(exc):
                return False
            raise _failed("read", where, exc) from exc

    def _fetch(self, where: S3Location, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.fget_object(where.bucket, where.key, str(dest))
        except Exception as exc:
            raise _failed("download", where, exc) from exc


@contextmanager
def local_copy(location: str | Path, store: ObjectStore | None = None) -> Iterator[Path]:
    """A local path for ``location``: itself when local, else a temporary download of the
    ``s3://`` object or prefix (removed afterwards)."""
    if not is_s3_uri(location):
        yield Path(location)
        return
    where = parse_s3_uri(str(location))
    with tempfile.TemporaryDirectory(prefix="assay-s3-") as tmp:
        yield (store or ObjectStore()).download(where, Path(tmp))


def _is_404(exc: Exception) -> bool:
    response = getattr(exc, "response", None)
    return getattr(response, "status", None) == 404


def _failed(action: str, where: S3Location, exc: Exception) -> StorageError:
    if error_code(exc) == "NoSuchBucket":
        return StorageError(f"{where.uri}: bucket {where.bucket!r} does not exist.")
    if error_code(exc) in MISSING_CODES:
        return StorageError(f"{where.uri} does not exist.")
    return StorageError(f"Could not {action} {where.uri}: {describe_error(exc)}.")
