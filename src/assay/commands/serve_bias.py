"""`assay serve bias-scorer`: rate passages on request with the LLM rater ensemble."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from assay.commands import _serve_options as serve_options
from assay.commands._common import user_errors


@user_errors
def bias_scorer(
    raters: Path | None = typer.Option(
        None,
        "--raters",
        "--ensemble",
        envvar="ASSAY_ENSEMBLE",
        exists=True,
        dir_okay=False,
        help="Ensemble file (YAML/TOML) naming the raters; default: the bundled simulated "
        "ensemble, whose endpoint is $ASSAY_SIM_URL (http://127.0.0.1:8000 when unset).",
    ),
    sim: bool = typer.Option(
        False, "--sim", help="Start the simulated LLM endpoint in this process and rate with it."
    ),
    name: str = serve_options.model_name_option("bias-scorer"),
    http_port: int = serve_options.HTTP_PORT,
    grpc_port: int = serve_options.GRPC_PORT,
    no_grpc: bool = serve_options.NO_GRPC,
    max_batch_rows: int = typer.Option(
        64, "--max-batch-rows", min=1, help="Most passages one request may send."
    ),
    max_text_chars: int = typer.Option(
        20_000, "--max-text-chars", min=1, help="Longest passage accepted, in characters."
    ),
    max_concurrency: int = typer.Option(
        8, "--max-concurrency", min=1, help="Passages rated at once, across requests."
    ),
    deadline: float = typer.Option(
        30.0, "--deadline", min=0.1, help="Seconds a rater gets per passage, retries included."
    ),
    daily_budget: float | None = typer.Option(
        None,
        "--daily-budget",
        envvar="ASSAY_LLM_DAILY_BUDGET_USD",
        min=0.0,
        help="Stop calling raters once this many USD are spent in a UTC day (default: no cap).",
    ),
    log_level: str = serve_options.LOG_LEVEL,
    log_sample_rate: float = serve_options.LOG_SAMPLE_RATE,
) -> None:
    """Serve the LLM-ensemble bias scorer (v2 input 'text', per-rater and ensemble scores)."""
    # KServe parses sys.argv when imported; keep assay's options away from it.
    sys.argv = sys.argv[:1]
    from serving.bias_scorer import ServerOptions, run_server

    run_server(
        ServerOptions(
            ensemble_path=str(raters) if raters else None,
            name=name,
            sim=sim,
            http_port=http_port,
            grpc_port=grpc_port,
            enable_grpc=not no_grpc,
            max_batch_rows=max_batch_rows,
            max_text_chars=max_text_chars,
            max_concurrency=max_concurrency,
            rater_deadline_s=deadline,
            daily_budget_usd=daily_budget,
            log_level=log_level,
            log_sample_rate=log_sample_rate,
        )
    )
