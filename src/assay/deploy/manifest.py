"""The InferenceService object for a ``DeploySpec``, and the patch that moves an existing one to
it."""

from __future__ import annotations

from typing import Any

from assay.deploy.spec import (
    API_VERSION,
    DEPLOYMENT_MODE_ANNOTATION,
    MODEL_VERSION_ANNOTATION,
    DeploySpec,
)


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


def _http_probe(path: str, *, initial_delay: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": 8080},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
    }
