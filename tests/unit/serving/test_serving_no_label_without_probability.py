"""Attack: a probability that is not finite (an overflowed scaler) must never become a label.

``NaN >= threshold`` is False, which would call the patient benign; the server refuses instead.
"""

from __future__ import annotations

import numpy as np
import pytest

from assay.serving.tensors import BadRequest, check_finite_proba


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_probability_is_refused_not_labelled(bad: float) -> None:
    with pytest.raises(BadRequest) as refused:
        check_finite_proba(np.array([0.2, bad, 0.9]))
    assert refused.value.code == "non_finite_probability"
    assert "row 1" in str(refused.value) and refused.value.status == 400


def test_finite_probabilities_pass() -> None:
    check_finite_proba(np.array([0.0, 0.5, 1.0]))
