"""The PrometheusRule alerts on metric names and label values the servers really export.

The exported names come from the servers' own metric definitions (assay.obs.metrics_serving,
assay.obs.metrics_llm) registered on a fresh CollectorRegistry and exercised once; the 5xx
reasons from the servers' source (count_error / BadRequest calls).
"""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any

import pytest
from manifest_support import REPO_ROOT, find, render

pytestmark = pytest.mark.manifests

PROMQL_WORDS = {
    "sum", "max", "min", "avg", "by", "without", "rate", "increase", "histogram_quantile",
    "and", "or", "unless", "on", "ignoring", "group_left", "group_right", "scalar",
}  # fmt: skip
ALERTS = {
    "AssayServerErrorRateHigh",
    "AssayClassifierLatencyP95High",
    "AssayBiasScorerLatencyP95High",
    "AssayLowConfidenceRateHigh",
    "AssayLLMDailyBudget80Percent",
}
# (alert, the InferenceService it watches, its p95 threshold in seconds)
LATENCY_SLOS = [
    ("AssayClassifierLatencyP95High", "wdbc-classifier", "0.1"),
    ("AssayBiasScorerLatencyP95High", "bias-scorer", "30"),
]


def _rules() -> dict[str, dict[str, Any]]:
    rule = find(render("prod"), "PrometheusRule", "assay-alerts")
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def _metric_names(expr: str) -> set[str]:
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return words - PROMQL_WORDS


def _serving_metrics_on(registry: Any) -> Any:
    from assay.obs import metrics_serving

    metrics = metrics_serving.serving_metrics(registry)
    if "prediction_latency_seconds" not in {family.name for family in registry.collect()}:
        # serving_metrics caches by id(registry); a freed registry's id can be reused, which
        # returns collectors bound to the dead registry. Drop that stale entry and retry.
        metrics_serving._serving.pop(id(registry), None)
        metrics = metrics_serving.serving_metrics(registry)
    return metrics


@cache
def _exported_samples() -> dict[str, list[dict[str, str]]]:
    from prometheus_client import CollectorRegistry

    from assay.obs.metrics_llm import PrometheusLLMMetrics

    registry = CollectorRegistry()
    serving = _serving_metrics_on(registry)
    serving.predictions.labels("wdbc-classifier", "v1", "benign").inc()
    serving.latency.observe(0.01)
    serving.confidence.observe(0.9)
    serving.count_error("internal")
    serving.model_info.labels("wdbc-classifier", "v1", "rf", "0.3").set(1)
    llm = PrometheusLLMMetrics(registry)
    llm.cost("openai", 0.01)
    llm.set_daily_budget(20.0)
    llm.breaker_state("openai", "https://api.openai.com/v1", 0)
    llm.call("openai", "https://api.openai.com/v1", "ok")
    llm.latency("openai", "https://api.openai.com/v1", 0.4)
    samples: dict[str, list[dict[str, str]]] = {}
    for family in registry.collect():
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(dict(sample.labels))
    return samples


def test_the_four_required_alerts_exist_on_the_right_metrics() -> None:
    rules = _rules()
    assert set(rules) >= ALERTS
    assert "inference_errors_total" in rules["AssayServerErrorRateHigh"]["expr"]
    for alert, server, threshold in LATENCY_SLOS:
        latency = rules[alert]["expr"]
        assert "histogram_quantile(0.95" in latency, alert
        assert f'prediction_latency_seconds_bucket{{isvc="{server}"}}' in latency, alert
        assert re.search(rf">\s*{re.escape(threshold)}\s*$", latency.strip()), alert
    confidence = rules["AssayLowConfidenceRateHigh"]["expr"]
    assert 'model_confidence_bucket{le="0.7"}' in confidence
    assert re.search(r">\s*0\.10?\b", confidence)
    budget = rules["AssayLLMDailyBudget80Percent"]["expr"]
    assert "llm_cost_usd_total[24h]" in budget and "0.8 * " in budget
    assert "llm_daily_budget_usd" in budget
    assert re.search(r">\s*0\.05\b", rules["AssayServerErrorRateHigh"]["expr"])
    assert "[5m]" in rules["AssayServerErrorRateHigh"]["expr"]


