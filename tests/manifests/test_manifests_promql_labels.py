"""Every label the alert rules and the Grafana dashboard name exists on the series they read.

The label sets come from the servers' own prometheus_client definitions (assay.obs:
serving_metrics, bias_scorer_metrics, PrometheusLLMMetrics, registered on a fresh registry and
each exercised once, so every sample name - _bucket, _count, _sum, _total - and label appears),
plus the labels Prometheus adds when it scrapes through our PodMonitors:

- ``job``, ``instance``, ``namespace``, ``pod``, ``container``: what prometheus-operator's
  PodMonitor scrape config sets on every target (no ``endpoint``: our monitors use
  ``portNumber``, and the operator adds ``endpoint`` only for a named ``port``/``targetPort``,
  which would rename the LLM metrics' own ``endpoint`` label to ``exported_endpoint``);
- every ``targetLabel`` of the PodMonitors' relabelings (``isvc``), read from the render.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest
from manifest_support import find, render
from promql_labels import Labels, check

pytestmark = pytest.mark.manifests

OPERATOR_TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container"})


@cache
def exported_labels() -> dict[str, Labels]:
    """Sample name -> label names, for every series the two servers define."""
    from prometheus_client import CollectorRegistry

    from assay.obs.metrics_llm import PrometheusLLMMetrics
    from assay.obs.metrics_serving import bias_scorer_metrics, serving_metrics

    registry = CollectorRegistry()
    serving_metrics(registry)
    bias_scorer_metrics(registry)
    PrometheusLLMMetrics(registry)
    for collector in list(registry._collector_to_names):
        _exercise(collector)
    labels: dict[str, set[str]] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: frozenset(names) for name, names in labels.items()}


def _exercise(metric: Any) -> None:
    """One observation per metric (a labelled one through a child), so its samples exist."""
    child = metric.labels(*["x"] * len(metric._labelnames)) if metric._labelnames else metric
    kind = metric._type
    if kind == "counter":
        child.inc()
    elif kind == "gauge":
        child.set(1)
    elif kind == "histogram":
        child.observe(0.5)
    else:  # pragma: no cover - a new metric type: teach this test
        raise AssertionError(f"unexpected metric type {kind!r}")


def scrape_labels(objs: list[dict[str, Any]]) -> Labels:
    added = set(OPERATOR_TARGET_LABELS)
    for monitor in (o for o in objs if o["kind"] == "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert "port" not in endpoint and "targetPort" not in endpoint, (
                f"PodMonitor {monitor['metadata']['name']}: a named port adds an `endpoint` "
                "target label that shadows the LLM metrics' own `endpoint` label"
            )
            added.update(r["targetLabel"] for r in endpoint.get("relabelings", []))
    return frozenset(added)


def _labels_of(objs: list[dict[str, Any]]) -> Any:
    exported, added = exported_labels(), scrape_labels(objs)

    def labels_of(metric: str) -> Labels | None:
        return exported[metric] | added if metric in exported else None

    return labels_of


def rule_queries(objs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Alert name -> (expr, the annotations' text)."""
    rule = find(objs, "PrometheusRule", "assay-alerts")
    return {
        r["alert"]: (r["expr"], json.dumps(r.get("annotations", {})))
        for group in rule["spec"]["groups"]
        for r in group["rules"]
    }


def dashboard_queries(objs: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Panel target -> (expr, legendFormat)."""
    config_map = find(objs, "ConfigMap", "assay-grafana-dashboard")
    dashboard = json.loads(config_map["data"]["assay.json"])
    return {
        f"{panel['title']} #{i}": (target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for i, target in enumerate(panel.get("targets", []))
    }


def test_the_label_sets_come_from_the_servers_definitions() -> None:
    exported = exported_labels()
    assert exported["predictions_total"] == {"model", "version", "prediction"}
    assert exported["prediction_latency_seconds_bucket"] == {"le"}
    assert exported["llm_breaker_state"] == {"rater", "endpoint"}
    assert exported["bias_rater_unavailable_total"] == {"rater"}
    assert scrape_labels(render("prod")) >= {"isvc", "namespace", "pod"}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_label_and_metric_in_the_alert_rules_exists(overlay: str) -> None:
    objs = render(overlay)
    labels_of = _labels_of(objs)
    for alert, (expr, notes) in rule_queries(objs).items():
        report, result = check(expr, labels_of)
        assert not report.problems, f"{alert}: {report.problems}"
        assert report.metrics, f"{alert} reads no metric"
        # {{ $labels.x }} in the annotations must survive the expression's aggregations
        for label in re.findall(r"\$labels\.(\w+)", notes):
            assert result is not None and label in result, f"{alert}: $labels.{label} is gone"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_label_and_metric_in_the_dashboard_exists(overlay: str) -> None:
    objs = render(overlay)
    labels_of = _labels_of(objs)
    queries = dashboard_queries(objs)
    assert queries
    for panel, (expr, legend) in queries.items():
        report, result = check(expr, labels_of)
        assert not report.problems, f"panel {panel!r}: {report.problems}"
        for label in re.findall(r"\{\{\s*(\w+)\s*\}\}", legend):
            assert result is not None and label in result, f"panel {panel!r}: legend {label}"


def test_the_checker_catches_grouping_by_a_label_the_series_lack() -> None:
    """The dashboard before this change grouped latency `by (le, model)`: caught."""
    labels_of = _labels_of(render("prod"))
    before = (
        "histogram_quantile(0.95, sum by (le, model) "
        '(rate(prediction_latency_seconds_bucket{namespace="assay"}[5m])))'
    )
    report, _ = check(before, labels_of)
    assert any("'model'" in p for p in report.problems), report.problems
    for bad in (
        'prediction_latency_seconds_bucket{server="x"}',  # matcher on a missing label
        "sum without (rater) (rate(predictions_total[5m]))",
        "max by (isvc) (no_such_metric)",
        "sum by (isvc) (rate(inference_errors_total[5m])) / sum by (pod) (model_info)",
    ):
        assert check(bad, labels_of)[0].problems, bad
    good = 'sum by (isvc, le) (rate(prediction_latency_seconds_bucket{isvc="bias-scorer"}[5m]))'
    assert check(good, labels_of)[0].problems == []
