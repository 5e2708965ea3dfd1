"""Roll a registered model version out to its KServe InferenceService.

``deploy_model`` builds the InferenceService for one immutable registry version folder
(``s3://assay-models/registry/<name>/<version>``), creates it when it does not exist or patches
it to the new version with a canary traffic percentage, then waits until KServe reports it
Ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from assay.deploy.kube import CustomObjectsApi, DeployError, Ref, call, get_service, kubernetes_api
from assay.deploy.manifest import build_inference_service, build_patch
from assay.deploy.spec import (
    DEPLOYMENT_MODE_ANNOTATION,
    GROUP,
    PLURAL,
    RAW_DEPLOYMENT_MODES,
    VERSION,
    DeployResult,
    DeploySpec,
)
from assay.deploy.status import describe_not_ready, failure, has_served, is_ready
from assay.obs.logging import get_logger

log = get_logger(__name__)


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
    existing = get_service(api, spec)
    if existing is None:
        if spec.is_canary:
            log.info("deploy.first_version_takes_all_traffic", name=spec.name)
        applied = call(
            spec,
            "create",
            lambda: api.create_namespaced_custom_object(
                GROUP, VERSION, spec.namespace, PLURAL, build_inference_service(spec)
            ),
        )
        action = "created"
    else:
        _check_canary_supported(existing, spec)
        if spec.is_canary and not has_served(existing.get("status") or {}):
            # nothing to keep serving: a canary would split traffic with a revision that never
            # loaded (a fresh cluster's manifest names a version not registered until now)
            log.info("deploy.never_served_takes_all_traffic", name=spec.name)
            spec = replace(spec, canary_traffic_percent=None)
        current = existing.get("spec", {}).get("predictor", {})
        unchanged = (
            current.get("model", {}).get("storageUri") == spec.storage_uri
            and current.get("canaryTrafficPercent") == spec.canary_field
        )
        applied = call(
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
    spec = Ref(name, namespace)
    while True:
        obj = get_service(api, spec)
        if obj is None:
            raise DeployError(f"InferenceService {namespace}/{name} disappeared while waiting")
        status = obj.get("status") or {}
        failed = failure(status)
        if failed:
            raise DeployError(f"InferenceService {namespace}/{name} cannot become Ready: {failed}")
        if is_ready(status, generation):
            log.info("deploy.ready", name=name, url=status.get("url"))
            return dict(obj)
        if clock() >= deadline:
            raise DeployError(
                f"InferenceService {namespace}/{name} was not Ready after {timeout_s:g} s "
                f"({describe_not_ready(status)})"
            )
        sleep(poll_s)


def _check_canary_supported(existing: dict[str, Any], spec: DeploySpec) -> None:
    annotations = existing.get("metadata", {}).get("annotations") or {}
    mode = annotations.get(DEPLOYMENT_MODE_ANNOTATION)
    if spec.is_canary and mode in RAW_DEPLOYMENT_MODES:
        raise DeployError(
            f"InferenceService {spec.namespace}/{spec.name} runs in {mode} mode, where KServe "
            "has no canary rollout: deploy with a canary of 100 (full rollout) or use Serverless"
        )
