"""The bias-study pipeline as a cluster runs it: corpus, ensemble and ratings store on s3://.

kfp.local (SubprocessRunner) runs the real pipeline with its inputs on moto's standalone S3
server on 127.0.0.1 (MinIO's stand-in; the steps use the real ``minio`` client) and the raters
calling the simulated LLM endpoint started on loopback by this test (the Ray fan-out joins the
session's Ray). Submitted twice with the same store: the second run must send the simulator
ZERO requests, counted by the simulator itself, and produce the same ratings. Nothing is
mocked.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.llm.ensemble import bundled_ensemble_path
from assay.sim import SimConfig, start_sim_server
from assay.storage.s3 import ObjectStore, S3Location
from assay.workflow.kfp_local import KfpLocalRun, execute

pytestmark = [pytest.mark.pipeline, pytest.mark.integration, pytest.mark.s3, pytest.mark.slow]

PASSAGES, RATERS = 10, 3
SIM_URL_REFERENCE = "${ASSAY_SIM_URL:-http://127.0.0.1:8000}"


def requests_received(stats: dict[str, Any]) -> int:
    """Every request that reached the simulator, over all simulated models."""
    return sum(int(model["received"]) for model in stats["models"].values())


@pytest.fixture(scope="module")
def environment(s3_endpoint: str, ray_cluster: dict[str, str]) -> Iterator[None]:
    """MINIO_* at the S3 server and the session's Ray, inherited by the kfp.local steps."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "MINIO_ENDPOINT": s3_endpoint,
            "MINIO_ACCESS_KEY": "testing-access",
            "MINIO_SECRET_KEY": "testing-secret",
            "MINIO_SECURE": "false",
            "MINIO_REGION": "us-east-1",
            **ray_cluster,
        }.items():
            patch.setenv(name, value)
        patch.delenv("ASSAY_ENSEMBLE", raising=False)
        yield


@pytest.fixture(scope="module")
def runs(environment: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two submissions of one study; the simulator's request count after each."""
    from assay_pipelines.bias_study import bias_study_pipeline

    base = tmp_path_factory.mktemp("bias-s3")
    bucket = f"assay-pipelines-{uuid.uuid4().hex[:8]}"
    objects = ObjectStore()
    objects.client.make_bucket(bucket)
    corpus = generate_corpus(SyntheticSpec(n_passages=PASSAGES, n_textbooks=5, seed=11))
    objects.put_bytes(
        S3Location(bucket, "bias/corpus.csv"), corpus.to_csv(index=False).encode(), "text/csv"
    )
    with start_sim_server(config=SimConfig(seed=11)) as sim:
        ensemble = bundled_ensemble_path("sim").read_text().replace(SIM_URL_REFERENCE, sim.base_url)
        assert sim.base_url in ensemble
        objects.put_bytes(S3Location(bucket, "bias/ensemble.yaml"), ensemble.encode(), "text/yaml")
        arguments = {
            "kind": "corpus",
            "source": f"s3://{bucket}/bias/corpus.csv",
            "ensemble": f"s3://{bucket}/bias/ensemble.yaml",
            "store_dir": f"s3://{bucket}/bias/ratings-store",
            "concurrency": 8,
            "n_boot": 50,
            "draws": 150,
            "tune": 150,
            "chains": 2,
            "seed": 11,
        }
        first = execute(bias_study_pipeline, arguments, base / "first")
        after_first = requests_received(sim.stats())
        second = execute(bias_study_pipeline, arguments, base / "second")
        after_second = requests_received(sim.stats())
    yield {
        "first": first,
        "second": second,
        "requests_first": after_first,
        "requests_second": after_second - after_first,
        "objects": objects,
        "bucket": bucket,
    }


def ratings_of(run: KfpLocalRun) -> pd.DataFrame:
    frame = pd.read_parquet(run.task_dir("bias-rate") / "rated" / "ratings.parquet")
    return frame.sort_values(["passage_id", "rater"]).reset_index(drop=True)


def test_the_first_run_rates_every_passage_through_the_simulator(runs: dict[str, Any]) -> None:
    ratings = ratings_of(runs["first"])
    assert len(ratings) == PASSAGES * RATERS
    assert runs["requests_first"] >= PASSAGES * RATERS  # retries of refusals may add a few
    segments = runs["objects"].list_keys(S3Location(runs["bucket"], "bias/ratings-store/"))
    assert segments and all(key.endswith(".jsonl") for key in segments)


def test_the_resubmitted_run_makes_zero_provider_calls_and_the_same_ratings(
    runs: dict[str, Any],
) -> None:
    assert runs["requests_second"] == 0, "the simulator saw requests on the resumed run"
    pd.testing.assert_frame_equal(ratings_of(runs["second"]), ratings_of(runs["first"]))
    rating_run = json.loads(
        (runs["second"].task_dir("bias-rate") / "rated" / "rating_run.json").read_text()
    )
    assert rating_run["skipped"] == PASSAGES * RATERS and rating_run["rated"] == 0


def test_the_report_step_logs_the_studys_metrics_for_the_dashboard(runs: dict[str, Any]) -> None:
    report = runs["second"].task_dir("bias-report")
    output = json.loads((report / "executor_output.json").read_text())
    (metrics,) = output["artifacts"]["metrics"]["artifacts"]
    logged = metrics["metadata"]
    summary = json.loads((report / "study" / "summary.json").read_text())
    agreement = json.loads((report / "study" / "agreement.json").read_text())
    assert logged["krippendorff_alpha"] == pytest.approx(agreement["alpha"])
    assert logged["krippendorff_ci_low"] == pytest.approx(agreement["ci_low"])
    assert logged["rhat_max"] == pytest.approx(summary["diagnostics"]["rhat_max"])
    assert logged["ess_bulk_min"] == pytest.approx(summary["diagnostics"]["ess_bulk_min"])
    assert logged["divergences"] == summary["diagnostics"]["divergences"]
    for effect in summary["publisher_effects"]:
        name = effect["publisher"]
        assert logged[f"effect/{name}/mean"] == pytest.approx(effect["mean"])
        assert logged[f"effect/{name}/hdi_low"] <= logged[f"effect/{name}/hdi_high"]
