"""Missing-rater reasons sent to bias-scorer clients are coarse: no exception text, no URLs."""

from __future__ import annotations

import pytest

from assay.serving.bias_guard import Admission, QueueFull, coarse_reason


@pytest.mark.parametrize(
    ("detail", "coarse"),
    [
        ("timeout: no rating within 30 s", "timeout"),
        ("budget_exceeded: the daily LLM budget of 5 USD is spent", "budget"),
        (
            "circuit_open: the rater failed repeatedly; next try in 12 s",
            "unavailable (circuit_open)",
        ),
        ("connection: could not connect to http://10.0.0.7:8000/v1", "unavailable (connection)"),
        ("AuthenticationError: bad key for https://proxy.internal", "unavailable"),
        ("http://10.0.0.7/v1 refused", "unavailable"),
    ],
)
def test_detail_becomes_a_coarse_reason(detail: str, coarse: str) -> None:
    assert coarse_reason(detail) == coarse


def test_admission_refuses_what_does_not_fit_and_frees_on_exit() -> None:
    admission = Admission(capacity=2)
    with admission.admit(5):  # nothing was in progress: a big request is still admitted
        assert admission.in_progress == 5
        with pytest.raises(QueueFull, match="busy"):
            admission.admit(1).__enter__()
    with admission.admit(1), admission.admit(1):
        assert admission.in_progress == 2
    assert admission.in_progress == 0
