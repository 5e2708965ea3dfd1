"""Deploying a registry version whose model file was swapped after registration is refused
before the cluster is touched.

No Kubernetes cluster or MinIO exists here: FakeCustomObjectsApi (deploy_fakes.py) stands in for
the API server, and the version lives in a real file:// registry in tmp_path (the check reads it
through the same Registry API it uses for s3://, tested against moto in tests/integration).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _hostile import code_running_pickle
from _signing import SIGNER, TRUST, write_public_key
from deploy_fakes import FakeClock, FakeCustomObjectsApi, becomes_ready_after

import assay.deploy.verify as deploy_verify
from assay.deploy import DeployError, DeploySpec, deploy_verified
from assay.registry import FileRegistry, open_registry
from assay_components.deploy import deploy_inference_service

NAME = "wdbc-classifier"
V1 = f"s3://assay-models/registry/{NAME}/v1"


@pytest.fixture
def registry(tmp_path: Path) -> FileRegistry:
    folder = tmp_path / "build"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(b"genuine model")
    (folder / "model-card.json").write_text(json.dumps({"estimator": "adaboost"}))
    reg = open_registry(f"file://{tmp_path / 'registry'}")
    assert isinstance(reg, FileRegistry)
    reg.register(NAME, folder, SIGNER)
    return reg


def _tamper(registry: FileRegistry, tmp_path: Path) -> None:
    evil = code_running_pickle(tmp_path / "pickle-ran")
    (registry.path / NAME / "v1" / "model.joblib").write_bytes(evil)


def _deploy_v1(registry: FileRegistry, api: FakeCustomObjectsApi, clock: FakeClock) -> object:
    return deploy_verified(
        DeploySpec.for_model_uri(V1),
        registry=registry,
        trust=TRUST,
        api=api,
        clock=clock,
        sleep=clock.sleep,
    )


def test_deploy_of_a_verified_version_rolls_out(registry: FileRegistry, clock: FakeClock) -> None:
    api = FakeCustomObjectsApi(controller=becomes_ready_after(1))
    spec = DeploySpec.for_model_uri(V1)
    result = deploy_verified(
        spec, registry=registry, trust=TRUST, api=api, clock=clock, sleep=clock.sleep
    )
    assert result.action == "created"


def test_deploy_of_a_tampered_model_is_refused_before_the_cluster_is_touched(
    registry: FileRegistry, clock: FakeClock, tmp_path: Path
) -> None:
    _tamper(registry, tmp_path)
    api = FakeCustomObjectsApi(controller=becomes_ready_after(1))
    with pytest.raises(DeployError, match="changed after it was signed") as caught:
        _deploy_v1(registry, api, clock)
    assert registry.card(NAME, "v1")["model_sha256"] in str(caught.value)
    assert api.calls == []
    assert not (tmp_path / "pickle-ran").exists()


def test_deploy_of_an_unsigned_version_is_refused(registry: FileRegistry, clock: FakeClock) -> None:
    """The attack: strip the signature (and the card's digest) so the pickle loads unverified."""
    (registry.path / NAME / "v1" / "signature.json").unlink()
    card_path = registry.path / NAME / "v1" / "model-card.json"
    card = json.loads(card_path.read_text())
    del card["model_sha256"], card["model_size"], card["registered_at"]
    card_path.write_text(json.dumps(card))
    api = FakeCustomObjectsApi()
    with pytest.raises(DeployError, match="unsigned"):
        _deploy_v1(registry, api, clock)
    assert api.calls == []


def test_deploy_step_component_refuses_a_tampered_model(
    registry: FileRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KFP component's own body, with its registry and cluster replaced by the fakes."""
    _tamper(registry, tmp_path)
    api = FakeCustomObjectsApi(controller=becomes_ready_after(1))
    monkeypatch.setattr(deploy_verify, "open_registry", lambda root: registry)
    monkeypatch.setenv("ASSAY_TRUSTED_KEYS", str(write_public_key(tmp_path / "trusted")))
    monkeypatch.setattr("assay.deploy.rollout.kubernetes_api", lambda: api)
    with pytest.raises(DeployError, match="Refusing to deploy"):
        deploy_inference_service.python_func(model_uri=V1)
    assert api.calls == []
