"""``python -m assay_serving.classifier``: the WDBC classifier server (the image's entry point).

Options (``--help``): :class:`assay.serving.settings.ClassifierServerSettings`, the same flags
and ``ASSAY_*`` variables as ``assay serve classifier``, plus KServe's own server arguments.
The default model URI is ``/mnt/models``, where KServe's storage initializer puts a version
folder. The server itself: :mod:`assay.serving.classifier`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from assay.errors import AssayError
from assay.serving.arguments import settings_from_args, settings_parser
from assay.serving.settings import ClassifierServerSettings
from assay.serving.startup import kserve_arguments

PROG = "python -m assay_serving.classifier"


def build_parser() -> argparse.ArgumentParser:
    return settings_parser(
        ClassifierServerSettings,
        PROG,
        "Serve the WDBC classifier over the v2 inference protocol.",
        kserve_arguments(),
    )


def options_from_args(argv: Sequence[str] | None = None) -> ClassifierServerSettings:
    return settings_from_args(ClassifierServerSettings, build_parser(), argv)


def main(argv: Sequence[str] | None = None) -> None:
    from assay.serving.classifier import run_server

    try:
        run_server(options_from_args(argv))
    except AssayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from exc


if __name__ == "__main__":
    main()
