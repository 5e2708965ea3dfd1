"""`assay sim-llm`: run the simulated LLM endpoint in the foreground."""

from __future__ import annotations

import contextlib
from pathlib import Path

import typer

from assay.commands._common import err_console, user_errors
from assay.sim.config import FAULT_SPEC_HELP, SimConfig


@user_errors
def sim_llm(
    port: int = typer.Option(8000, "--port", "-p", help="Port (0 picks a free one)."),
    host: str = typer.Option(
        "127.0.0.1",
        "--host",
        help="Address to listen on; 0.0.0.0 only where a network policy fences it (a pod).",
    ),
    faults: str = typer.Option("", "--faults", help=FAULT_SPEC_HELP),
    config: Path | None = typer.Option(
        None,
        "--config",
        exists=True,
        dir_okay=False,
        help="SimConfig YAML (models, faults, truth).",
    ),
    seed: int | None = typer.Option(
        None, "--seed", help="Seed of ratings and faults (overrides the config)."
    ),
    truth: Path | None = typer.Option(
        None,
        "--truth",
        exists=True,
        dir_okay=False,
        help="Corpus file (.csv/.jsonl/.parquet) with 'text' and 'true_score' columns: the hidden "
        "true scores the simulated models rate from (a hash of the text otherwise).",
    ),
    timeout_delay: float | None = typer.Option(
        None, "--timeout-delay", help="Seconds a 'timeout' fault stalls before answering."
    ),
) -> None:
    """Serve simulated LLMs (sim-gpt, sim-claude, sim-llama) on 127.0.0.1 for offline runs."""
    from assay.sim.server import serve_forever

    sim_config = SimConfig.from_yaml(config) if config else SimConfig()
    updates: dict[str, object] = {}
    if seed is not None:
        updates["seed"] = seed
    if truth is not None:
        updates["truth_file"] = truth
    if timeout_delay is not None:
        updates["timeout_delay_s"] = timeout_delay
    sim_config = sim_config.model_copy(update=updates)
    if faults:
        sim_config = sim_config.with_faults(faults)
    sim_config.truth_table()  # fail now, with a sentence, on an unreadable truth file
    names = ", ".join(m.name for m in sim_config.models)
    err_console.print(f"simulated models (not real LLMs): {names}; Ctrl-C stops the server")
    with contextlib.suppress(KeyboardInterrupt):
        serve_forever(port, sim_config, host)


sim_llm.__doc__ = "\n\n".join(
    [
        "Serve simulated LLMs (sim-gpt, sim-claude, sim-llama) on 127.0.0.1 for offline runs "
        "(--host 0.0.0.0 inside a pod, behind its network policy).",
        "One server speaks the OpenAI chat-completions (base_url http://127.0.0.1:PORT/v1), "
        "Anthropic messages and Together chat-completions (base_url http://127.0.0.1:PORT) wire "
        "formats, so the real SDKs talk to it unchanged.",
        "The models are simulations, not real LLMs: each rates a passage from a hidden true "
        "score with its own bias offset, noise and refusal rate.",
        "Statistics (requests, rate-limit violations, injected faults, per-second timeline) are "
        "served at /sim/stats.",
    ]
)
