"""Roll the registered version out to its KServe InferenceService (canary) and wait for Ready."""

from kfp import dsl

from components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def deploy_inference_service(
    model_uri: str,
    service_name: str = "wdbc-classifier",
    namespace: str = "assay",
    canary_traffic_percent: int = 10,
    timeout_s: int = 600,
) -> str:
    """Point InferenceService service_name at model_uri and wait until it is Ready.

    model_uri: the registered version folder (register_model's model_uri output), an s3:// URI
    such as s3://assay-models/registry/wdbc-classifier/v3 that KServe copies to /mnt/models.
    canary_traffic_percent: share of traffic for the new version (1-99); 100 rolls out fully.
    A service that does not exist yet is created with all traffic on this version.
    Needs a ServiceAccount bound to Role inferenceservice-deployer (manifests/base/security).
    The version's model.joblib is checked against the sha256 its card records before the
    cluster is touched; a mismatch fails the step.
    Returns the service URL.
    """
    from assay.deploy import DeploySpec, deploy_verified

    spec = DeploySpec.for_model_uri(
        model_uri,
        name=service_name,
        namespace=namespace,
        canary_traffic_percent=canary_traffic_percent,
    )
    result = deploy_verified(spec, timeout_s=float(timeout_s))
    where = f"{result.namespace}/{result.name}"
    print(f"{result.action} {where} -> {result.storage_uri} ({result.url})")
    return result.url or ""
