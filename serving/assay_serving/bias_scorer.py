"""``python -m assay_serving.bias_scorer``: the LLM-ensemble bias scorer server (the image's
entry point).

Options (``--help``): :class:`assay.serving.settings.BiasScorerServerSettings`, the same flags
and ``ASSAY_*`` variables as ``assay serve bias-scorer``, plus KServe's own server arguments.
The server itself: :mod:`assay.serving.bias_scorer`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from assay.errors import AssayError
from assay.serving.arguments import settings_from_args, settings_parser
from assay.serving.settings import BiasScorerServerSettings
from assay.serving.startup import kserve_arguments

PROG = "python -m assay_serving.bias_scorer"


def build_parser() -> argparse.ArgumentParser:
    return settings_parser(
        BiasScorerServerSettings,
        PROG,
        "Serve the LLM-ensemble bias scorer over the v2 inference protocol.",
        kserve_arguments(),
    )


def options_from_args(argv: Sequence[str] | None = None) -> BiasScorerServerSettings:
    return settings_from_args(BiasScorerServerSettings, build_parser(), argv)


def main(argv: Sequence[str] | None = None) -> None:
    from assay.serving.bias_scorer import run_server

    try:
        run_server(options_from_args(argv), dict(os.environ))
    except AssayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc


if __name__ == "__main__":
    main()
