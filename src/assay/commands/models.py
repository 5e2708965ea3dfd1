"""`assay models list|show|promote`: browse the model registry and move the production alias."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from assay.commands._common import user_errors
from assay.errors import UsageError

app = typer.Typer(
    name="models",
    help="Browse the model registry: list versions, show a model card, promote to production.",
    no_args_is_help=True,
)
console = Console()

REGISTRY_HELP = (
    "Registry root: file:///path, a folder, or s3://bucket/prefix (MinIO settings from "
    "MINIO_ENDPOINT, MINIO_ACCESS_KEY, MINIO_SECRET_KEY, MINIO_SECURE). "
    "Default: ASSAY_REGISTRY or ./.assay/registry."
)
# column -> card metric names to try, in order (CV means of the selected model)
KEY_METRICS: dict[str, tuple[str, ...]] = {
    "roc_auc": ("roc_auc",),
    "sens@threshold": ("clinical_sensitivity_heldout", "clinical_sensitivity_oof"),
    "spec@threshold": ("clinical_specificity_heldout", "clinical_specificity_oof"),
}

RegistryOption = typer.Option(None, "--registry", envvar="ASSAY_REGISTRY", help=REGISTRY_HELP)


@app.command("list")
@user_errors
def list_models(
    name: str | None = typer.Argument(
        None, help="Model name; omit to list every model in the registry."
    ),
    registry: str | None = RegistryOption,
) -> None:
    """List versions with their aliases, estimator, threshold and key CV metrics."""
    from assay.registry import open_registry

    reg = open_registry(registry)
    names = [name] if name else reg.models()
    if not names:
        console.print(f"Registry {reg.root} holds no models yet; run `assay train` first.")
        return
    table = Table(title=f"Models in {reg.root}")
    for column in ("model", "version", "aliases", "estimator", "threshold", *KEY_METRICS):
        table.add_column(column, justify="right" if column in KEY_METRICS else "left")
    table.add_column("registered")
    for model in names:
        versions = reg.versions(model)
        if not versions:
            reg.resolve(model)  # raises the "no model named ..." sentence
        by_version: dict[str, list[str]] = {}
        for alias, version in reg.aliases(model).items():
            by_version.setdefault(version, []).append(alias)
        for version in versions:
            card = reg.card(model, version)
            table.add_row(*_row(model, version, by_version.get(version, []), card))
    console.print(table)


@app.command("show")
@user_errors
def show(
    name: str = typer.Argument(..., help="Model name, e.g. wdbc-classifier."),
    ref: str = typer.Argument("latest", help="Version (v3) or alias (latest, production)."),
    registry: str | None = RegistryOption,
) -> None:
    """Print a version's model card as JSON and check the version's signature (trusted keys:
    ASSAY_TRUSTED_KEYS, else the local registry's own key) and its model file.

    Exit codes: 0 ok, 3 no such model/version/alias, 5 the version is not what was signed
    (changed, added or missing files, unsigned, or signed by an untrusted key).
    """
    from assay.registry import model_trust, open_registry

    reg = open_registry(registry)
    trust = model_trust(registry_root=reg.root)
    card = reg.card(name, ref)
    console.print_json(json.dumps(card))
    console.print(f"[dim]{reg.uri(name, ref)}[/]")
    console.print(f"integrity: {reg.verify(name, ref, trust)}")


@app.command("keygen")
@user_errors
def keygen(
    out: Path = typer.Option(
        ..., "--out", help="New folder for signing-key.pem (private, 0600) and signing-key.pub."
    ),
) -> None:
    """Make a model-signing key pair: the private key for the register step (a Secret mounted
    in that step only, ASSAY_SIGNING_KEY), the public key for the readers (a ConfigMap,
    ASSAY_TRUSTED_KEYS). Keep old public keys trusted while versions they signed are served."""
    from assay.registry.signing import generate_key_pair, load_signer

    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty; choose a new folder (keys are never overwritten).")
    private, public = generate_key_pair(out)
    console.print(f"key id {load_signer(private).key_id}: {private} (private), {public} (public)")


@app.command("promote")
@user_errors
def promote(
    name: str = typer.Argument(..., help="Model name, e.g. wdbc-classifier."),
    ref: str = typer.Argument(..., help="Version (v3) or alias (latest) to promote."),
    alias: str = typer.Option("production", "--alias", help="Alias to move."),
    registry: str | None = RegistryOption,
) -> None:
    """Point the production alias (or --alias) at an existing version."""
    from assay.registry import open_registry

    reg = open_registry(registry)
    version = reg.resolve(name, ref)
    previous = reg.aliases(name).get(alias)
    reg.set_alias(name, alias, version)
    moved = f" (was {previous})" if previous and previous != version else ""
    console.print(f"{name}: {alias} -> {version}{moved}")


def _row(model: str, version: str, aliases: list[str], card: dict[str, Any]) -> list[str]:
    metrics = card.get("metrics") or {}
    return [
        model,
        version,
        ", ".join(sorted(aliases)),
        str(card.get("estimator", "")),
        _fmt(card.get("threshold")),
        *(_fmt(_metric(metrics, names)) for names in KEY_METRICS.values()),
        str(card.get("registered_at", "")),
    ]


def _metric(metrics: dict[str, Any], names: tuple[str, ...]) -> Any:
    """The first metric present; a value may be a number or a summary {"mean": ...}."""
    for name in names:
        value = metrics.get(name, metrics.get(f"{name}_mean"))
        if isinstance(value, dict):
            value = value.get("mean")
        if value is not None:
            return value
    return None


def _fmt(value: Any) -> str:
    return (
        f"{value:.4f}" if isinstance(value, int | float) else ("" if value is None else str(value))
    )
