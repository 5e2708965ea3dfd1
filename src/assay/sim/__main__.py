"""``python -m assay.sim --port P --config FILE``: the bare server, used by subprocess mode."""

from __future__ import annotations

import argparse
from pathlib import Path

from assay.sim.config import SimConfig
from assay.sim.server import serve_forever


def main() -> None:
    parser = argparse.ArgumentParser(description="assay simulated LLM endpoint")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", type=Path, default=None)
    args = parser.parse_args()
    config = SimConfig.from_yaml(args.config) if args.config else SimConfig()
    serve_forever(args.port, config)


if __name__ == "__main__":
    main()
