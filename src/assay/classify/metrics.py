"""Clinical metrics (malignant = positive), their summaries with CIs, and the clinical threshold.

Confusion-matrix metrics come from ``sklearn.metrics`` with ``zero_division=np.nan``: a metric
whose denominator is empty (e.g. PPV with no positive prediction) is undefined (NaN), never a
silent 0.0 (``names.UNDEFINED_NOTE``); ``summarize`` averages the folds where it is defined.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats
from sklearn.metrics import (
    average_precision_score,
    matthews_corrcoef,
    precision_recall_fscore_support,
    roc_auc_score,
)

from assay.classify.names import METRIC_NAMES

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, NDArray

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

    @property
    def total(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    def labels(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(y_true, y_pred) with exactly these counts, for scikit-learn's metric functions."""
        y_true = np.repeat([0, 0, 1, 1], [self.tn, self.fp, self.fn, self.tp])
        y_pred = np.repeat([0, 1, 0, 1], [self.tn, self.fp, self.fn, self.tp])
        return y_true.astype(np.int64), y_pred.astype(np.int64)


CONFUSION_METRICS = ("accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "mcc")


def confusion_metrics(c: Confusion) -> dict[str, float]:
    """accuracy, sensitivity, specificity, PPV, NPV, F1, MCC of one confusion matrix; NaN
    where undefined (an empty denominator), see the module docstring."""
    if c.total == 0:
        return dict.fromkeys(CONFUSION_METRICS, float("nan"))
    y_true, y_pred = c.labels()
    precision, recall, f1, _ = precision_recall_fscore_support(
        y_true, y_pred, labels=[0, 1], average=None, zero_division=np.nan
    )
    margins = (c.tp + c.fp, c.tp + c.fn, c.tn + c.fp, c.tn + c.fn)
    # matthews_corrcoef has no zero_division and returns 0.0 when a margin is empty
    mcc = float(matthews_corrcoef(y_true, y_pred)) if min(margins) > 0 else float("nan")
    return {
        "accuracy": (c.tp + c.tn) / c.total,
        "sensitivity": float(recall[1]),
        "specificity": float(recall[0]),
        "ppv": float(precision[1]),
        "npv": float(precision[0]),
        "f1": float(f1[1]),
        "mcc": mcc,
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
