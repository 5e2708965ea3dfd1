"""KServe's storage initializer downloads by key prefix: the attack and its two fences.

The attack: with ``storageUri: s3://.../wdbc-classifier/v1`` (no trailing '/'), objects named
``v1model.joblib`` or ``v1-extra/...`` beside the version folder land in /mnt/models too, the
first one over the real ``model.joblib``. ``kserve_download`` below replays the listing rule of
KServe's storage initializer (``Storage._download_s3``: ``bucket_path = parsed.path.lstrip("/")``,
every object whose key starts with it, the prefix removed from the key), since the initializer's
package (kserve-storage) is not installed here; it runs against moto's S3 server through the
real minio client. The fences: the deploy step writes the URI with its trailing '/', and the
server refuses a folder holding anything but the version's two files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from _hostile import code_running_pickle
from _s3_support import model_dir, put_raw
from _signing import SIGNER, TRUST

from assay.deploy import DeploySpec
from assay.errors import RegistryError
from assay.registry.s3 import S3Registry
from assay.serving.classifier_versions import InvalidModelError, load_folder

pytestmark = [pytest.mark.s3, pytest.mark.integration]
NAME = "wdbc-classifier"


def kserve_download(client: Any, uri: str, dest: Path) -> list[str]:
    """What KServe's storage initializer puts in ``dest`` for ``uri`` (see the module doc)."""
    parsed = urlparse(uri)
    bucket_path = parsed.path.lstrip("/")
    written = []
    for obj in client.list_objects(parsed.netloc, prefix=bucket_path, recursive=True):
        if obj.object_name.endswith("/"):
            continue
        target_key = re.sub(r"^/", "", obj.object_name.replace(bucket_path, "", 1))
        target = dest / target_key
        target.parent.mkdir(parents=True, exist_ok=True)
        client.fget_object(parsed.netloc, obj.object_name, str(target))
        written.append(target_key)
    return sorted(written)


def _plant(registry: S3Registry, key: str, data: bytes) -> None:
    put_raw(registry, f"{NAME}/{key}", data)


def test_siblings_of_the_version_folder_never_reach_the_served_folder(
    registry: S3Registry, tmp_path: Path
) -> None:
    version = registry.register(NAME, model_dir(tmp_path / "m", b"the registered model"), SIGNER)
    marker = tmp_path / "pwned"
    _plant(registry, f"{version}model.joblib", code_running_pickle(marker))
    _plant(registry, f"{version}-extra/evil.joblib", code_running_pickle(marker))
    folder_uri = f"{registry.root}/{NAME}/{version}"

    deployed = DeploySpec.for_model_uri(folder_uri).storage_uri
    assert deployed.endswith(f"/{version}/")
    served = tmp_path / "mnt-models"
    assert kserve_download(registry._client, deployed, served) == [
        "model-card.json",
        "model.joblib",
        "signature.json",
    ]
    assert (served / "model.joblib").read_bytes() == b"the registered model"

    without_slash = tmp_path / "mnt-models-no-slash"
    landed = kserve_download(registry._client, folder_uri, without_slash)
    assert "-extra/evil.joblib" in landed  # the attack works on a URI without the '/' ...
    with pytest.raises((InvalidModelError, RegistryError)):
        load_folder(without_slash, TRUST, compile=False)  # ... and the server refuses it
    assert not marker.exists()  # no planted pickle ran


def test_an_object_added_inside_a_version_folder_fails_verification(
    registry: S3Registry, tmp_path: Path
) -> None:
    version = registry.register(NAME, model_dir(tmp_path / "m", b"model"), SIGNER)
    assert registry.verify(NAME, version, TRUST).startswith("ok")
    _plant(registry, f"{version}/extra.pkl", b"not registered")
    with pytest.raises(RegistryError, match=r"extra\.pkl"):
        registry.verify(NAME, version, TRUST)


def test_the_server_refuses_a_folder_with_a_file_beside_the_version_files(tmp_path: Path) -> None:
    folder = model_dir(tmp_path / "served", b"model")
    (folder / "other.joblib").write_bytes(b"x")
    with pytest.raises(InvalidModelError, match=r"other\.joblib"):
        load_folder(folder, TRUST, compile=False)
