"""Refuse to run on an untested version of a library whose internals assay relies on.

assay subclasses or copies parts of KServe's server, parses kfp.local's log lines, pickles
scikit-learn objects built partly from private classes, and calls each LLM SDK's typed API. A
new release of any of them can change those internals without notice, and the result would be a
server or a run that misbehaves quietly. pyproject.toml bounds each to the range assay is tested
with; pip does not enforce that range on a later upgrade or a ``--no-deps`` install, so the code
checks it where the internals are used (:func:`require_tested`) and fails with a message naming
the package, the installed version and the tested range.

The range is read from assay's own installed metadata (its ``Requires-Dist``), so pyproject.toml
stays the only place it is written. ``ASSAY_ALLOW_UNTESTED=<name>[,<name>...]`` (or ``all``)
turns the error into a warning for those packages, for someone testing a new release on purpose.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from functools import cache
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from assay.errors import AssayError

OVERRIDE_ENV = "ASSAY_ALLOW_UNTESTED"

WHAT_ASSAY_RELIES_ON: dict[str, str] = {
    "kserve": "assay's servers subclass and copy KServe's data plane, model server and REST "
    "internals",
    "kfp": "local runs parse kfp.local's log lines and replace its Docker task handler",
    "scikit-learn": "saved models are pickles of fitted scikit-learn objects that the servers "
    "unpickle and skl2onnx converts",
    "openai": "the OpenAI provider calls the SDK's typed request and error API",
    "anthropic": "the Anthropic provider calls the SDK's typed request and error API",
    "together": "the Together provider calls the 3.x SDK's typed request and error API",
}
"""Each coupled distribution and what of it assay uses (the reason its range is bounded)."""


class UntestedVersionError(AssayError):
    """An installed library is outside the version range assay is tested with."""

    exit_code = 2


class UntestedVersionWarning(UserWarning):
    """An untested version runs anyway because ``ASSAY_ALLOW_UNTESTED`` names it."""


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``; None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@cache
def tested_range(distribution: str) -> SpecifierSet:
    """The range pyproject.toml gives ``distribution`` (all its mentions, intersected)."""
    try:
        requirements = metadata.requires("assay") or []
    except metadata.PackageNotFoundError:
        raise UntestedVersionError(
            "assay's distribution metadata is missing, so the tested version ranges are "
            "unknown: install assay (pip install -e . or its wheel) rather than running it from "
            "a source folder."
        ) from None
    wanted = canonicalize_name(distribution)
    specifiers = [
        Requirement(line).specifier
        for line in requirements
        if canonicalize_name(Requirement(line).name) == wanted
    ]
    if not specifiers:
        raise UntestedVersionError(f"assay declares no dependency on {distribution}.")
    combined = SpecifierSet()
    for specifier in specifiers:
        combined &= specifier
    return combined


def allowed_untested(environ: Mapping[str, str]) -> frozenset[str]:
    names = (n.strip() for n in environ.get(OVERRIDE_ENV, "").split(","))
    return frozenset(canonicalize_name(n) for n in names if n)


def untested_message(distribution: str, installed: str, tested: SpecifierSet) -> str:
    reason = WHAT_ASSAY_RELIES_ON.get(distribution, "assay uses its internals")
    return (
        f"{distribution} {installed} is installed, but assay is tested with "
        f"{distribution}{tested} only ({reason}, which change between releases). Install a "
        f"tested version (pip install '{distribution}{tested}'), or set "
        f"{OVERRIDE_ENV}={distribution} to run on {installed} anyway."
    )


def require_tested(*distributions: str, environ: Mapping[str, str] | None = None) -> None:
    """Raise :class:`UntestedVersionError` if an installed ``distribution`` is outside the range
    pyproject.toml declares for it (one that is not installed is left to its import to report).
    """
    allowed = allowed_untested(os.environ if environ is None else environ)
    for distribution in distributions:
        installed = installed_version(distribution)
        if installed is None:
            continue
        tested = tested_range(distribution)
        if _within(installed, tested):
            continue
        message = untested_message(distribution, installed, tested)
        if canonicalize_name(distribution) in allowed or "all" in allowed:
            warnings.warn(message, UntestedVersionWarning, stacklevel=2)
            continue
        raise UntestedVersionError(message)


def _within(installed: str, tested: SpecifierSet) -> bool:
    try:
        return tested.contains(Version(installed), prereleases=True)
    except InvalidVersion:
        return False
