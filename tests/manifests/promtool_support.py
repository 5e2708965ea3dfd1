"""Alert rules under Prometheus's own ``promtool``: the rendered PrometheusRule's groups written
as a rules file, unit tests (``promtool test rules``) with synthetic series, and the series the
servers really export, so a synthetic series cannot carry a label the servers do not.

The series' labels come from the servers' own prometheus_client definitions (assay.obs:
serving_metrics, bias_scorer_metrics, PrometheusLLMMetrics) registered on a fresh registry, each
exercised once and read back through the text exposition a scrape gets, plus the labels
Prometheus adds when it scrapes through our PodMonitors (``job``, ``instance``, ``namespace``,
``pod``, ``container`` from prometheus-operator, and each relabeling's ``targetLabel``: ``isvc``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

HOW_TO_GET = "install Prometheus's promtool (Debian/Ubuntu: `apt-get install prometheus`)"
REQUIRE_ENV = "ASSAY_REQUIRE_PROMTOOL"
OPERATOR_TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container"})
NAMESPACE = "assay"

Labels = frozenset[str]


def promtool() -> str:
    """The promtool binary; else skip with one line (fail under ASSAY_REQUIRE_PROMTOOL=1: CI)."""
    found = shutil.which("promtool")
    if found is not None:
        return found
    message = f"promtool is not on PATH: {HOW_TO_GET}"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(message)


def run_promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def rule_groups(objs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule group of every rendered PrometheusRule, as a Prometheus rules file holds them."""
    return [
        group for obj in objs if obj["kind"] == "PrometheusRule" for group in obj["spec"]["groups"]
    ]


def alert_names(groups: list[dict[str, Any]]) -> set[str]:
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def write_rules(groups: list[dict[str, Any]], folder: Path) -> Path:
    path = folder / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    return path


def write_tests(tests: list[dict[str, Any]], rules: Path, folder: Path) -> Path:
    path = folder / "tests.yaml"
    document = {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": tests}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# ---------------------------------------------------------------------------------------------
# What the servers export
# ---------------------------------------------------------------------------------------------


@cache
def _scraped() -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    """(sample name, labels) of every sample in the servers' text exposition."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from assay.obs.metrics_llm import PrometheusLLMMetrics
    from assay.obs.metrics_serving import bias_scorer_metrics, serving_metrics

    registry = CollectorRegistry()
    serving_metrics(registry)
    bias_scorer_metrics(registry)
    PrometheusLLMMetrics(registry)
    for collector in list(registry._collector_to_names):
        _exercise(collector)
    return tuple(
        (sample.name, tuple(sample.labels.items()))
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    )


def exported_samples() -> dict[str, Labels]:
    """Sample name (with _bucket, _count, _sum, _total) -> its label names, as scraped."""
    labels: dict[str, set[str]] = {}
    for name, pairs in _scraped():
        labels.setdefault(name, set()).update(label for label, _ in pairs)
    return {name: frozenset(names) for name, names in labels.items()}


def bucket_bounds(histogram: str) -> tuple[str, ...]:
    """The ``le`` values a histogram exports, as the exposition spells them ("0.1", "+Inf")."""
    bounds = [dict(pairs)["le"] for name, pairs in _scraped() if name == f"{histogram}_bucket"]
    assert bounds, f"{histogram} exports no buckets"
    return tuple(dict.fromkeys(bounds))


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
    else:  # pragma: no cover - a new metric type: teach this helper
        raise AssertionError(f"unexpected metric type {kind!r}")


def scrape_labels(objs: Iterable[dict[str, Any]]) -> Labels:
    """The labels Prometheus adds to every series it scrapes through the rendered PodMonitors."""
    added = set(OPERATOR_TARGET_LABELS)
    for monitor in (o for o in objs if o["kind"] == "PodMonitor"):
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert "port" not in endpoint and "targetPort" not in endpoint, (
                f"PodMonitor {monitor['metadata']['name']}: a named port adds an `endpoint` "
                "target label that shadows the LLM metrics' own `endpoint` label"
            )
            added.update(r["targetLabel"] for r in endpoint.get("relabelings", []))
    return frozenset(added)


# ---------------------------------------------------------------------------------------------
# Synthetic series, held to the exported label sets
# ---------------------------------------------------------------------------------------------


@dataclass
class Scrape:
    """Builds promtool ``input_series`` for one pod of one InferenceService, refusing a sample
    name the servers do not export and a label set other than the exported one."""

    added: Labels
    isvc: str
    series: list[dict[str, str]] = field(default_factory=list)

    def target_labels(self) -> dict[str, str]:
        known = {
            "job": f"{NAMESPACE}/{self.isvc}",
            "instance": "10.0.0.1:8080",
            "namespace": NAMESPACE,
            "pod": f"{self.isvc}-predictor-0",
            "container": "kserve-container",
            "isvc": self.isvc,
        }
        missing = self.added - set(known)
        assert not missing, f"teach Scrape the scrape labels {sorted(missing)}"
        return {name: known[name] for name in self.added}

    def add(self, sample: str, values: str, **own: str) -> Scrape:
        exported = exported_samples()
        assert sample in exported, f"{sample} is not exported by any server"
        assert set(own) == set(exported[sample]), (
            f"{sample} carries {sorted(exported[sample])}, the test gave {sorted(own)}"
        )
        labels = {**self.target_labels(), **own}
        selector = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        self.series.append({"series": f"{sample}{{{selector}}}", "values": values})
        return self

    def histogram(self, name: str, per_minute: Mapping[float, float], **own: str) -> Scrape:
        """A histogram receiving, each minute, ``per_minute[value]`` observations of each value,
        for 60 minutes (cumulative buckets, ``_count`` and ``_sum``)."""
        for le in bucket_bounds(name):
            bound = float("inf") if le == "+Inf" else float(le)
            rate = sum(n for value, n in per_minute.items() if value <= bound)
            self.add(f"{name}_bucket", counter(rate), le=le, **own)
        self.add(f"{name}_count", counter(sum(per_minute.values())), **own)
        if f"{name}_sum" in exported_samples():  # none for a histogram with negative buckets
            total = sum(value * n for value, n in per_minute.items())
            self.add(f"{name}_sum", counter(total), **own)
        return self


def counter(per_minute: float, minutes: int = 60) -> str:
    """promtool's expanding notation: a counter growing by ``per_minute`` each minute."""
    return f"0+{per_minute:g}x{minutes}"


def gauge(value: float, minutes: int = 60) -> str:
    return f"{value:g}x{minutes}"
