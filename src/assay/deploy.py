"""Roll a registered model version out to its KServe InferenceService.

``deploy_model`` builds the InferenceService for one immutable registry version folder
(``s3://assay-models/registry/<name>/<version>``), creates it when it does not exist or patches
it to the new version with a canary traffic percentage, then waits until KServe reports it
Ready. The kubernetes client is imported only when no API object is passed in, so the module
stays light and the logic can be exercised against any object with the three
``CustomObjectsApi`` methods used here (get/create/patch_namespaced_custom_object).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from assay.errors import AssayError, UsageError
from assay.obs.logging import get_logger

GROUP = "serving.kserve.io"
VERSION = "v1beta1"
PLURAL = "inferenceservices"
API_VERSION = f"{GROUP}/{VERSION}"

DEFAULT_NAME = "wdbc-classifier"
DEFAULT_NAMESPACE = "assay"
DEFAULT_RUNTIME = "assay-classifier"
DEFAULT_SERVICE_ACCOUNT = "kserve-s3"
MODEL_VERSION_ANNOTATION = "assay.io/model-version"
DEPLOYMENT_MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
RAW_DEPLOYMENT_MODES = frozenset({"RawDeployment", "Standard"})

_VERSION_RE = re.compile(r"v[0-9]+")
_FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})

log = get_logger(__name__)


class DeployError(AssayError):
    """The InferenceService could not be created, updated or made Ready."""

    exit_code = 4


class CustomObjectsApi(Protocol):
    """The part of ``kubernetes.client.CustomObjectsApi`` this module calls."""

    def get_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str
    ) -> Any: ...

    def create_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, body: Any
    ) -> Any: ...

    def patch_namespaced_custom_object(
        self, group: str, version: str, namespace: str, plural: str, name: str, body: Any
    ) -> Any: ...


@dataclass(frozen=True)
class DeploySpec:
    """What to deploy: one registry version of a model behind one InferenceService."""

    storage_uri: str
    model_version: str
    name: str = DEFAULT_NAME
    namespace: str = DEFAULT_NAMESPACE
    runtime: str = DEFAULT_RUNTIME
    model_format: str = "sklearn"
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    canary_traffic_percent: int | None = None  # 1..99: canary; None or 100: full rollout
    min_replicas: int = 1
    max_replicas: int = 3

    def __post_init__(self) -> None:
        pct = self.canary_traffic_percent
        if pct is not None and not 0 <= pct <= 100:
            raise UsageError(f"canary traffic percent must be between 0 and 100, got {pct}")
        if not self.storage_uri.startswith("s3://"):
            raise UsageError(
                f"storage URI {self.storage_uri!r} is not s3://: KServe's storage initializer "
                "cannot read a local registry, register the model in MinIO first"
            )

    @classmethod
    def for_model_uri(cls, model_uri: str, **options: Any) -> DeploySpec:
        """The spec for a registry version folder URI, e.g. s3://assay-models/registry/m/v3."""
        from assay.registry import parse_model_uri

        root, model_name, version = parse_model_uri(model_uri)
        return cls(
            storage_uri=storage_uri_for(root, model_name, version),
            model_version=version,
            **options,
        )

    @property
    def is_canary(self) -> bool:
        """True when only part of the traffic goes to the new version."""
        return self.canary_traffic_percent is not None and self.canary_traffic_percent < 100

    @property
    def canary_field(self) -> int | None:
        """The value of spec.predictor.canaryTrafficPercent: None means a full rollout."""
        return self.canary_traffic_percent if self.is_canary else None


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy_model`` did and where the service answers."""

    name: str
    namespace: str
    storage_uri: str
    action: str  # "created" | "updated" | "unchanged"
    canary_traffic_percent: int | None
    url: str | None


def storage_uri_for(registry_root: str, model_name: str, version: str) -> str:
    """The version folder KServe copies to /mnt/models, e.g. s3://assay-models/registry/m/v3."""
    if not registry_root.startswith("s3://"):
        raise UsageError(
            f"registry {registry_root!r} is not an s3:// root; an InferenceService can only "
            "load models registered in MinIO/S3 (e.g. s3://assay-models/registry)"
        )
    if not _VERSION_RE.fullmatch(version):
        raise UsageError(
            f"model version {version!r} is not an immutable version such as 'v3'; "
            "resolve aliases with the registry before deploying"
        )
    return f"{registry_root.rstrip('/')}/{model_name}/{version}"


