"""Clinical metrics (malignant = positive), their summaries with CIs, and the clinical threshold.

Confusion-matrix metrics return 0.0 when their denominator is empty (e.g. PPV with no positive
predictions), like scikit-learn's ``zero_division=0``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from assay.classify.names import METRIC_NAMES

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

LOWER_IS_BETTER = frozenset({"brier"})
DEFAULT_THRESHOLD = 0.5
CI_LEVEL = 0.95
CI_METHOD = (
    "Nadeau-Bengio corrected resampled t interval over the k x r outer-fold scores, "
    "t(kr-1, 0.975) * sqrt((1/(kr) + n_test/n_train) * s^2), built on the logit scale for "
    "metrics in [0, 1] and on the Fisher-z (atanh) scale for MCC in [-1, 1] (delta method: the "
    "standard error is divided by the derivative of the inverse transform at the mean), then "
    "back-transformed, so bounds stay inside the metric's range without clipping; times use the "
    "plain scale"
)
Scale = Literal["logit", "fisher_z", "identity"]
SIGNED_METRICS = frozenset({"mcc"})  # range [-1, 1]; every other metric lies in [0, 1]


@dataclass(frozen=True)
class Confusion:
    tn: int
    fp: int
    fn: int
    tp: int

    @classmethod
    def from_predictions(cls, y_true: ArrayLike, y_pred: ArrayLike) -> Confusion:
        t = np.asarray(y_true).astype(bool)
        p = np.asarray(y_pred).astype(bool)
        return cls(
            tn=int(np.sum(~t & ~p)),
            fp=int(np.sum(~t & p)),
            fn=int(np.sum(t & ~p)),
            tp=int(np.sum(t & p)),
        )

    def matrix(self) -> list[list[int]]:
        """[[tn, fp], [fn, tp]]: rows = true benign/malignant, columns = predicted."""
        return [[self.tn, self.fp], [self.fn, self.tp]]


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def confusion_metrics(c: Confusion) -> dict[str, float]:
    """accuracy, sensitivity, specificity, PPV, NPV, F1, MCC of one confusion matrix."""
    total = c.tn + c.fp + c.fn + c.tp
    sensitivity = _ratio(c.tp, c.tp + c.fn)
    ppv = _ratio(c.tp, c.tp + c.fp)
    mcc_den = math.sqrt((c.tp + c.fp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn))
    return {
        "accuracy": _ratio(c.tp + c.tn, total),
        "sensitivity": sensitivity,
        "specificity": _ratio(c.tn, c.tn + c.fp),
        "ppv": ppv,
        "npv": _ratio(c.tn, c.tn + c.fn),
        "f1": _ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn),
        "mcc": _ratio(c.tp * c.tn - c.fp * c.fn, mcc_den),
    }


def brier_score(y_true: ArrayLike, p_malignant: ArrayLike) -> float:
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(p_malignant, dtype=float)
    return float(np.mean((p - t) ** 2))


def score_all(
    y_true: ArrayLike, p_malignant: ArrayLike, threshold: float = DEFAULT_THRESHOLD
) -> dict[str, float]:
    """Every metric in METRIC_NAMES; threshold metrics call malignant when p >= threshold."""
    t = np.asarray(y_true)
    p = np.asarray(p_malignant, dtype=float)
    both = len(np.unique(t)) == 2
    out = {
        "roc_auc": float(roc_auc_score(t, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(t, p)) if both else float("nan"),
    }
    out.update(confusion_metrics(Confusion.from_predictions(t, p >= threshold)))
    out["brier"] = brier_score(t, p)
    return {name: out[name] for name in METRIC_NAMES}


def oriented(metric: str, value: float) -> float:
    """Higher is better for every metric after this (Brier is negated)."""
    return -value if metric in LOWER_IS_BETTER else value


def metric_scale(metric: str) -> Scale:
    """The scale a metric's interval is built on (see CI_METHOD)."""
    return "fisher_z" if metric in SIGNED_METRICS else "logit"


