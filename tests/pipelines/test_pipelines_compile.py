"""`assay compile` writes IR YAML for every registered pipeline, and each loads back with kfp."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from kfp import components
from typer.testing import CliRunner

from assay.cli import app
from assay.config import PIPELINE_IMAGE

pytestmark = pytest.mark.pipeline


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import structlog

    out = tmp_path_factory.mktemp("compiled")
    result = CliRunner().invoke(app, ["compile", "--out", str(out)])
    structlog.reset_defaults()  # the CLI pointed structlog at CliRunner's stderr
    assert result.exit_code == 0, result.output
    return out


def test_every_registered_pipeline_compiles_and_loads_back(compiled: Path) -> None:
    from kfp import components

    from assay_pipelines import PIPELINES

    assert {p.stem for p in compiled.glob("*.yaml")} == set(PIPELINES)
    for path in compiled.glob("*.yaml"):
        loaded = components.load_component_from_file(str(path))
        assert loaded.pipeline_spec.root.dag.tasks, path.name


def test_training_pipeline_structure(compiled: Path) -> None:
    from kfp import components

    loaded = components.load_component_from_file(str(compiled / "training.yaml"))
    tasks = set(loaded.pipeline_spec.root.dag.tasks)
    assert {
        "load-data",
        "compute-vif",
        "train-models",
        "evaluate-models",
        "register-model",
    } <= tasks
    condition = next(t for t in tasks if t.startswith("condition"))
    assert "deploy" in loaded.pipeline_spec.root.dag.tasks[condition].trigger_policy.condition

    spec, platform = yaml.safe_load_all((compiled / "training.yaml").read_text())
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert images == {PIPELINE_IMAGE}
    commands = " ".join(
        " ".join(e["container"]["command"]) for e in spec["deploymentSpec"]["executors"].values()
    )
    assert "pip install" not in commands  # the image already holds kfp and assay
    evaluate = spec["components"]["comp-evaluate-models"]["outputDefinitions"]["artifacts"]
    kinds = {name: out["artifactType"]["schemaTitle"] for name, out in evaluate.items()}
    assert kinds == {
        "evaluation": "system.Artifact",
        "metrics": "system.Metrics",
        "classification_metrics": "system.ClassificationMetrics",
        "report": "system.HTML",
        "summary": "system.Markdown",
    }
    register_env = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][
        "exec-register-model"
    ]
    assert register_env["secretAsEnv"][0]["secretName"] == "minio-credentials"
    assert register_env["configMapAsEnv"][0]["configMapName"] == "assay-pipeline-env"


def test_only_the_deploy_step_carries_the_deployer_token(compiled: Path) -> None:
    _spec, platform = yaml.safe_load_all((compiled / "training.yaml").read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    deploy = executors["exec-deploy-inference-service"]
    assert deploy["secretAsVolume"][0]["secretName"] == "assay-deployer-token"
    assert deploy["podMetadata"]["labels"] == {"assay.io/step": "deploy"}
    holders = [
        name
        for name, e in executors.items()
        if any(v["secretName"] == "assay-deployer-token" for v in e.get("secretAsVolume", []))
    ]
    assert holders == ["exec-deploy-inference-service"]
    signers = [
        name
        for name, e in executors.items()
        if any(v["secretName"] == "assay-model-signing-key" for v in e.get("secretAsVolume", []))
    ]
    assert signers == ["exec-register-model"]  # the signing key: the register step alone


def test_bias_study_ir_takes_s3_inputs_and_mounts_minio_where_they_are_read(
    tmp_path: Path,
) -> None:
    """Compiled with s3:// corpus, ensemble and store, the IR carries them as the run's
    parameters, and the steps that read them (load, rate) get the MinIO settings and user."""
    from kfp import compiler, components

    from assay_pipelines.bias_study import RATING_ENV, STORAGE_ENV, bias_study_pipeline
    from assay_pipelines.training import MINIO_SECRET, MINIO_SECRET_TO_ENV

    inputs = {
        "kind": "corpus",
        "source": "s3://assay-pipelines/bias/corpus.csv",
        "ensemble": "s3://assay-pipelines/bias/ensemble.yaml",
        "store_dir": "s3://assay-pipelines/bias/ratings-store",
    }
    path = tmp_path / "bias-study-s3.yaml"
    compiler.Compiler().compile(bias_study_pipeline, str(path), pipeline_parameters=inputs)
    loaded = components.load_component_from_file(str(path))
    assert {"bias-load-corpus", "bias-rate", "bias-fit", "bias-report"} <= set(
        loaded.pipeline_spec.root.dag.tasks
    )
    spec, platform = yaml.safe_load_all(path.read_text())
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    for name, uri in inputs.items():
        assert parameters[name]["parameterType"] == "STRING"
        assert parameters[name]["defaultValue"] == uri
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor, keys in (("exec-bias-load-corpus", STORAGE_ENV), ("exec-bias-rate", RATING_ENV)):
        env = executors[executor]
        mounted = {k["envVar"] for c in env["configMapAsEnv"] for k in c["keyToEnv"]}
        assert {"MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_REGION"} <= mounted == set(keys)
        minio = next(s for s in env["secretAsEnv"] if s["secretName"] == MINIO_SECRET)
        assert {k["envVar"] for k in minio["keyToEnv"]} == set(MINIO_SECRET_TO_ENV.values())


def test_bias_study_steps_log_kfp_metrics_beside_the_report(compiled: Path) -> None:
    spec, _platform = yaml.safe_load_all((compiled / "bias-study.yaml").read_text())

    def outputs(component: str) -> dict[str, str]:
        artifacts = spec["components"][component]["outputDefinitions"]["artifacts"]
        return {name: out["artifactType"]["schemaTitle"] for name, out in artifacts.items()}

    assert outputs("comp-bias-report") == {
        "study": "system.Artifact",
        "report": "system.HTML",
        "metrics": "system.Metrics",
    }
    assert outputs("comp-bias-fit")["fit_metrics"] == "system.Metrics"
    assert outputs("comp-bias-analyse")["agreement_metrics"] == "system.Metrics"


def test_only_the_rate_step_holds_provider_keys_and_the_egress_label(compiled: Path) -> None:
    """In both pipelines, the provider keys Secret and the label that opens provider egress go
    to the bias study's rate step alone, and it does not send its work to the shared Ray cluster
    (no RAY_ADDRESS), whose pods every computing step can reach."""
    from assay_pipelines.bias_study import PROVIDER_SECRET, RATE_STEP_LABELS

    holders, labelled = [], []
    for name in ("training", "bias-study"):
        _spec, platform = yaml.safe_load_all((compiled / f"{name}.yaml").read_text())
        for executor, config in platform["platforms"]["kubernetes"]["deploymentSpec"][
            "executors"
        ].items():
            secrets = [s["secretName"] for s in config.get("secretAsEnv", [])]
            if PROVIDER_SECRET in secrets:
                holders.append(executor)
                env = {
                    key["envVar"]
                    for cm in config.get("configMapAsEnv", [])
                    for key in cm["keyToEnv"]
                }
                assert "RAY_ADDRESS" not in env, executor
            labels = (config.get("podMetadata") or {}).get("labels") or {}
            if labels.get("assay.io/llm-egress") == "true":
                labelled.append(executor)
                assert labels == RATE_STEP_LABELS
    assert holders == labelled == ["exec-bias-rate"]


def test_the_rate_step_reads_the_shared_redis_and_its_password_from_the_secret(
    compiled: Path,
) -> None:
    """The Secret the bias scorer reads (manifests: assay-redis), optional: a cluster without
    it rates with the pod's own limits."""
    from assay_pipelines.bias_study import REDIS_SECRET

    _spec, platform = yaml.safe_load_all((compiled / "bias-study.yaml").read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    holders = {
        name: secret
        for name, config in executors.items()
        for secret in config.get("secretAsEnv", [])
        if secret["secretName"] == REDIS_SECRET
    }
    assert list(holders) == ["exec-bias-rate"]
    secret = holders["exec-bias-rate"]
    assert {(k["secretKey"], k["envVar"]) for k in secret["keyToEnv"]} == {
        ("ASSAY_REDIS_URL", "ASSAY_REDIS_URL"),
        ("password", "ASSAY_REDIS_PASSWORD"),
    }
    assert secret["optional"] is True


def _executor_images(folder: Path) -> dict[str, set[str]]:
    images: dict[str, set[str]] = {}
    for path in folder.glob("*.yaml"):
        spec, *_ = yaml.safe_load_all(path.read_text())
        executors = spec["deploymentSpec"]["executors"].values()
        assert executors, path.name
        images[path.stem] = {e["container"]["image"] for e in executors}
    return images


def test_compile_image_option_and_env_set_every_step_image(tmp_path: Path) -> None:
    """`--image` puts the image into every executor of both IR files; ASSAY_IMAGE does the same,
    and the flag wins over the variable."""
    import structlog

    from assay_pipelines import PIPELINES

    runner = CliRunner()
    env = {"ASSAY_IMAGE": "example.org/from-env:2"}
    flag = runner.invoke(
        app, ["compile", "--out", str(tmp_path / "flag"), "--image", "example.org/x:1"], env=env
    )
    by_env = runner.invoke(app, ["compile", "--out", str(tmp_path / "env")], env=env)
    structlog.reset_defaults()
    assert flag.exit_code == 0, flag.output
    assert by_env.exit_code == 0, by_env.output
    assert _executor_images(tmp_path / "flag") == {name: {"example.org/x:1"} for name in PIPELINES}
    assert _executor_images(tmp_path / "env") == {
        name: {"example.org/from-env:2"} for name in PIPELINES
    }
    for path in (tmp_path / "flag").glob("*.yaml"):
        assert components.load_component_from_file(str(path)).pipeline_spec.root.dag.tasks


def test_compile_rejects_an_image_reference_with_spaces(tmp_path: Path) -> None:
    import structlog

    result = CliRunner().invoke(app, ["compile", "--out", str(tmp_path), "--image", "a b"])
    structlog.reset_defaults()
    assert result.exit_code == 2
    assert "Invalid image" in result.output
    assert not list(tmp_path.glob("*.yaml"))
