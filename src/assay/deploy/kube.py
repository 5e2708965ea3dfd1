"""The Kubernetes API calls a rollout makes, and what their failures mean to the user.

The kubernetes client is imported only by ``kubernetes_api`` (when no API object is passed in):
it is heavy, and the rollout logic runs against any object with the three ``CustomObjectsApi``
methods used here (get/create/patch_namespaced_custom_object).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from assay.deploy.spec import GROUP, PLURAL, VERSION
from assay.errors import AssayError


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


class Named(Protocol):
    """Anything naming one InferenceService (a ``Ref`` or a ``DeploySpec``)."""

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...


@dataclass(frozen=True)
class Ref:
    """An InferenceService by name and namespace."""

    name: str
    namespace: str


def get_service(api: CustomObjectsApi, ref: Named) -> dict[str, Any] | None:
    try:
        obj = api.get_namespaced_custom_object(GROUP, VERSION, ref.namespace, PLURAL, ref.name)
    except Exception as exc:
        if _status_of(exc) == 404:
            return None
        raise _api_error(ref, "read", exc) from None
    return dict(obj)


def call(spec: Named, verb: str, request: Callable[[], Any]) -> dict[str, Any]:
    try:
        result = request()
    except Exception as exc:
        raise _api_error(spec, verb, exc) from None
    return dict(result or {})


def _status_of(exc: Exception) -> int | None:
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _api_error(ref: Named, verb: str, exc: Exception) -> DeployError:
    status = _status_of(exc)
    what = f"InferenceService {ref.namespace}/{ref.name}"
    if status is None:
        return DeployError(f"could not {verb} {what}: {exc}")
    if status in (401, 403):
        return DeployError(
            f"not allowed to {verb} {what} (HTTP {status}): the step calls the API with the "
            "token of ServiceAccount assay-deployer (Secret assay-deployer-token), which may only "
            "get and patch the services named by Role inferenceservice-deployer "
            "(manifests/base/security/rbac-deployer.yaml)"
        )
    if status == 404:
        return DeployError(
            f"could not {verb} {what} (HTTP 404): namespace {ref.namespace!r} or the KServe "
            "InferenceService CRD does not exist in this cluster"
        )
    reason = getattr(exc, "reason", "") or ""
    body = getattr(exc, "body", "") or ""
    return DeployError(f"could not {verb} {what} (HTTP {status} {reason}): {str(body)[:300]}")
