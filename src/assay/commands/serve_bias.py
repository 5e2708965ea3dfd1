"""`assay serve bias-scorer`: rate passages on request with the LLM rater ensemble."""

from __future__ import annotations

import os
import sys

from assay.commands._serve_options import settings_command
from assay.serving.settings import BiasScorerServerSettings


def run_bias_scorer(settings: BiasScorerServerSettings) -> None:
    # KServe parses sys.argv when imported; keep assay's options away from it.
    sys.argv = sys.argv[:1]
    from assay.serving.bias_scorer import run_server

    run_server(settings, dict(os.environ))


bias_scorer = settings_command(
    BiasScorerServerSettings,
    run_bias_scorer,
    "Serve the LLM-ensemble bias scorer (v2 input 'text', per-rater and ensemble scores).",
)
