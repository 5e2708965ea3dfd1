"""What an InferenceService's status says: Ready for a generation, failed, or why not yet."""

from __future__ import annotations

from typing import Any

_FAILED_TRANSITIONS = frozenset({"BlockedByFailedLoad", "InvalidSpec"})


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in status.get("conditions") or []}


def is_ready(status: dict[str, Any], generation: int | None) -> bool:
    observed = status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        return False
    if _conditions(status).get("Ready", {}).get("status") != "True":
        return False
    predictor = (status.get("components") or {}).get("predictor") or {}
    created, ready = predictor.get("latestCreatedRevision"), predictor.get("latestReadyRevision")
    # Serverless: the newest revision must itself be ready (a canary is up, not just the old one).
    return created is None or created == ready


def has_served(status: dict[str, Any]) -> bool:
    """True once some revision of the service has been Ready (there is a version to keep).

    On a fresh cluster the manifest's first storageUri names a version no training run has
    registered yet; until one does, no revision ever becomes Ready.
    """
    predictor = (status.get("components") or {}).get("predictor") or {}
    ready = _conditions(status).get("Ready", {}).get("status") == "True"
    return ready or bool(predictor.get("latestReadyRevision"))


def failure(status: dict[str, Any]) -> str | None:
    model_status = status.get("modelStatus") or {}
    transition = model_status.get("transitionStatus")
    target = (model_status.get("states") or {}).get("targetModelState")
    if transition not in _FAILED_TRANSITIONS and target != "FailedToLoad":
        return None
    info = model_status.get("lastFailureInfo") or {}
    reason = info.get("reason") or transition or target
    message = info.get("message") or "no message from KServe"
    return f"{reason}: {message}"


def describe_not_ready(status: dict[str, Any]) -> str:
    ready = _conditions(status).get("Ready")
    if ready is None:
        return "no Ready condition reported yet"
    parts = [f"Ready={ready.get('status')}"]
    if ready.get("reason"):
        parts.append(f"reason={ready['reason']}")
    if ready.get("message"):
        parts.append(f"message={ready['message']}")
    return ", ".join(parts)
