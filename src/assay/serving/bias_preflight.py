"""The bias scorer's checks at start-up, before it can make a paid call.

The ensemble parses and every key it names is set (otherwise ConfigError: the server does not
start, exit 2); a model that its provider's models endpoint does not list stops the start too. An
endpoint that cannot be reached yet (a simulator or proxy starting beside the server) is logged,
not fatal. Logged: the worst case one passage can cost (at the longest passage accepted) and how
many passages a minute the configured rate limits allow.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from assay.bias.prompt import build_messages
from assay.llm.ensemble import load_ensemble
from assay.llm.preflight import ModelLister, Plan, check_keys, check_models, plan_calls, stale_terms
from assay.obs.logging import get_logger

log = get_logger(__name__)


def preflight_scorer(
    ensemble_path: str | None,
    environ: Mapping[str, str],
    max_text_chars: int,
    lister: ModelLister | None = None,
) -> Plan:
    """Check the scorer's ensemble; the plan of one passage of ``max_text_chars`` characters."""
    ensemble = load_ensemble(ensemble_path, environ)
    check_keys(ensemble, environ)
    notes = check_models(ensemble, environ, lister, strict=False)
    notes += stale_terms(ensemble, datetime.now(UTC).date())
    for note in notes:
        log.warning("preflight_note", note=note)
    plan = plan_calls(ensemble, [build_messages("x" * max_text_chars)])
    log.info(
        "preflight_passed",
        ensemble=ensemble.name,
        models={rater: cfg.model for rater, cfg in ensemble.raters.items()},
        worst_case_usd_per_passage=round(plan.worst_case_usd, 6),
        max_passages_per_minute=round(1.0 / plan.min_minutes, 1) if plan.min_minutes else None,
    )
    return plan