def build_inference_service(spec: DeploySpec) -> dict[str, Any]:
    """The complete InferenceService object created when none exists yet.

    Mirrors manifests/base/serving/isvc-wdbc-classifier.yaml (runtime, probes, resources,
    security context) so a pipeline-created service equals a kustomize-applied one.
    """
    predictor: dict[str, Any] = {
        "serviceAccountName": spec.service_account,
        "automountServiceAccountToken": False,
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "scaleMetric": "concurrency",
        "scaleTarget": 10,
        "model": {
            "runtime": spec.runtime,
            "modelFormat": {"name": spec.model_format, "version": "1"},
            "protocolVersion": "v2",
            "storageUri": spec.storage_uri,
            "resources": {
                "requests": {"cpu": "500m", "memory": "256Mi"},
                "limits": {"cpu": "1", "memory": "512Mi"},
            },
            "readinessProbe": _http_probe("/v2/health/ready", initial_delay=2, period=5),
            "livenessProbe": _http_probe("/v2/health/live", initial_delay=10, period=15),
            # on the container only: Knative rejects pod-level securityContext by default
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "runAsGroup": 10001,
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "InferenceService",
        "metadata": {
            "name": spec.name,
            "namespace": spec.namespace,
            "labels": {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": "assay"},
            "annotations": {
                MODEL_VERSION_ANNOTATION: spec.model_version,
                DEPLOYMENT_MODE_ANNOTATION: "Serverless",
                "serving.kserve.io/enable-prometheus-scraping": "true",
            },
        },
        "spec": {"predictor": predictor},
    }


def build_patch(spec: DeploySpec) -> dict[str, Any]:
    """JSON merge patch moving an existing service to ``spec``'s version.

    A canary percentage sends that share of traffic to the new revision and the rest to the
    last rolled-out one; ``None`` (merge-patch null) removes it so the new revision takes all.
    """
    return {
        "metadata": {"annotations": {MODEL_VERSION_ANNOTATION: spec.model_version}},
        "spec": {
            "predictor": {
                "canaryTrafficPercent": spec.canary_field,
                "model": {"storageUri": spec.storage_uri},
            }
        },
    }


def deploy_model(
    spec: DeploySpec,
    *,
    api: CustomObjectsApi | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> DeployResult:
    """Create or update the InferenceService to ``spec`` and wait until it is Ready."""
    api = api if api is not None else kubernetes_api()
    existing = _get(api, spec)
    if existing is None:
        if spec.is_canary:
            log.info("deploy.first_version_takes_all_traffic", name=spec.name)
        applied = _call(
            spec,
            "create",
            lambda: api.create_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, PLURAL, build_inference_service(spec)
            ),
        )
        action = "created"
    else:
        _check_canary_supported(existing, spec)
        current = existing.get("spec", {}).get("predictor", {})
        unchanged = (
            current.get("model", {}).get("storageUri") == spec.storage_uri
            and current.get("canaryTrafficPercent") == spec.canary_field
        )
        applied = _call(
            spec,
            "patch",
            lambda: api.patch_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, PLURAL, spec.name, build_patch(spec)
            ),
        )
        action = "unchanged" if unchanged else "updated"
    log.info("deploy.applied", name=spec.name, action=action, storage_uri=spec.storage_uri)
    generation = (applied or {}).get("metadata", {}).get("generation")
    ready = wait_until_ready(
        api,
        spec.name,
        spec.namespace,
        generation=generation,
        timeout_s=timeout_s,
        poll_s=poll_s,
        clock=clock,
        sleep=sleep,
    )
    return DeployResult(
        name=spec.name,
        namespace=spec.namespace,
        storage_uri=spec.storage_uri,
        action=action,
        canary_traffic_percent=spec.canary_field,
        url=ready.get("status", {}).get("url"),
    )


def wait_until_ready(
    api: CustomObjectsApi,
    name: str,
    namespace: str,
    *,
    generation: int | None = None,
    timeout_s: float = 600.0,
    poll_s: float = 5.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Poll until the service's Ready condition is True for ``generation``; return the object.

    Fails fast when KServe reports that the model cannot load (transition BlockedByFailedLoad or
    InvalidSpec), and with the last condition's reason and message on timeout.
    """
    deadline = clock() + timeout_s
    spec = _Ref(name, namespace)
    while True:
        obj = _get(api, spec)
        if obj is None:
            raise DeployError(f"InferenceService {namespace}/{name} disappeared while waiting")
        status = obj.get("status") or {}
        failure = _failure(status)
        if failure:
            raise DeployError(f"InferenceService {namespace}/{name} cannot become Ready: {failure}")
        if _is_ready(status, generation):
            log.info("deploy.ready", name=name, url=status.get("url"))
            return dict(obj)
        if clock() >= deadline:
            raise DeployError(
                f"InferenceService {namespace}/{name} was not Ready after {timeout_s:g} s "
                f"({_describe_not_ready(status)})"
            )
        sleep(poll_s)


def kubernetes_api() -> CustomObjectsApi:
    """A CustomObjectsApi from in-cluster credentials, else the local kubeconfig."""
    try:
        from kubernetes import client, config
    except ImportError as exc:  # pragma: no cover - kubernetes is a core dependency
        raise DeployError("the kubernetes package is not installed") from exc
    try:
        config.load_incluster_config()
    except config.ConfigException:
        try:
            config.load_kube_config()
        except (config.ConfigException, FileNotFoundError, TypeError) as exc:
            raise DeployError(
                f"no Kubernetes credentials: not running in a pod and no usable kubeconfig ({exc})"
            ) from None
    api: CustomObjectsApi = client.CustomObjectsApi()
    return api


@dataclass(frozen=True)
class _Ref:
    name: str
    namespace: str


def _http_probe(path: str, *, initial_delay: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": 8080},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
    }


def _get(api: CustomObjectsApi, ref: DeploySpec | _Ref) -> dict[str, Any] | None:
    try:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, ref.namespace, PLURAL, ref.name)
    except Exception as exc:
        if _status_of(exc) == 404:
            return None
        raise _api_error(ref, "read", exc) from None
    return dict(obj)


def _call(spec: DeploySpec, verb: str, request: Callable[[], Any]) -> dict[str, Any]:
    try:
        result = request()
    except Exception as exc:
        raise _api_error(spec, verb, exc) from None
    return dict(result or {})


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _api_error(ref: DeploySpec | _Ref, verb: str, exc: Exception) -> DeployError:
    status = _status_of(exc)
    what = f"InferenceService {ref.namespace}/{ref.name}"
    if status is None:
        return DeployError(f"could not {verb} {what}: {exc}")
    if status in (401, 403):
        return DeployError(
            f"not allowed to {verb} {what} (HTTP {status}): run the step as a ServiceAccount "
            "bound to Role inferenceservice-deployer (manifests/base/security/rbac-deployer.yaml)"
        )
    if status == 404:
        return DeployError(
            f"could not {verb} {what} (HTTP 404): namespace {ref.namespace!r} or the KServe "
            "InferenceService CRD does not exist in this cluster"
        )
    reason = getattr(exc, "reason", "") or ""
    body = getattr(exc, "body", "") or ""
    return DeployError(f"could not {verb} {what} (HTTP {status} {reason}): {str(body)[:300]}")


def _check_canary_supported(existing: dict[str, Any], spec: DeploySpec) -> None:
    annotations = existing.get("metadata", {}).get("annotations") or {}
    mode = annotations.get(DEPLOYMENT_MODE_ANNOTATION)
    if spec.is_canary and mode in RAW_DEPLOYMENT_MODES:
        raise DeployError(
            f"InferenceService {spec.namespace}/{spec.name} runs in {mode} mode, where KServe "
            "has no canary rollout: deploy with a canary of 100 (full rollout) or use Serverless"
        )


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def _is_ready(status: dict[str, Any], generation: int | None) -> bool:
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False
    if _conditions(status).get("Ready", {}).get("status") != "True":
        return False
    predictor = (status.get("components") or {}).get("predictor") or {}
    created, ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    # Serverless: the newest revision must itself be ready (a canary is up, not just the old one).
    return created is None or created == ready


def _failure(status: dict[str, Any]) -> str | None:
    model_status = status.get("modelStatus") or {}
    transition = model_status.get("transitionStatus")
    target = (model_status.get("states") or {}).get("targetModelState")
    if transition not in _FAILED_TRANSITIONS and target != "FailedToLoad":
        return None
    info = model_status.get("lastFailureInfo") or {}
    reason = info.get("reason") or transition or target
    message = info.get("message") or "no message from KServe"
    return f"{reason}: {message}"


def _describe_not_ready(status: dict[str, Any]) -> str:
    ready = _conditions(status).get("Ready")
    if ready is None:
        return "no Ready condition reported yet"
    parts = [f"Ready={ready.get('status')}"]
    if ready.get("reason"):
        parts.append(f"reason={ready['reason']}")
    if ready.get("message"):
        parts.append(f"message={ready['message']}")
    return ", ".join(parts)
