"""assay.sim: a local LLM endpoint speaking the OpenAI, Anthropic and Together wire formats.

Its models (``sim-gpt``, ``sim-claude``, ``sim-llama`` by default) are simulations, not real
LLMs: they rate passages from a hidden true score with a per-model offset, noise and refusal rate,
and inject faults on request. Every answer, refusal, malformed answer and injected fault is a pure
function of (seed, model, passage text, attempt number), where the attempt number counts the
requests for that (model, passage) the server admitted before; never of arrival order,
concurrency or the clock (details in ``assay.sim.app``). Importing this package is light; the
server imports Starlette and uvicorn only when started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assay.sim.config import (
    FAULT_SPEC_HELP,
    FaultRates,
    SimConfig,
    SimModelConfig,
    parse_fault_spec,
    text_key,
    truth_table_from_pairs,
)

if TYPE_CHECKING:
    from assay.sim.server import SimServer, start_sim_server

__all__ = [
    "FAULT_SPEC_HELP",
    "FaultRates",
    "SimConfig",
    "SimModelConfig",
    "SimServer",
    "parse_fault_spec",
    "start_sim_server",
    "text_key",
    "truth_table_from_pairs",
]


def __getattr__(name: str) -> Any:
    if name in ("SimServer", "start_sim_server"):
        from assay.sim import server

        return getattr(server, name)
    raise AttributeError(name)
