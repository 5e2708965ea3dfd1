"""The classifier training pipeline: wiring only (each step is a component in components/).

load_data -> compute_vif -> train_models -> evaluate_models -> register_model
[-> deploy_inference_service, when deploy=True: canary roll-out of the new version]

In a cluster the steps read their environment from ConfigMap ``assay-pipeline-env``
(ASSAY_REGISTRY, MINIO_ENDPOINT/SECURE/REGION, RAY_ADDRESS) and Secret ``minio-credentials``
(the pipeline's MinIO user; manifests/base); kfp.local ignores both, so local runs use the
caller's environment. The deploy step calls the Kubernetes API as ServiceAccount assay-deployer.
"""

from kfp import dsl, kubernetes

from assay_components.compute_vif import compute_vif
from assay_components.deploy import deploy_inference_service
from assay_components.evaluate_models import evaluate_models
from assay_components.load_data import load_data
from assay_components.register_model import register_model
from assay_components.train_models import train_models

PIPELINE_ENV_CONFIG_MAP = "assay-pipeline-env"
MINIO_SECRET = "minio-credentials"
MINIO_SECRET_TO_ENV = {
    "AWS_ACCESS_KEY_ID": "MINIO_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY": "MINIO_SECRET_KEY",
}
# The deploy step talks to the Kubernetes API as ServiceAccount assay-deployer, with that
# account's token from Secret assay-deployer-token (manifests), mounted into this step only.
DEPLOYER_TOKEN = "assay-deployer-token"
DEPLOYER_CREDENTIALS_DIR = "/var/run/secrets/assay-deployer"
# Signed model versions: the register step alone mounts the signing key (Secret
# assay-model-signing-key); the deploy step verifies against the public keys (ConfigMap
# assay-model-trusted-keys, also mounted by the classifier's ServingRuntime).
SIGNING_KEY_SECRET = "assay-model-signing-key"
SIGNING_KEY_DIR = "/var/run/secrets/assay-signing"
TRUSTED_KEYS_CONFIG_MAP = "assay-model-trusted-keys"
TRUSTED_KEYS_DIR = "/etc/assay/trusted-keys"
# NetworkPolicies minio-ingress and ray-ingress leave out pipeline steps with these labels.
DEPLOY_STEP_LABELS = {"assay.io/step": "deploy"}
CONFIG_MAP_TO_ENV = {
    key: key
    for key in ("ASSAY_REGISTRY", "MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_REGION", "RAY_ADDRESS")
}


def _cluster_env(task: dsl.PipelineTask, *, secrets: bool) -> dsl.PipelineTask:
    kubernetes.use_config_map_as_env(
        task, PIPELINE_ENV_CONFIG_MAP, CONFIG_MAP_TO_ENV, optional=True
    )
    if secrets:
        kubernetes.use_secret_as_env(task, MINIO_SECRET, MINIO_SECRET_TO_ENV, optional=True)
    return task


def _signing_key(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """The key's Secret mounted here only; its path (ASSAY_SIGNING_KEY) from assay-pipeline-env
    (kfp.local ignores both: a local run signs with the local registry's own key)."""
    kubernetes.use_secret_as_volume(task, SIGNING_KEY_SECRET, mount_path=SIGNING_KEY_DIR)
    kubernetes.use_config_map_as_env(
        task, PIPELINE_ENV_CONFIG_MAP, {"ASSAY_SIGNING_KEY": "ASSAY_SIGNING_KEY"}, optional=True
    )
    return task


def _trusted_keys(task: dsl.PipelineTask) -> dsl.PipelineTask:
    kubernetes.use_config_map_as_volume(task, TRUSTED_KEYS_CONFIG_MAP, mount_path=TRUSTED_KEYS_DIR)
    kubernetes.use_config_map_as_env(
        task, PIPELINE_ENV_CONFIG_MAP, {"ASSAY_TRUSTED_KEYS": "ASSAY_TRUSTED_KEYS"}, optional=True
    )
    return task


def _deployer_identity(task: dsl.PipelineTask) -> dsl.PipelineTask:
    """KFP runs every step as one ServiceAccount (kfp-kubernetes has no per-task one), so the
    deploy step gets its own identity as a token: assay-deployer's, mounted into this step only."""
    kubernetes.use_secret_as_volume(task, DEPLOYER_TOKEN, mount_path=DEPLOYER_CREDENTIALS_DIR)
    for key, value in DEPLOY_STEP_LABELS.items():
        kubernetes.add_pod_label(task, key, value)
    return task


@dsl.pipeline(
    name="assay-training",
    description=(
        "WDBC diagnostic classifier: validate data, VIF, 8 ensembles + baseline under repeated "
        "stratified CV with nested tuning (Ray), clinical threshold, report, registry."
    ),
)
def training_pipeline(
    data: str = "",
    target: str = "diagnosis",
    impute: str = "none",
    k_features: int = 15,
    folds: int = 5,
    repeats: int = 5,
    tuning_iter: int = 3,
    seed: int = 42,
    models: str = "",
    ray_cpus: int = 0,
    target_sensitivity: float = 0.98,
    registry: str = "s3://assay-models/registry",
    model_name: str = "wdbc-classifier",
    deploy: bool = False,
    canary_percent: int = 10,
) -> str:
    """data: "" = bundled WDBC, else a CSV path or s3://bucket/key.csv. models: comma-separated
    keys ("" = all). ray_cpus: Ray CPU cap (0 = all). registry: root URI (MinIO in the cluster;
    "" = the step's ASSAY_REGISTRY). deploy: roll InferenceService
    <model_name> to the new version with canary_percent of the traffic (needs a cluster).
    Returns the registered version."""
    loaded = load_data(data=data, target=target, impute=impute)
    loaded.set_display_name("Load + validate data")
    _cluster_env(loaded, secrets=True)

    vif = compute_vif(dataset=loaded.outputs["dataset"])
    vif.set_display_name("VIF table")

    trained = train_models(
        dataset=loaded.outputs["dataset"],
        k_features=k_features,
        folds=folds,
        repeats=repeats,
        tuning_iter=tuning_iter,
        seed=seed,
        models=models,
        ray_cpus=ray_cpus,
        target_sensitivity=target_sensitivity,
        model_name=model_name,
    )
    trained.set_display_name("Train with CV (Ray)")
    trained.set_cpu_request("1").set_memory_request("2G").set_memory_limit("8G")
    _cluster_env(trained, secrets=False)

    evaluated = evaluate_models(
        training=trained.outputs["training"], vif_table=vif.outputs["vif_table"]
    )
    evaluated.set_display_name("Evaluate + report")

    registered = register_model(
        model=trained.outputs["model"], registry=registry, model_name=model_name
    )
    registered.set_display_name("Register model")
    registered.set_caching_options(False)  # every run registers a new version
    registered.after(evaluated)  # only register what has a report
    _cluster_env(registered, secrets=True)
    _signing_key(registered)

    with dsl.If(deploy == True, name="deploy-requested"):  # noqa: E712 (a KFP condition)
        deployed = deploy_inference_service(
            model_uri=registered.outputs["model_uri"],
            service_name=model_name,
            canary_traffic_percent=canary_percent,
            credentials_dir=DEPLOYER_CREDENTIALS_DIR,
        )
        deployed.set_display_name("Deploy (canary)")
        deployed.set_caching_options(False)
        _deployer_identity(deployed)
        _cluster_env(deployed, secrets=True)  # reads the version to verify its signature
        _trusted_keys(deployed)

    return registered.outputs["version"]
