"""What `--runner docker` shares between `assay train` and `assay bias-study`: the image option
and the host paths each step must see (inputs read-only; the run folder, a file:// registry and
a ratings store writable)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import typer

from assay.registry import local_keys_dir, parse_registry_uri
from assay.workflow.containers import Mount
from assay_components._base import BASE_IMAGE

IMAGE_OPTION = typer.Option(
    None,
    "--image",
    envvar="ASSAY_IMAGE",
    help=f"Image every step runs in with --runner docker (default {BASE_IMAGE}).",
)


def step_image(given: str | None) -> str:
    return given or BASE_IMAGE


def ray_cpus(workers: int) -> int:
    """CPUs of the run's Ray head: the workers cap, or every core (0)."""
    return workers or os.cpu_count() or 1


def input_mounts(values: Iterable[str | Path | None]) -> list[Mount]:
    """Read-only mounts for the local files among ``values`` (s3:// and "" need none)."""
    mounts = []
    for value in values:
        if not value or str(value).startswith(("s3://", "bundled:")):
            continue
        mounts.append(Mount(Path(value).expanduser().absolute(), writable=False))
    return mounts


def registry_mount(registry: str) -> list[Mount]:
    """A file:// registry root is written by the register step, which signs with the local
    registry's key beside it (``<registry parent>/keys``, made on first use)."""
    uri = parse_registry_uri(registry)
    if uri.scheme != "file" or uri.path is None:
        return []
    keys = local_keys_dir(registry)
    assert keys is not None
    return [Mount(Path(uri.path), writable=True), Mount(keys, writable=True)]
