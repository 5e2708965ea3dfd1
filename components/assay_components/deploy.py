"""Roll the registered version out to its KServe InferenceService (canary) and wait for Ready."""

from kfp import dsl

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def deploy_inference_service(
    model_uri: str,
    service_name: str = "wdbc-classifier",
    namespace: str = "assay",
    canary_traffic_percent: int = 10,
    timeout_s: int = 600,
    credentials_dir: str = "/var/run/secrets/assay-deployer",
) -> str:
    """Point InferenceService service_name at model_uri and wait until it is Ready.

    model_uri: the registered version folder (register_model's model_uri output), an s3:// URI
    such as s3://assay-models/registry/wdbc-classifier/v3 that KServe copies to /mnt/models.
    canary_traffic_percent: share of traffic for the new version (1-99); 100 rolls out fully.
    The service must exist (kustomize creates it): the deployer may get and patch it, not create.
    The version's model.joblib is checked against the sha256 its card records before the
    cluster is touched; a mismatch fails the step.
    credentials_dir: the token and ca.crt of ServiceAccount assay-deployer (Secret
    assay-deployer-token, mounted there by the training pipeline): the step calls the API with
    them, not with the pod's own (shared pipeline-runner) account.
    Returns the service URL.
    """
    from kubernetes import client
    from kubernetes.config.incluster_config import InClusterConfigLoader

    from assay.deploy import DeploySpec, deploy_model, verify_version

    spec = DeploySpec.for_model_uri(
        model_uri,
        name=service_name,
        namespace=namespace,
        canary_traffic_percent=canary_traffic_percent,
    )
    verify_version(spec)  # before any cluster credential is read
    configuration = client.Configuration()
    InClusterConfigLoader(
        token_filename=f"{credentials_dir}/token", cert_filename=f"{credentials_dir}/ca.crt"
    ).load_and_set(configuration)
    api = client.CustomObjectsApi(client.ApiClient(configuration))
    result = deploy_model(spec, api=api, timeout_s=float(timeout_s))
    where = f"{result.namespace}/{result.name}"
    print(f"{result.action} {where} -> {result.storage_uri} ({result.url})")
    return result.url or ""
