"""Fixtures for the serving tests: a contract-shaped model in a registry, and a real server.

The model is the contract's exported pipeline (StandardScaler -> ColumnTransformer passthrough
of 15 columns -> AdaBoost), trained on scikit-learn's WDBC copy with malignant re-encoded to 1,
registered through assay.registry. The server is ``python -m assay_serving.classifier`` in a child
process on 127.0.0.1 with free ports.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _bias_scorer_support import Scorer
from _bias_scorer_support import launch as launch_scorer
from _serving_support import (
    CLI_ENTRY,
    MAX_REQUEST_BYTES,
    MODEL_NAME,
    MODULE_ENTRY,
    ModelFixture,
    RunningServer,
    launch,
    wait_ready,
    write_admin_token,
    write_model_folder,
)
from _signing import SIGNER


@pytest.fixture(scope="session")
def registered_models(tmp_path_factory: pytest.TempPathFactory) -> ModelFixture:
    """v1 (50 stumps, threshold 0.3) and v2 (20 stumps, threshold 0.5); production -> v1."""
    from assay.registry import open_registry

    base = tmp_path_factory.mktemp("serving-models")
    v1 = write_model_folder(base / "build-v1", n_estimators=50, threshold=0.3)
    v2 = write_model_folder(base / "build-v2", n_estimators=20, threshold=0.5)
    registry = open_registry(f"file://{base / 'registry'}")
    assert registry.register(MODEL_NAME, v1, SIGNER) == "v1"
    assert registry.register(MODEL_NAME, v2, SIGNER) == "v2"
    registry.set_alias(MODEL_NAME, "production", "v1")
    return ModelFixture(base / "registry", v1, v2)


@pytest.fixture(scope="session")
def served_registry(
    registered_models: ModelFixture, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A copy of the registry for the shared server: the reload test moves its aliases."""
    import shutil

    root = tmp_path_factory.mktemp("served") / "registry"
    shutil.copytree(registered_models.registry_root, root)
    return root


@pytest.fixture(scope="session")
def servers(
    served_registry: Path, registered_models: ModelFixture, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningServer]]:
    """Three servers started together (their start-up overlaps):

    - "module": ``python -m assay_serving.classifier`` (the image's entry point) on
      ``<served_registry>/wdbc-classifier/production``, with an admin token for the
      repository endpoints;
    - "cli": ``assay serve classifier`` on a copy of the v1 build folder (a plain folder
      source), polling it for changes every 0.3 s, logging every request (debug), no admin token;
    - "hardened": ``python -m assay_serving.classifier`` on a folder whose card records the
      features'
      training ranges, with an admin token and a request-size limit of ``MAX_REQUEST_BYTES``.
    """
    logs = tmp_path_factory.mktemp("serving-servers")
    uri = f"file://{served_registry}/{MODEL_NAME}/production"
    cli_folder = shutil.copytree(registered_models.v1_dir, logs / "cli-model")
    ranged = write_model_folder(logs / "ranged-model", n_estimators=20, ranges=True)
    token, token_file = write_admin_token(logs)
    admin = f"--admin-token-file={token_file}"
    started = {
        "module": launch(MODULE_ENTRY, "--model_uri", uri, logs / "module.log", admin),
        "hardened": launch(
            MODULE_ENTRY,
            "--model_uri",
            str(ranged),
            logs / "hardened.log",
            admin,
            f"--max-request-bytes={MAX_REQUEST_BYTES}",
        ),
        "cli": launch(
            CLI_ENTRY,
            "--model",
            str(cli_folder),
            logs / "cli.log",
            "--reload-interval=0.3",
            "--log-level=debug",
        ),
    }
    started["module"].admin_token = started["hardened"].admin_token = token
    try:
        for running in started.values():
            wait_ready(running)
        yield started
    finally:
        for running in started.values():
            running.stop()


@pytest.fixture(scope="session")
def server(servers: dict[str, RunningServer]) -> RunningServer:
    """The shared ``python -m assay_serving.classifier`` server; the reload test leaves it on v1."""
    return servers["module"]


@pytest.fixture(scope="session")
def hardened(servers: dict[str, RunningServer]) -> RunningServer:
    """The classifier with a ranged card, an admin token and a small request-size limit."""
    return servers["hardened"]


@pytest.fixture(scope="session")
def hardened_scorer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scorer]:
    """``python -m assay_serving.bias_scorer --sim`` with an admin token and a small request
    limit."""
    logs = tmp_path_factory.mktemp("hardened-scorer")
    token, token_file = write_admin_token(logs)
    args = ["--sim", f"--admin-token-file={token_file}", f"--max-request-bytes={MAX_REQUEST_BYTES}"]
    scorer = launch_scorer("module", [*args, "--max-batch-rows=8"], logs / "scorer.log")
    scorer.admin_token = token
    try:
        yield scorer.wait_ready()
    finally:
        scorer.stop()


# The same attack tests run against the in-process servers above and against the dev overlay's
# predictor pods, run by podman from the rendered manifests (tests/_manifest_container.py).
CONTAINER = pytest.param("container", marks=pytest.mark.container)


@pytest.fixture(scope="session", params=["in-process", CONTAINER])
def classifier_endpoint(request: pytest.FixtureRequest):
    """The shared ``python -m assay_serving.classifier`` child process, then the manifest's pod."""
    if request.param == "container":
        return request.getfixturevalue("manifest_classifier")
    return request.getfixturevalue("server")


@pytest.fixture(scope="session", params=["in-process", CONTAINER])
def tokenless_classifier(request: pytest.FixtureRequest):
    """A classifier started without ``--admin-token-file`` (the repository endpoints are off):
    the "cli" server, then the manifest's pod (the manifests give the servers no token)."""
    if request.param == "container":
        return request.getfixturevalue("manifest_classifier")
    return request.getfixturevalue("servers")["cli"]


@pytest.fixture(scope="session", params=["in-process", CONTAINER])
def guarded_classifier(request: pytest.FixtureRequest):
    """A classifier whose gRPC repository calls are refused: "hardened", then the manifest's pod."""
    if request.param == "container":
        return request.getfixturevalue("manifest_classifier")
    return request.getfixturevalue("hardened")