def test_no_latency_rule_mixes_the_two_servers() -> None:
    """The servers share prediction_latency_seconds; their SLOs differ 300-fold."""
    for name, rule in _rules().items():
        if "prediction_latency_seconds_bucket" in rule["expr"]:
            selector = r'prediction_latency_seconds_bucket\{[^}]*isvc="[a-z-]+"'
            assert re.search(selector, rule["expr"]), f"{name} reads both servers' latency"


def test_every_metric_in_the_rules_is_exported_by_the_servers() -> None:
    exported = _exported_samples()
    for name, rule in _rules().items():
        used = _metric_names(rule["expr"])
        assert used, name
        assert used <= set(exported), f"{name}: {sorted(used - set(exported))} not exported"


def test_confidence_histogram_has_the_0_7_bucket_the_alert_reads() -> None:
    buckets = {labels["le"] for labels in _exported_samples()["model_confidence_bucket"]}
    assert "0.7" in buckets


def test_every_latency_threshold_is_a_bucket_bound() -> None:
    """histogram_quantile interpolates inside a bucket and cannot see past the last finite
    bound: a threshold that is a bound is exact, and one past the last bound never fires."""
    buckets = {
        float(labels["le"]) for labels in _exported_samples()["prediction_latency_seconds_bucket"]
    }
    for alert, _, threshold in LATENCY_SLOS:
        assert float(threshold) in buckets, f"{alert}: {threshold} s is not a bucket bound"


def _server_reasons() -> tuple[set[str], set[str]]:
    """(client reasons -> 4xx, server reasons -> 5xx) found in the servers' source."""
    # reasons counted by name whose answer is a 4xx: bad bodies, and the scorer's 429 (queue_full)
    client, server = {"malformed_json", "malformed_request", "queue_full"}, set()
    for path in sorted((REPO_ROOT / "src" / "assay" / "serving").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            literals = [a.value for a in node.args if isinstance(a, ast.Constant)]
            strings = [v for v in literals if isinstance(v, str)]
            if name == "BadRequest" and len(node.args) >= 2 and strings:
                client.add(strings[-1])
            elif name == "count_error" and strings:
                server.add(strings[0])
    return client, server - client


def test_5xx_alert_counts_exactly_the_server_side_error_reasons() -> None:
    client, server = _server_reasons()
    assert "internal" in server and "wrong_shape" in client
    expr = _rules()["AssayServerErrorRateHigh"]["expr"]
    pattern = re.search(r'inference_errors_total\{reason=~"([^"]+)"\}', expr)
    assert pattern, "the numerator must select server-side reasons"
    for reason in server:
        assert re.fullmatch(pattern.group(1), reason), f"5xx reason {reason!r} not counted"
    for reason in client:
        assert not re.fullmatch(pattern.group(1), reason), f"4xx reason {reason!r} counted"


def test_monitors_scrape_both_servers_on_the_metrics_port() -> None:
    objs = render("prod")
    for name in ("wdbc-classifier", "bias-scorer"):
        monitor = find(objs, "PodMonitor", name)["spec"]
        assert monitor["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": name}
        endpoint = monitor["podMetricsEndpoints"][0]
        assert (endpoint["portNumber"], endpoint["path"]) == (8080, "/metrics")
        # the rules aggregate by isvc: the monitors must set it
        assert endpoint["relabelings"][0]["targetLabel"] == "isvc"
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]
    assert runtime["annotations"]["prometheus.kserve.io/port"] == "8080"


def test_grafana_dashboard_queries_exported_metrics() -> None:
    import json

    config_map = find(render("prod"), "ConfigMap", "assay-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["assay.json"])
    exported = set(_exported_samples())
    for panel in dashboard["panels"]:
        for query in panel["targets"]:
            assert _metric_names(query["expr"]) <= exported, query["expr"]
