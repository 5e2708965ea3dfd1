"""The bias-study pipeline: wiring only (each step is a component in components/bias_*.py).

load corpus -> rate (Ray fan-out through the LLM layer) -> aggregate + agreement
-> Bayesian fit -> report

Inputs may be local paths or ``s3://bucket/key`` (MinIO): the corpus / ratings table / BABE
folder (``source``), the ensemble file and the durable ratings store (``store_dir``; a rerun with
the same store resumes without repeating a call). In a cluster the load and rate steps read
MINIO_* from ConfigMap ``assay-pipeline-env`` and the pipeline's MinIO user from Secret
``minio-credentials``; the rate step also reads ASSAY_ENSEMBLE (the ensemble used when
``ensemble`` is "": dev ``bundled:sim``, whose raters reach the ``assay-sim-llm`` Service at
ASSAY_SIM_URL; prod ``bundled:providers``) and the provider keys from Secret
``llm-provider-keys`` (each key optional, so a partial ensemble or an imported study still runs)
and the shared Redis (rate limits, budget and cache shared with the bias scorer) and its password
from Secret ``assay-redis`` (optional: without it the limits are the pod's own).
The rate step is the only pod that holds provider keys and may reach the providers (labels
``RATE_STEP_LABELS``, NetworkPolicy llm-provider-egress): it fans out inside its own pod (a local
Ray, never the shared Ray cluster, which any computing step can reach and which holds no keys).
kfp.local ignores Kubernetes settings and the steps use the caller's environment.
"""

from kfp import dsl, kubernetes

from assay_components.bias_analyse import bias_analyse
from assay_components.bias_fit import bias_fit
from assay_components.bias_load_corpus import bias_load_corpus
from assay_components.bias_rate import bias_rate
from assay_components.bias_report import bias_report
from assay_pipelines.training import MINIO_SECRET, MINIO_SECRET_TO_ENV, PIPELINE_ENV_CONFIG_MAP

PROVIDER_SECRET = "llm-provider-keys"
PROVIDER_KEYS = {key: key for key in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TOGETHER_API_KEY")}
REDIS_SECRET = "assay-redis"
REDIS_SECRET_TO_ENV = {"ASSAY_REDIS_URL": "ASSAY_REDIS_URL", "password": "ASSAY_REDIS_PASSWORD"}
STORAGE_ENV = ("MINIO_ENDPOINT", "MINIO_SECURE", "MINIO_REGION")
RATING_ENV = (*STORAGE_ENV, "ASSAY_ENSEMBLE", "ASSAY_SIM_URL")  # no RAY_ADDRESS: see above
RATE_STEP_LABELS = {"assay.io/step": "rate", "assay.io/llm-egress": "true"}


def _cluster_env(task: dsl.PipelineTask, keys: tuple[str, ...]) -> dsl.PipelineTask:
    """``keys`` from ConfigMap assay-pipeline-env and the MinIO user, both optional."""
    kubernetes.use_config_map_as_env(
        task, PIPELINE_ENV_CONFIG_MAP, {key: key for key in keys}, optional=True
    )
    kubernetes.use_secret_as_env(task, MINIO_SECRET, MINIO_SECRET_TO_ENV, optional=True)
    return task


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
    """kind: corpus | babe | ratings | synthetic; source: its path or s3:// URI. scale: interval
    | binary | ordinal | "" (auto). ensemble: rater file, s3:// object or bundled:<name> ("" =
    ASSAY_ENSEMBLE, else the bundled simulated raters at sim_url / ASSAY_SIM_URL). store_dir:
    durable ratings store, a folder or s3://bucket/prefix ("" = the step's output folder, which
    does not outlive the run). Returns whether the model's convergence diagnostics passed."""
    loaded = bias_load_corpus(
        kind=kind,
        source=source,
        scale=scale,
        synthetic_passages=synthetic_passages,
        synthetic_textbooks=synthetic_textbooks,
        seed=seed,
    )
    loaded.set_display_name("Load + validate passages")
    _cluster_env(loaded, STORAGE_ENV)

    rated = bias_rate(
        loaded=loaded.outputs["loaded"],
        ensemble=ensemble,
        store_dir=store_dir,
        sim_url=sim_url,
        concurrency=concurrency,
        budget_usd=budget_usd,
    )
    rated.set_display_name("Rate (LLM ensemble, fan-out in its own pod)")
    rated.set_caching_options(False)  # the durable store, not KFP's cache, makes reruns cheap
    rated.set_cpu_request("2").set_memory_request("2G").set_memory_limit("4G")
    kubernetes.use_secret_as_env(rated, PROVIDER_SECRET, PROVIDER_KEYS, optional=True)
    kubernetes.use_secret_as_env(rated, REDIS_SECRET, REDIS_SECRET_TO_ENV, optional=True)
    for key, value in RATE_STEP_LABELS.items():
        kubernetes.add_pod_label(rated, key, value)
    _cluster_env(rated, RATING_ENV)

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
