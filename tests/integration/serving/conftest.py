"""Fixtures for the serving tests: a contract-shaped model in a registry, and a real server.

The model is the contract's exported pipeline (StandardScaler -> ColumnTransformer passthrough
of 15 columns -> AdaBoost), trained on scikit-learn's WDBC copy with malignant re-encoded to 1,
registered through assay.registry. The server is ``python -m serving.classifier`` in a child
process on 127.0.0.1 with free ports.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from _serving_support import (
    CLI_ENTRY,
    MODEL_NAME,
    MODULE_ENTRY,
    ModelFixture,
    RunningServer,
    launch,
    wait_ready,
    write_model_folder,
)


@pytest.fixture(scope="session")
def registered_models(tmp_path_factory: pytest.TempPathFactory) -> ModelFixture:
    """v1 (50 stumps, threshold 0.3) and v2 (20 stumps, threshold 0.5); production -> v1."""
    from assay.registry import open_registry

    base = tmp_path_factory.mktemp("serving-models")
    v1 = write_model_folder(base / "build-v1", n_estimators=50, threshold=0.3)
    v2 = write_model_folder(base / "build-v2", n_estimators=20, threshold=0.5)
    registry = open_registry(f"file://{base / 'registry'}")
    assert registry.register(MODEL_NAME, v1) == "v1"
    assert registry.register(MODEL_NAME, v2) == "v2"
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
    """Two servers started together (their start-up overlaps):

    - "module": ``python -m serving.classifier`` (the image's entry point) on
      ``<served_registry>/wdbc-classifier/production``;
    - "cli": ``assay serve classifier`` on a copy of the v1 build folder (a plain folder
      source), polling it for changes every 0.3 s, logging every request (debug).
    """
    logs = tmp_path_factory.mktemp("serving-servers")
    uri = f"file://{served_registry}/{MODEL_NAME}/production"
    cli_folder = shutil.copytree(registered_models.v1_dir, logs / "cli-model")
    started = {
        "module": launch(MODULE_ENTRY, "--model_uri", uri, logs / "module.log"),
        "cli": launch(
            CLI_ENTRY,
            "--model",
            str(cli_folder),
            logs / "cli.log",
            "--reload-interval=0.3",
            "--log-level=debug",
        ),
    }
    try:
        for running in started.values():
            wait_ready(running)
        yield started
    finally:
        for running in started.values():
            running.stop()


@pytest.fixture(scope="session")
def server(servers: dict[str, RunningServer]) -> RunningServer:
    """The shared ``python -m serving.classifier`` server; the reload test leaves it on v1."""
    return servers["module"]
