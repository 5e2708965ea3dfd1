"""The bias study as five folder-in, folder-out steps, one per bias-pipeline component.

load -> rate -> analyse (aggregate + agreement) -> fit (Bayesian model) -> report

Every step reads the artifacts of the steps before it from disk and writes its own, so a run
can be resumed or inspected at any point and reports come from stored files, never from
process memory. The run folder the report step assembles holds::

    study.json           source, scale, publisher-name mapping, import notes
    passages.parquet     the validated corpus (with ground truth when it has one)
    ratings.parquet      the long ratings table (assay.bias.ratings.RATINGS_COLUMNS)
    passage_stats.parquet per passage: n valid/failed, mean, median, std
    agreement.json       Krippendorff's alpha + bootstrap CI, per-rater, pairwise, Friedman
    posterior.nc         ArviZ InferenceData (posterior, prior, predictive draws, diagnostics)
    summary.json         publisher effects with HDIs and verdicts, raters, diagnostics, PPC
    report.html          self-contained report; figures/*.png
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from assay.bias.aggregate import check_scale, passage_stats
from assay.bias.agreement import agreement_report
from assay.bias.babe import load_babe
from assay.bias.bayes import BayesConfig, fit
from assay.bias.corpus import load_corpus, load_ratings, validate_corpus
from assay.bias.effects import VerdictSettings, build_summary
from assay.bias.io import read_json, write_json, write_netcdf, write_parquet
from assay.bias.ppc import new_passage_checks
from assay.bias.predictive import check_statistics
from assay.bias.rating.fanout import rate_passages
from assay.bias.report import write_report
from assay.bias.store import open_ratings_store
from assay.bias.synthetic import SyntheticSpec, generate_corpus
from assay.errors import UsageError
from assay.llm.ensemble import load_ensemble
from assay.obs.logging import get_logger

log = get_logger(__name__)

SOURCE_KINDS = ("corpus", "babe", "ratings", "synthetic")
STUDY_FILE = "study.json"
PASSAGES_FILE = "passages.parquet"
IMPORTED_FILE = "imported_ratings.parquet"
RATINGS_FILE = "ratings.parquet"
STATS_FILE = "passage_stats.parquet"
AGREEMENT_FILE = "agreement.json"
POSTERIOR_FILE = "posterior.nc"
SUMMARY_FILE = "summary.json"
REPORT_FILE = "report.html"
SIM_URL_ENV = "ASSAY_SIM_URL"


def default_scale(kind: str) -> str:
    """BABE's expert labels are binary; LLM ratings and imported tables default to interval."""
    return "binary" if kind == "babe" else "interval"


def load_step(
    out_dir: Path,
    *,
    kind: str,
    source: str = "",
    scale: str = "",
    synthetic_passages: int = 600,
    synthetic_textbooks: int = 60,
    seed: int = 42,
) -> dict[str, Any]:
    """Validate the input and write passages.parquet, study.json (+ imported ratings)."""
    if kind not in SOURCE_KINDS:
        raise UsageError(f"Unknown source kind {kind!r}; use one of {', '.join(SOURCE_KINDS)}.")
    out_dir = Path(out_dir)
    chosen = check_scale(scale or default_scale(kind))
    notes: dict[str, Any] = {}
    imported: pd.DataFrame | None = None
    if kind == "babe":
        babe = load_babe(source)
        passages, mapping, notes, imported = (
            babe.passages,
            babe.publisher_mapping,
            babe.notes,
            babe.ratings,
        )
    elif kind == "ratings":
        imported, mapping = load_ratings(source)
        passages = imported.drop_duplicates("passage_id")[
            [c for c in ("passage_id", "publisher", "textbook") if c in imported]
        ]
    else:
        if kind == "synthetic":
            spec = SyntheticSpec(
                n_passages=synthetic_passages, n_textbooks=synthetic_textbooks, seed=seed
            )
            corpus = validate_corpus(generate_corpus(spec), source="synthetic corpus")
        else:
            corpus = load_corpus(source)
        passages, mapping = corpus.passages, corpus.publisher_mapping
    write_parquet(out_dir / PASSAGES_FILE, passages.reset_index(drop=True))
    if imported is not None:
        write_parquet(out_dir / IMPORTED_FILE, imported)
    study = {
        "kind": kind,
        "source": source or f"synthetic corpus (seed {seed}, {synthetic_passages} passages)",
        "scale": chosen,
        "n_passages": len(passages),
        "n_publishers": int(passages["publisher"].nunique()),
        "publisher_mapping": mapping,
        "notes": notes,
        "title": {"babe": "BABE expert labels", "ratings": "imported ratings"}.get(
            kind, "LLM-ensemble ratings"
        ),
    }
    write_json(out_dir / STUDY_FILE, study)
    log.info("bias.load", kind=kind, scale=chosen, passages=len(passages), renamed=len(mapping))
    return study