def corrected_variance_factor(n_scores: int, n_train: float, n_test: float) -> float:
    """Nadeau-Bengio's 1/k + n_test/n_train: the variance of a mean over overlapping folds."""
    return 1.0 / n_scores + (n_test / n_train if n_train else 0.0)


def _forward(scale: Scale, x: float) -> tuple[float, float]:
    """(transformed x, derivative of the transform at x)."""
    if scale == "logit":
        return math.log(x / (1.0 - x)), 1.0 / (x * (1.0 - x))
    if scale == "fisher_z":
        return math.atanh(x), 1.0 / (1.0 - x * x)
    return x, 1.0


def _inverse(scale: Scale, z: float) -> float:
    if scale == "logit":
        return float(1.0 / (1.0 + math.exp(-z)))
    if scale == "fisher_z":
        return math.tanh(z)
    return z


def _on_boundary(scale: Scale, x: float) -> bool:
    if scale == "logit":
        return not 0.0 < x < 1.0
    if scale == "fisher_z":
        return not -1.0 < x < 1.0
    return False


def corrected_interval(
    mean: float, std: float, n_scores: int, n_train: float, n_test: float, scale: Scale
) -> tuple[float, float]:
    """The corrected t interval of CI_METHOD on ``scale``, back-transformed.

    A mean on the boundary of its range (every fold scored 1.0) has no spread to transform: the
    interval is that single value.
    """
    if _on_boundary(scale, mean):
        return mean, mean
    se = math.sqrt(corrected_variance_factor(n_scores, n_train, n_test)) * std
    centre, slope = _forward(scale, mean)
    half = float(stats.t.ppf(0.5 + CI_LEVEL / 2, n_scores - 1)) * se * slope
    return _inverse(scale, centre - half), _inverse(scale, centre + half)


def summarize(
    values: Sequence[float], n_train: float, n_test: float, scale: Scale = "logit"
) -> dict[str, float]:
    """mean, std (ddof=1) and the corrected 95% CI of per-fold scores (see CI_METHOD)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "ci_low": nan, "ci_high": nan, "n": 0}
    mean = float(v.mean())
    if len(v) < 2:
        return {"mean": mean, "std": 0.0, "ci_low": mean, "ci_high": mean, "n": len(v)}
    std = float(v.std(ddof=1))
    low, high = corrected_interval(mean, std, len(v), n_train, n_test, scale)
    return {"mean": mean, "std": std, "ci_low": low, "ci_high": high, "n": len(v)}


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    if len(v) == 0:
        return {f"p{int(q)}": float("nan") for q in qs}
    return {f"p{int(q)}": float(np.percentile(v, q)) for q in qs}


@dataclass(frozen=True)
class ClinicalThreshold:
    threshold: float
    target_sensitivity: float
    sensitivity: float
    specificity: float
    specificity_at_default: float

    def as_dict(self) -> dict[str, float]:
        return {
            "threshold": self.threshold,
            "target_sensitivity": self.target_sensitivity,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "specificity_at_0_5": self.specificity_at_default,
            "specificity_cost": self.specificity_at_default - self.specificity,
        }


def choose_threshold(
    y_true: ArrayLike, p_malignant: ArrayLike, target_sensitivity: float
) -> ClinicalThreshold:
    """The highest threshold whose sensitivity (p >= t is malignant) reaches the target.

    The highest such threshold keeps the most specificity; it is one of the malignant scores.
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(p_malignant, dtype=float)
    positives = np.sort(p[t])[::-1]
    if len(positives) == 0:
        raise ValueError("choose_threshold needs at least one malignant row")
    needed = max(1, math.ceil(target_sensitivity * len(positives) - 1e-9))
    threshold = float(positives[needed - 1])
    at = confusion_metrics(Confusion.from_predictions(t, p >= threshold))
    default = confusion_metrics(Confusion.from_predictions(t, p >= DEFAULT_THRESHOLD))
    return ClinicalThreshold(
        threshold=threshold,
        target_sensitivity=target_sensitivity,
        sensitivity=at["sensitivity"],
        specificity=at["specificity"],
        specificity_at_default=default["specificity"],
    )
