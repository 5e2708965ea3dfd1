"""The demo's simulated raters keep a client-side rate limit, set so that it paces the demo's
rating without being what the rating waits for."""

from __future__ import annotations

from assay.bias.config import BiasStudySettings
from assay.llm.ensemble import load_ensemble
from assay.llm.ratelimit import SmoothBucket

DEMO_PACING_BOUND_S = 10.0
"""The longest the limiter alone may stretch one rater's share of the demo corpus."""


def test_bundled_sim_raters_are_limited_but_not_limiter_bound_on_the_demo_corpus() -> None:
    passages = BiasStudySettings.model_fields["passages"].default
    ensemble = load_ensemble(None, environ={"ASSAY_SIM_URL": "http://127.0.0.1:9"})
    assert len(ensemble.raters) == 3
    for rater in ensemble.raters.values():
        bucket = SmoothBucket(rater.rpm)  # every rater has a limit (rpm > 0, validated)
        paced_s = passages * bucket.interval  # the bucket's spacing of that rater's requests
        assert paced_s <= DEMO_PACING_BOUND_S, (rater.model, rater.rpm, paced_s)
