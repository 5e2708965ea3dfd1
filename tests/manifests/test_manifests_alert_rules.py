"""The PrometheusRule's alerts under ``promtool test rules``: for every alert one case where it
fires (with the labels and annotations it must carry) and one where it stays silent, on
synthetic series that carry exactly the labels the servers export (promtool_support.Scrape).

An alert that reads a metric the servers do not export, matches or groups by a label the series
lack, or drops a label its annotations print cannot pass its firing case; one that mixes the two
servers' series, or counts client mistakes as server errors, cannot pass its silent case.
The Grafana dashboard's queries run on the same kind of series: each returns data, and each label
its legend prints is on every result.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from manifest_support import REPO_ROOT, find, render
from promtool_support import (
    Scrape,
    alert_names,
    bucket_bounds,
    counter,
    exported_samples,
    gauge,
    rule_groups,
    run_promtool,
    scrape_labels,
    write_rules,
    write_tests,
)

pytestmark = pytest.mark.manifests

OVERLAYS = ["dev", "prod"]
CLASSIFIER, SCORER = "wdbc-classifier", "bias-scorer"
RATER, ENDPOINT = "openai", "https://api.openai.com/v1"


@dataclass(frozen=True)
class Case:
    """One promtool test group: series, one evaluation time, the alerts expected then."""

    alert: str
    fires: bool
    what: str
    series: tuple[Scrape, ...]
    eval_time: str
    expected: tuple[dict[str, Any], ...] = ()

    def as_promtool(self) -> dict[str, Any]:
        return {
            "name": f"{self.alert} {'fires' if self.fires else 'stays silent'}: {self.what}",
            "interval": "1m",
            "input_series": [s for scrape in self.series for s in scrape.series],
            "alert_rule_test": [
                {
                    "eval_time": self.eval_time,
                    "alertname": self.alert,
                    "exp_alerts": list(self.expected),
                }
            ],
        }


def _alert(labels: dict[str, str], summary: str, description: str | None = None) -> dict[str, Any]:
    annotations = {"summary": summary}
    if description is not None:
        annotations["description"] = description
    return {"exp_labels": labels, "exp_annotations": annotations}


def _server(severity: str, isvc: str) -> dict[str, str]:
    return {"severity": severity, "namespace": "assay", "isvc": isvc}


def _requests(
    added: frozenset[str], isvc: str, answered: float, errors: dict[str, float]
) -> Scrape:
    """``answered`` requests a minute (0.01 s each) and ``errors`` (reason -> a minute)."""
    scrape = Scrape(added, isvc).histogram("prediction_latency_seconds", {0.01: answered})
    for reason, per_minute in errors.items():
        scrape.add("inference_errors_total", counter(per_minute), reason=reason)
    return scrape


def _latency(added: frozenset[str], isvc: str, seconds: float) -> Scrape:
    return Scrape(added, isvc).histogram("prediction_latency_seconds", {seconds: 60})


def _confidence(added: frozenset[str], low: float, high: float) -> Scrape:
    """``low`` predictions a minute at confidence 0.65, ``high`` at 0.95."""
    return Scrape(added, CLASSIFIER).histogram("model_confidence", {0.65: low, 0.95: high})


def _spend(added: frozenset[str], usd_per_minute: float, budget: float) -> Scrape:
    scrape = Scrape(added, SCORER)
    scrape.add("llm_cost_usd_total", counter(usd_per_minute), rater=RATER)
    return scrape.add("llm_daily_budget_usd", gauge(budget))


def _breaker(added: frozenset[str], values: str) -> Scrape:
    return Scrape(added, SCORER).add("llm_breaker_state", values, rater=RATER, endpoint=ENDPOINT)


def alert_cases(added: frozenset[str]) -> list[Case]:
    """Every alert's firing and silent cases (``added``: the PodMonitors' scrape labels)."""
    error_summary = "{}: more than 5% of requests failed with a server error (5 min)"
    budget = {"severity": "warning", "namespace": "assay"}
    breaker = {**budget, "rater": RATER, "endpoint": ENDPOINT}
    return [
        Case(
            "AssayServerErrorRateHigh",
            True,
            "10% of the classifier's requests end in an internal error",
            (_requests(added, CLASSIFIER, 54, {"internal": 6}),),
            "10m",
            (
                _alert(
                    _server("critical", CLASSIFIER),
                    error_summary.format(CLASSIFIER),
                    "5xx-class error share is 10% over the last 5 minutes.",
                ),
            ),
        ),
        Case(
            "AssayServerErrorRateHigh",
            False,
            "half the requests are client mistakes (4xx), 1% are server errors",
            (_requests(added, CLASSIFIER, 49, {"wrong_shape": 50, "internal": 1}),),
            "10m",
        ),
        Case(
            "AssayClassifierLatencyP95High",
            True,
            "every classifier request takes 0.2 s",
            (_latency(added, CLASSIFIER, 0.2),),
            "15m",
            (
                _alert(
                    _server("warning", CLASSIFIER),
                    f"{CLASSIFIER}: p95 prediction latency above 100 ms",
                    "p95 latency is 242.5ms over the last 5 minutes.",
                ),
            ),
        ),
        Case(
            "AssayClassifierLatencyP95High",
            False,
            "the classifier answers in 50 ms while the bias scorer takes 45 s",
            (_latency(added, CLASSIFIER, 0.05), _latency(added, SCORER, 45)),
            "15m",
        ),
        Case(
            "AssayBiasScorerLatencyP95High",
            True,
            "every bias-scorer request takes 45 s",
            (_latency(added, SCORER, 45),),
            "25m",
            (
                _alert(
                    _server("warning", SCORER),
                    f"{SCORER}: p95 request latency above its 30 s SLO",
                    "p95 latency is 58.5s over the last 10 minutes: check the LLM providers' "
                    "latency and errors (llm_latency_seconds, llm_errors_total).",
                ),
            ),
        ),
        Case(
            "AssayBiasScorerLatencyP95High",
            False,
            "the bias scorer answers in 20 s while the classifier takes 45 s",
            (_latency(added, SCORER, 20), _latency(added, CLASSIFIER, 45)),
            "25m",
        ),
        Case(
            "AssayLowConfidenceRateHigh",
            True,
            "half the predictions have confidence 0.65",
            (_confidence(added, 30, 30),),
            "30m",
            (
                _alert(
                    _server("warning", CLASSIFIER),
                    f"{CLASSIFIER}: more than 10% of predictions have confidence below 0.7",
                    "Low-confidence share is 50%: input drift or a bad model version?",
                ),
            ),
        ),
        Case(
            "AssayLowConfidenceRateHigh",
            False,
            "4% of the predictions have confidence 0.65",
            (_confidence(added, 2, 48),),
            "30m",
        ),
        Case(
            "AssayLLMDailyBudget80Percent",
            True,
            "22.5 USD spent in 45 minutes of a 20 USD day",
            (_spend(added, 0.5, 20),),
            "45m",
            (
                _alert(
                    budget,
                    "LLM API spend over the last 24 h exceeds 80% of the daily budget",
                    "Spent 22.5 USD in 24 h.",
                ),
            ),
        ),
        Case(
            "AssayLLMDailyBudget80Percent",
            False,
            "4.5 USD spent in 45 minutes of a 20 USD day",
            (_spend(added, 0.1, 20),),
            "45m",
        ),
        Case(
            "AssayLLMCircuitBreakerOpen",
            True,
            "a rater's breaker open for 15 minutes",
            (_breaker(added, gauge(2)),),
            "15m",
            (
                _alert(
                    breaker,
                    f"LLM rater {RATER} at {ENDPOINT}: circuit breaker open for 10 min",
                ),
            ),
        ),
        Case(
            "AssayLLMCircuitBreakerOpen",
            False,
            "a rater's breaker open for 5 minutes, then closed",
            (_breaker(added, "2x5 0x54"),),
            "15m",
        ),
    ]


def _promtool_test(
    groups: list[dict[str, Any]], tests: list[dict[str, Any]], folder: Path
) -> tuple[int, str]:
    rules = write_rules(groups, folder)
    result = run_promtool("test", "rules", write_tests(tests, rules, folder).name, cwd=folder)
    return result.returncode, result.stdout + result.stderr


def _alerts_and_scrape_labels(overlay: str) -> tuple[list[dict[str, Any]], frozenset[str]]:
    objs = render(overlay)
    return rule_groups(objs), scrape_labels(objs)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_promtool_accepts_the_rendered_rules(overlay: str, tmp_path: Path) -> None:
    groups, _ = _alerts_and_scrape_labels(overlay)
    assert alert_names(groups)
    result = run_promtool("check", "rules", write_rules(groups, tmp_path).name, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_alert_has_a_firing_and_a_silent_case(overlay: str) -> None:
    groups, added = _alerts_and_scrape_labels(overlay)
    covered = {(case.alert, case.fires) for case in alert_cases(added)}
    for alert in sorted(alert_names(groups)):
        assert (alert, True) in covered, f"{alert} has no case where it fires"
        assert (alert, False) in covered, f"{alert} has no case where it stays silent"
    assert {alert for alert, _ in covered} <= alert_names(groups), "a case for no alert"
    for case in alert_cases(added):
        assert bool(case.expected) == case.fires, f"{case.alert}: {case.what}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_alert_fires_and_stays_silent_under_promtool(overlay: str, tmp_path: Path) -> None:
    groups, added = _alerts_and_scrape_labels(overlay)
    tests = [case.as_promtool() for case in alert_cases(added)]
    status, output = _promtool_test(groups, tests, tmp_path)
    assert status == 0, output
    assert "SUCCESS" in output


def _mutated(groups: list[dict[str, Any]], alert: str, old: str, new: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(groups)
    rules = [r for group in changed for r in group["rules"] if r.get("alert") == alert]
    assert len(rules) == 1 and old in rules[0]["expr"], (alert, old)
    rules[0]["expr"] = rules[0]["expr"].replace(old, new)
    return changed


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        # the dashboard once grouped latency by a `model` label the histogram does not carry
        ("AssayClassifierLatencyP95High", "by (namespace, isvc, le)", "by (namespace, model, le)"),
        # a matcher on a label the series lack selects nothing
        ("AssayClassifierLatencyP95High", '{isvc="wdbc-classifier"}', '{server="wdbc-classifier"}'),
        # no isvc selector: the bias scorer's 45 s requests wake the classifier's alert
        ("AssayClassifierLatencyP95High", '{isvc="wdbc-classifier"}', ""),
        # counting every error reason counts client mistakes as server errors
        (
            "AssayServerErrorRateHigh",
            '{reason=~"internal|no_rater_answered|spend_store_unavailable"}',
            "",
        ),
        ("AssayLLMDailyBudget80Percent", "llm_cost_usd_total", "llm_cost_usd"),
    ],
)
def test_the_cases_catch_a_broken_rule(alert: str, old: str, new: str, tmp_path: Path) -> None:
    """The cases are not vacuous: each of these rule mistakes fails one of them."""
    groups, added = _alerts_and_scrape_labels("prod")
    tests = [case.as_promtool() for case in alert_cases(added) if case.alert == alert]
    status, output = _promtool_test(_mutated(groups, alert, old, new), tests, tmp_path)
    assert status != 0, f"promtool passed a broken {alert}:\n{output}"
    assert f"alertname: {alert}" in output, output


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


def test_the_5xx_alert_counts_exactly_the_server_side_error_reasons(tmp_path: Path) -> None:
    """Per reason the servers count: 10% of requests failing with it fires the alert when its
    answer is a 5xx, and half of them failing with it does not when its answer is a 4xx."""
    client, server = _server_reasons()
    assert "internal" in server and "wrong_shape" in client
    groups, added = _alerts_and_scrape_labels("prod")
    alert = "AssayServerErrorRateHigh"
    tests = []
    for reason in sorted(server | client):
        fires = reason in server
        errors = {reason: 6.0} if fires else {reason: 50.0}
        case = Case(
            alert,
            fires,
            f"reason {reason}",
            (_requests(added, SCORER, 54 if fires else 50, errors),),
            "10m",
            (
                _alert(
                    _server("critical", SCORER),
                    f"{SCORER}: more than 5% of requests failed with a server error (5 min)",
                    "5xx-class error share is 10% over the last 5 minutes.",
                ),
            )
            if fires
            else (),
        )
        tests.append(case.as_promtool())
    status, output = _promtool_test(groups, tests, tmp_path)
    assert status == 0, output


def test_every_latency_threshold_is_a_bucket_bound() -> None:
    """histogram_quantile interpolates inside a bucket and cannot see past the last finite
    bound: a threshold that is a bound is exact, and one past the last bound never fires."""
    bounds = {float(le) for le in bucket_bounds("prediction_latency_seconds")}
    assert {0.1, 30.0} <= bounds
    assert "0.7" in bucket_bounds("model_confidence")


def test_monitors_scrape_both_servers_on_the_metrics_port() -> None:
    objs = render("prod")
    for name in (CLASSIFIER, SCORER):
        monitor = find(objs, "PodMonitor", name)["spec"]
        assert monitor["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": name}
        endpoint = monitor["podMetricsEndpoints"][0]
        assert (endpoint["portNumber"], endpoint["path"]) == (8080, "/metrics")
        # the rules aggregate by isvc: the monitors must set it
        assert endpoint["relabelings"][0]["targetLabel"] == "isvc"
    runtime = find(objs, "ServingRuntime", "assay-classifier")["spec"]
    assert runtime["annotations"]["prometheus.kserve.io/port"] == "8080"
    assert scrape_labels(objs) >= {"isvc", "namespace", "pod"}


# ---------------------------------------------------------------------------------------------
# The Grafana dashboard
# ---------------------------------------------------------------------------------------------


def _traffic(added: frozenset[str]) -> list[dict[str, str]]:
    """Every series the servers export, from both servers' pods, with made-up label values."""
    exported = exported_samples()
    histograms = {name.removesuffix("_bucket") for name in exported if name.endswith("_bucket")}
    derived = {f"{h}_{part}" for h in histograms for part in ("bucket", "count", "sum")}
    series = []
    for isvc in (CLASSIFIER, SCORER):
        scrape = Scrape(added, isvc)
        for name in sorted(histograms):
            own = {label: label for label in exported[f"{name}_count"]}
            bounds = [b for b in bucket_bounds(name) if b != "+Inf"]
            scrape.histogram(name, {float(bounds[len(bounds) // 2]): 10}, **own)
        for name in sorted(set(exported) - derived):
            if name.endswith("_created"):
                continue
            values = counter(1) if name.endswith("_total") else gauge(1)
            scrape.add(name, values, **{label: label for label in exported[name]})
        series += scrape.series
    return series


def _dashboard_targets(objs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(panel title, expr, legendFormat) of every query of the dashboard."""
    config_map = find(objs, "ConfigMap", "assay-grafana-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"  # the sidecar's selector
    dashboard = json.loads(config_map["data"]["assay.json"])
    return [
        (panel["title"], target["expr"], target.get("legendFormat", ""))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def _legend_labels(legend: str) -> list[str]:
    return re.findall(r"\{\{\s*(\w+)\s*\}\}", legend)


def _without_label(expr: str, label: str) -> str:
    """A query returning a sample for each result of ``expr`` that lacks ``label``: such a
    result's label is empty, which label_replace marks as "missing" for the join."""
    marked = f'label_replace(group by ({label}) ({expr}), "{label}", "missing", "{label}", "")'
    probe = f'label_replace(vector(1), "{label}", "missing", "", "")'
    return f"{marked} and on ({label}) {probe}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_dashboard_query_returns_data_with_its_legend_labels(
    overlay: str, tmp_path: Path
) -> None:
    objs = render(overlay)
    targets = _dashboard_targets(objs)
    assert targets
    checks = []
    for _, expr, legend in targets:
        checks.append({"expr": f"absent({expr})", "eval_time": "30m", "exp_samples": []})
        for label in _legend_labels(legend):
            checks.append(
                {"expr": _without_label(expr, label), "eval_time": "30m", "exp_samples": []}
            )
    test = {
        "interval": "1m",
        "input_series": _traffic(scrape_labels(objs)),
        "promql_expr_test": checks,
    }
    status, output = _promtool_test([], [test], tmp_path)
    assert status == 0, output


def test_the_dashboard_checks_catch_a_missing_metric_and_a_lost_legend_label(
    tmp_path: Path,
) -> None:
    objs = render("prod")
    traffic = _traffic(scrape_labels(objs))
    lost = "sum by (rater) (rate(llm_calls_total[5m]))"
    checks = [
        {"expr": "absent(rate(no_such_metric_total[5m]))", "eval_time": "30m", "exp_samples": []},
        {"expr": _without_label(lost, "outcome"), "eval_time": "30m", "exp_samples": []},
    ]
    test = {"interval": "1m", "input_series": traffic, "promql_expr_test": checks}
    status, output = _promtool_test([], [test], tmp_path)
    assert status != 0
    assert "no_such_metric_total" in output and "outcome" in output, output