def rate_step(
    load_dir: Path,
    out_dir: Path,
    *,
    ensemble: str = "",
    store_dir: str = "",
    sim_url: str = "",
    concurrency: int = 32,
    budget_usd: float = 0.0,
    use_ray: bool = True,
    progress: bool = False,
) -> dict[str, Any]:
    """ratings.parquet: imported ratings as they are, or the LLM ensemble's ratings.

    The LLM path appends every rating to a durable store (``store_dir``: a folder or
    ``s3://bucket/prefix``; default the output folder) as it completes, so a rerun with the same
    store resumes without repeating calls. ``ensemble``: a file, ``s3://`` object or
    ``bundled:<name>``; "" = ``$ASSAY_ENSEMBLE``, else the bundled simulated raters.
    """
    load_dir, out_dir = Path(load_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    imported = load_dir / IMPORTED_FILE
    if imported.exists():
        shutil.copyfile(imported, out_dir / RATINGS_FILE)
        return {"mode": "import", "ratings": len(pd.read_parquet(imported))}
    # The bundled simulated ensemble reads its endpoint from ${ASSAY_SIM_URL}: hand the URL to
    # the ensemble loader with this step's environment instead of writing os.environ.
    environ = {**os.environ, SIM_URL_ENV: sim_url} if sim_url else None
    rater_ensemble = load_ensemble(ensemble or None, environ=environ)
    passages = pd.read_parquet(load_dir / PASSAGES_FILE)
    with open_ratings_store(store_dir or out_dir) as store:
        summary = rate_passages(
            passages,
            rater_ensemble,
            store,
            concurrency=concurrency,
            budget_usd=budget_usd or None,
            progress=progress,
            use_ray=use_ray,
        )
        ratings = store.to_frame()
    ratings = ratings[ratings["passage_id"].isin(passages["passage_id"])]
    write_parquet(out_dir / RATINGS_FILE, ratings)
    result = {
        "mode": "llm",
        "ensemble": rater_ensemble.name,
        "ratings": len(ratings),
        "rated": summary.rated,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "cache_hits": summary.cache_hits,
        "provider_calls": summary.provider_calls,
        "cost_usd": summary.cost_usd,
        "spent_before_usd": summary.spent_before_usd,
        "elapsed_s": summary.elapsed_s,
        "stopped_reason": summary.stopped_reason,
    }
    write_json(out_dir / "rating_run.json", result)
    return result


def _study(load_dir: Path) -> dict[str, Any]:
    study: dict[str, Any] = read_json(Path(load_dir) / STUDY_FILE)
    return study


def analyse_step(
    load_dir: Path, rate_dir: Path, out_dir: Path, *, n_boot: int = 1000, seed: int = 42
) -> dict[str, Any]:
    """passage_stats.parquet and agreement.json."""
    scale = check_scale(_study(load_dir)["scale"])
    ratings = pd.read_parquet(Path(rate_dir) / RATINGS_FILE)
    passages = pd.read_parquet(Path(load_dir) / PASSAGES_FILE)
    write_parquet(Path(out_dir) / STATS_FILE, passage_stats(ratings, scale))
    agreement = agreement_report(ratings, scale, passages=passages, n_boot=n_boot, seed=seed)
    write_json(Path(out_dir) / AGREEMENT_FILE, agreement)
    log.info(
        "bias.agreement", alpha=agreement["alpha"], ci=[agreement["ci_low"], agreement["ci_high"]]
    )
    return agreement


def fit_step(
    load_dir: Path,
    rate_dir: Path,
    out_dir: Path,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 42,
    sampler: str = "nutpie",
    rope: float = 0.0,
    reference_publisher: str = "",
) -> dict[str, Any]:
    """posterior.nc and summary.json (publisher effects, raters, diagnostics, checks); verdicts
    use ``rope`` (0 = the scale's default) and ``reference_publisher`` (optional)."""
    scale = check_scale(_study(load_dir)["scale"])
    ratings = pd.read_parquet(Path(rate_dir) / RATINGS_FILE)
    passages = pd.read_parquet(Path(load_dir) / PASSAGES_FILE)
    if sampler not in ("nutpie", "pymc"):
        raise UsageError(f"Unknown sampler {sampler!r}; use nutpie or pymc.")
    config = BayesConfig(
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        sampler=sampler,  # type: ignore[arg-type]
    )
    if reference_publisher and reference_publisher not in set(passages["publisher"]):
        raise UsageError(f"--reference-publisher {reference_publisher!r} is not a publisher.")
    result = fit(ratings, scale, config)
    write_netcdf(Path(out_dir) / POSTERIOR_FILE, result.idata)
    ppc = check_statistics(result.idata, result.data.publishers)
    ppc["new_passages"] = new_passage_checks(result.idata, result.data, seed=seed)
    summary = build_summary(
        result,
        ratings,
        passages=passages,
        ppc=ppc,
        config=asdict(config),
        verdicts=VerdictSettings(rope=rope, reference_publisher=reference_publisher, seed=seed),
    )
    write_json(Path(out_dir) / SUMMARY_FILE, summary)
    return summary


def fit_metrics(summary: Mapping[str, Any]) -> dict[str, float]:
    """KFP metrics from summary.json: convergence diagnostics and each publisher's effect
    (posterior mean and HDI bounds). Missing or non-numeric entries are left out, so a summary
    written by an older or newer version still yields what it has."""
    diagnostics = summary.get("diagnostics") or {}
    metrics = _numbers(
        diagnostics,
        {
            "rhat_max": "rhat_max",
            "ess_bulk_min": "ess_bulk_min",
            "ess_tail_min": "ess_tail_min",
            "divergences": "divergences",
        },
    )
    if "passed" in diagnostics:
        metrics["diagnostics_passed"] = float(bool(diagnostics["passed"]))
    for effect in summary.get("publisher_effects") or []:
        name = effect.get("publisher") if isinstance(effect, Mapping) else None
        if name:
            fields = {f"effect/{name}/{key}": key for key in ("mean", "hdi_low", "hdi_high")}
            metrics.update(_numbers(effect, fields))
    return metrics


def agreement_metrics(agreement: Mapping[str, Any]) -> dict[str, float]:
    """KFP metrics from agreement.json: Krippendorff's alpha and its bootstrap CI."""
    keys = ("alpha", "ci_low", "ci_high")
    return _numbers(agreement, {f"krippendorff_{key}": key for key in keys})


def study_metrics(study_dir: Path) -> dict[str, float]:
    """Agreement and fit metrics of an assembled run folder (whichever files it holds)."""
    metrics: dict[str, float] = {}
    for name, derive in ((AGREEMENT_FILE, agreement_metrics), (SUMMARY_FILE, fit_metrics)):
        path = Path(study_dir) / name
        if path.is_file():
            metrics.update(derive(read_json(path)))
    return metrics


def _numbers(source: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, float]:
    """``{metric: float(source[key])}`` for each finite number among ``names``' keys."""
    out: dict[str, float] = {}
    for metric, key in names.items():
        value = source.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[metric] = float(value)
    return out


def report_step(
    load_dir: Path, rate_dir: Path, analysis_dir: Path, fit_dir: Path, out_dir: Path
) -> Path:
    """Assemble the run folder from the steps' artifacts and write report.html into it."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder, names in (
        (load_dir, (STUDY_FILE, PASSAGES_FILE)),
        (rate_dir, (RATINGS_FILE, "rating_run.json")),
        (analysis_dir, (STATS_FILE, AGREEMENT_FILE)),
        (fit_dir, (POSTERIOR_FILE, SUMMARY_FILE)),
    ):
        for name in names:
            source = Path(folder) / name
            if source.exists() and source.resolve() != (out_dir / name).resolve():
                shutil.copyfile(source, out_dir / name)
    return write_report(out_dir)
