"""Fakes for the deploy tests (fixtures in conftest.py).

No Kubernetes cluster exists here, so the deploy logic runs against FakeCustomObjectsApi: an
in-memory stand-in for the three kubernetes.client CustomObjectsApi methods assay.deploy calls,
with JSON-merge-patch semantics, metadata.generation bumps on spec changes, and a scripted
"controller" that writes status after each read."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_FILE = REPO_ROOT.parent / "shared" / "crds" / "serving.kserve.io_inferenceservices.yaml"

Obj = dict[str, Any]
Controller = Callable[[Obj, int], None]  # (object, number of reads so far) -> mutate status


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch, as the API server applies application/merge-patch+json."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class FakeCustomObjectsApi:
    def __init__(self, controller: Controller | None = None) -> None:
        self.objects: dict[tuple[str, str], Obj] = {}
        self.calls: list[tuple[str, Any]] = []
        self.controller = controller
        self.reads = 0
        self.fail_with: dict[str, ApiException] = {}

    def _key(self, group: str, version: str, namespace: str, plural: str, name: str) -> Any:
        assert (group, version, plural) == ("serving.kserve.io", "v1beta1", "inferenceservices")
        return (namespace, name)

    def get_namespaced_custom_object(self, group, version, namespace, plural, name):  # type: ignore[no-untyped-def]
        self.calls.append(("get", name))
        if "get" in self.fail_with:
            raise self.fail_with["get"]
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        self.reads += 1
        if self.controller is not None:
            self.controller(self.objects[key], self.reads)
        return copy.deepcopy(self.objects[key])

    def create_namespaced_custom_object(self, group, version, namespace, plural, body):  # type: ignore[no-untyped-def]
        self.calls.append(("create", copy.deepcopy(body)))
        if "create" in self.fail_with:
            raise self.fail_with["create"]
        key = self._key(group, version, namespace, plural, body["metadata"]["name"])
        if key in self.objects:
            raise ApiException(status=409, reason="AlreadyExists")
        stored = copy.deepcopy(body)
        stored["metadata"]["generation"] = 1
        self.objects[key] = stored
        return copy.deepcopy(stored)

    def patch_namespaced_custom_object(self, group, version, namespace, plural, name, body):  # type: ignore[no-untyped-def]
        self.calls.append(("patch", copy.deepcopy(body)))
        if "patch" in self.fail_with:
            raise self.fail_with["patch"]
        key = self._key(group, version, namespace, plural, name)
        if key not in self.objects:
            raise ApiException(status=404, reason="Not Found")
        old = self.objects[key]
        new = merge_patch(old, body)
        if new.get("spec") != old.get("spec"):
            new["metadata"]["generation"] = old["metadata"].get("generation", 1) + 1
        self.objects[key] = new
        return copy.deepcopy(new)


def ready_status(generation: int, *, created: str = "r-2", ready: str = "r-2") -> Obj:
    return {
        "observedGeneration": generation,
        "url": "http://wdbc-classifier.assay.example.com",
        "conditions": [{"type": "Ready", "status": "True"}],
        "components": {
            "predictor": {"latestCreatedRevision": created, "latestReadyRevision": ready}
        },
        "modelStatus": {"transitionStatus": "UpToDate", "states": {"activeModelState": "Loaded"}},
    }


def becomes_ready_after(reads: int) -> Controller:
    """A controller that reports the current generation Ready from the ``reads``-th read on."""

    def controller(obj: Obj, count: int) -> None:
        generation = obj["metadata"]["generation"]
        if count >= reads:
            obj["status"] = ready_status(generation)
        else:
            obj["status"] = {
                "observedGeneration": generation,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "False",
                        "reason": "RevisionMissing",
                        "message": "Revision is still loading the model",
                    }
                ],
                "components": {
                    "predictor": {"latestCreatedRevision": "r-2", "latestReadyRevision": "r-1"}
                },
            }

    return controller


class FakeClock:
    """time.monotonic/time.sleep pair where sleeping only advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def strict_schema(schema: Any) -> Any:
    # The API server prunes undeclared fields; a test should see them as errors instead.
    if isinstance(schema, list):
        return [strict_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict_schema(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out
