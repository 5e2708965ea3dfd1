"""Bias study, step 2: rate every passage with every rater (Ray fan-out), or pass imports on."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from assay_components._base import COMPONENT_OPTIONS


@dsl.component(**COMPONENT_OPTIONS)
def bias_rate(
    loaded: Input[Artifact],
    ensemble: str,
    store_dir: str,
    sim_url: str,
    concurrency: int,
    budget_usd: float,
    rated: Output[Artifact],
):
    """Write rated/ratings.parquet (the long ratings table).

    Imported ratings (BABE, a ratings file) are passed through. Otherwise the LLM layer rates
    passages x raters on Ray (RAY_ADDRESS or local) with the ensemble file `ensemble` ("" = the
    bundled simulated ensemble at `sim_url`), appending to the durable store `store_dir` ("" =
    the output folder) so a rerun resumes. Provider keys come from the environment (in a
    cluster: Secret llm-provider-keys). budget_usd: 0 = no budget.
    """
    from pathlib import Path

    from assay.bias.steps import rate_step

    result = rate_step(
        Path(loaded.path),
        Path(rated.path),
        ensemble=ensemble,
        store_dir=store_dir,
        sim_url=sim_url,
        concurrency=concurrency,
        budget_usd=budget_usd,
    )
    rated.metadata.update({k: v for k, v in result.items() if v is not None})
