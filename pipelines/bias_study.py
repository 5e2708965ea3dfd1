"""The bias-study pipeline: wiring only (each step is a component in components/bias_*.py).

load corpus -> rate (Ray fan-out through the LLM layer) -> aggregate + agreement
-> Bayesian fit -> report

Provider keys reach the rate step from Secret ``llm-provider-keys`` (each key optional, so a
partial ensemble or an imported study still runs); kfp.local ignores Kubernetes settings and
the step uses the caller's environment.
"""

from kfp import dsl, kubernetes

from components.bias_analyse import bias_analyse
from components.bias_fit import bias_fit
from components.bias_load_corpus import bias_load_corpus
from components.bias_rate import bias_rate
from components.bias_report import bias_report

PROVIDER_SECRET = "llm-provider-keys"
PROVIDER_KEYS = {key: key for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY")}
PIPELINE_ENV_CONFIG_MAP = "assay-pipeline-env"


@dsl.pipeline(
    name="assay-bias-study",
    description=(
        "LLM-ensemble bias study: validate passages, rate them with every rater (rate limits, "
        "breakers, retries, cache; Ray fan-out), Krippendorff's alpha, PyMC publisher effects "
        "with diagnostics, report."
    ),
)
def bias_study_pipeline(
    kind: str = "synthetic",
    source: str = "",
    scale: str = "",
    synthetic_passages: int = 600,
    synthetic_textbooks: int = 60,
    ensemble: str = "",
    store_dir: str = "",
    sim_url: str = "",
    concurrency: int = 32,
    budget_usd: float = 0.0,
    n_boot: int = 1000,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    seed: int = 42,
    rope: float = 0.0,
    reference_publisher: str = "",
) -> bool:
    """kind: corpus | babe | ratings | synthetic; source: its path. scale: interval | binary |
    ordinal | "" (auto). ensemble: rater file ("" = bundled simulated raters at sim_url).
    Returns whether the model's convergence diagnostics passed."""
    loaded = bias_load_corpus(
        kind=kind,
        source=source,
        scale=scale,
        synthetic_passages=synthetic_passages,
        synthetic_textbooks=synthetic_textbooks,
        seed=seed,
    )
    loaded.set_display_name("Load + validate passages")

    rated = bias_rate(
        loaded=loaded.outputs["loaded"],
        ensemble=ensemble,
        store_dir=store_dir,
        sim_url=sim_url,
        concurrency=concurrency,
        budget_usd=budget_usd,
    )
    rated.set_display_name("Rate (LLM ensemble, Ray)")
    rated.set_caching_options(False)  # the durable store, not KFP's cache, makes reruns cheap
    kubernetes.use_secret_as_env(rated, PROVIDER_SECRET, PROVIDER_KEYS, optional=True)
    kubernetes.use_config_map_as_env(
        rated, PIPELINE_ENV_CONFIG_MAP, {"RAY_ADDRESS": "RAY_ADDRESS"}, optional=True
    )

    analysed = bias_analyse(
        loaded=loaded.outputs["loaded"], rated=rated.outputs["rated"], n_boot=n_boot, seed=seed
    )
    analysed.set_display_name("Aggregate + agreement")

    fitted = bias_fit(
        loaded=loaded.outputs["loaded"],
        rated=rated.outputs["rated"],
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        rope=rope,
        reference_publisher=reference_publisher,
    )
    fitted.set_display_name("Bayesian publisher effects")
    fitted.set_cpu_request("2").set_memory_request("2G").set_memory_limit("8G")

    reported = bias_report(
        loaded=loaded.outputs["loaded"],
        rated=rated.outputs["rated"],
        analysis=analysed.outputs["analysis"],
        posterior=fitted.outputs["posterior"],
    )
    reported.set_display_name("Report")
    return fitted.outputs["Output"]
