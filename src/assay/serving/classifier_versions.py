"""A WDBC classifier version: where it comes from (a folder or a registry URI), how it is loaded
and checked, and the :class:`LoadedClassifier` a request is served by."""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.preprocessing import StandardScaler

from assay.config import ModelTrustSettings
from assay.errors import AssayError
from assay.registry import ModelTrust, model_trust, open_registry, parse_model_uri
from assay.registry.integrity import verify_model_file
from assay.registry.signing import SIGNATURE_FILE, folder_files
from assay.registry.uri import version_number
from assay.serving.sklearn_predictor import PipelineProba, build_proba

N_FEATURES = 30
RANGE_MARGIN = 1.0
"""k of the range rule: a value is refused outside [min - k*(max-min), max + k*(max-min)]."""
MODEL_FILE = "model.joblib"
CARD_FILE = "model-card.json"


class InvalidModelError(AssayError):
    """The model folder or its card is not a servable WDBC classifier."""

    exit_code = 2


@dataclass(frozen=True)
class LoadedClassifier:
    """Everything one request needs, swapped as a unit on reload."""

    version: str
    estimator: str
    threshold: float
    feature_names: tuple[str, ...]
    proba: PipelineProba
    card: dict[str, Any] = field(repr=False)
    limits: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    """(low, high) per feature from the card's training ranges widened by ``RANGE_MARGIN``
    spans; None for a card that predates the ranges (then only the non-finite checks apply)."""

    def predict(self, matrix: np.ndarray) -> np.ndarray:
        return self.proba(matrix)

    def overflowing(self, matrix: np.ndarray) -> np.ndarray | None:
        """Where the pipeline's scaler turns a finite value into an infinity (None: no scaler)."""
        steps = getattr(self.proba.pipeline, "steps", None)
        scaler = steps[0][1] if steps else None
        if not isinstance(scaler, StandardScaler):
            return None
        mean = scaler.mean_ if scaler.with_mean else 0.0
        scale = scaler.scale_ if scaler.with_std else 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            return ~np.isfinite((matrix - mean) / scale)


def range_limits(card: dict[str, Any], names: tuple[str, ...], where: str) -> Any:
    """The accepted (low, high) per feature, or None when the card records no ranges."""
    ranges = card.get("feature_ranges")
    if ranges is None:
        return None
    try:
        pairs = np.array([[float(v) for v in ranges[name]] for name in names], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidModelError(
            f"{where}: the card's feature_ranges are malformed ({exc})."
        ) from None
    if pairs.shape != (N_FEATURES, 2) or not np.isfinite(pairs).all():
        raise InvalidModelError(
            f"{where}: the card's feature_ranges need a finite [min, max] each."
        )
    span = pairs[:, 1] - pairs[:, 0]
    return pairs[:, 0] - RANGE_MARGIN * span, pairs[:, 1] + RANGE_MARGIN * span


def check_card(card: dict[str, Any], where: str) -> tuple[float, tuple[str, ...]]:
    """The threshold and feature names of a card that fits this server, or InvalidModelError."""
    names = card.get("feature_names")
    if not isinstance(names, list) or len(names) != N_FEATURES:
        count = len(names) if isinstance(names, list) else "no"
        raise InvalidModelError(
            f"{where}: the card lists {count} feature_names, need {N_FEATURES}."
        )
    threshold = card.get("threshold")
    if not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        raise InvalidModelError(f"{where}: the card has no threshold in [0, 1] ({threshold!r}).")
    if card.get("positive_class") != "malignant" or card.get("positive_label") != 1:
        raise InvalidModelError(
            f"{where}: the card's positive class must be 'malignant' with label 1, got "
            f"{card.get('positive_class')!r} / {card.get('positive_label')!r}."
        )
    return float(threshold), tuple(str(name) for name in names)


def check_folder_files(folder: Path) -> None:
    """A version folder holds exactly ``model.joblib`` and ``model-card.json``: anything else
    (e.g. ``v1model.joblib`` or ``v1-extra/`` that KServe's by-prefix download of a storageUri
    without its trailing '/' puts beside them) was not registered and is refused."""
    if not (folder / CARD_FILE).is_file() or not (folder / MODEL_FILE).is_file():
        raise InvalidModelError(f"{folder} needs {MODEL_FILE} and {CARD_FILE}.")
    served = (MODEL_FILE, CARD_FILE, SIGNATURE_FILE)
    extras = sorted(p.name for p in folder.iterdir() if p.name not in served)
    if extras:
        raise InvalidModelError(
            f"{folder} holds {', '.join(extras)} beside {', '.join(served)}; a model "
            "version folder holds nothing else, so it is refused (a storageUri without its "
            "trailing '/' makes KServe download sibling objects too)."
        )


def check_model_threshold(pipeline: Any, threshold: float, where: str) -> None:
    """A model whose own ``predict()`` thresholds (its last step, as exported) must use the card's
    threshold, or the server and a stock runtime would label rows differently."""
    steps = getattr(pipeline, "steps", None)
    own = getattr(steps[-1][1], "threshold", None) if steps else None
    if isinstance(own, int | float) and float(own) != threshold:
        raise InvalidModelError(
            f"{where}: the model's predict() threshold {own} is not the card's {threshold}."
        )


def load_folder(folder: Path, trust: ModelTrust, compile: bool = True) -> LoadedClassifier:
    """Load ``folder/{model.joblib, model-card.json}`` once its signature (``trust``) holds."""
    card_path, model_path = folder / CARD_FILE, folder / MODEL_FILE
    check_folder_files(folder)
    signed = trust.verify(folder_files(folder), str(folder))
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidModelError(f"{card_path} is not readable JSON: {exc}") from exc
    threshold, names = check_card(card, str(folder))
    where = f"{folder} (version {card.get('version', '?')}, {signed})"
    verify_model_file(model_path, card, where, allow_unverified=True)
    pipeline = joblib.load(model_path)
    classes = list(getattr(pipeline, "classes_", []))
    if not hasattr(pipeline, "predict_proba") or classes != [0, 1]:
        raise InvalidModelError(
            f"{model_path}: need a fitted binary classifier with classes [0, 1] and "
            f"predict_proba, got classes {classes}."
        )
    if getattr(pipeline, "n_features_in_", N_FEATURES) != N_FEATURES:
        raise InvalidModelError(f"{model_path} takes {pipeline.n_features_in_} features, not 30.")
    check_model_threshold(pipeline, threshold, str(model_path))
    version = str(card.get("version") or _version_from_path(folder))
    return LoadedClassifier(
        version=version,
        estimator=str(card.get("estimator", type(pipeline).__name__)),
        threshold=threshold,
        feature_names=names,
        proba=build_proba(pipeline, threshold, compile=compile),
        card=card,
        limits=range_limits(card, names, str(folder)),
    )


def _version_from_path(folder: Path) -> str:
    return folder.name if version_number(folder.name) else "unversioned"


class FolderSource:
    """A version folder on disk (KServe's /mnt/models, or a registry version folder)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def describe(self) -> str:
        return str(self.folder)

    def fingerprint(self) -> str:
        card = self.folder / CARD_FILE
        model = self.folder / MODEL_FILE
        return f"{card.stat().st_mtime_ns}:{model.stat().st_mtime_ns}"

    def fetch(self) -> tuple[Path, bool]:
        """(folder, whether the caller owns it and should delete it when done)."""
        return self.folder, False


class RegistrySource:
    """``<root>/<name>/<ref>`` in an assay registry; ``ref`` may be a moving alias."""

    def __init__(self, uri: str) -> None:
        root, self.name, self.ref = parse_model_uri(uri)
        self.registry = open_registry(root)
        self.uri = uri

    def describe(self) -> str:
        return self.uri

    def fingerprint(self) -> str:
        return self.registry.resolve(self.name, self.ref)

    def fetch(self) -> tuple[Path, bool]:
        version = self.registry.resolve(self.name, self.ref)
        dest = Path(tempfile.mkdtemp(prefix=f"assay-{self.name}-{version}-"))
        return self.registry.download(self.name, version, dest), True


def source_from_uri(uri: str) -> FolderSource | RegistrySource:
    """A version folder if ``uri`` is a local folder holding a model, else a registry URI."""
    local = uri[len("file://") :] if uri.startswith("file://") else uri
    if "://" not in local and (Path(local) / MODEL_FILE).is_file():
        return FolderSource(Path(local).absolute())
    if "://" not in local and not Path(local).exists() and not _registry_uri_shaped(local):
        raise InvalidModelError(
            f"{uri} does not exist: give a version folder with {MODEL_FILE} and "
            f"{CARD_FILE}, or a registry model URI <root>/<name>/<version or alias>."
        )
    if "://" not in uri and not Path(uri).parent.parent.exists():
        raise InvalidModelError(
            f"{uri} is neither a folder with {MODEL_FILE} nor a registry model URI "
            "(<root>/<name>/<version or alias>)."
        )
    return RegistrySource(uri)


def _registry_uri_shaped(path: str) -> bool:
    """``<root>/<name>/<ref>`` whose model folder exists (the ref may be an alias file)."""
    try:
        parse_model_uri(path)
    except AssayError:
        return False
    return Path(path).parent.is_dir()


def trust_for_source(
    source: FolderSource | RegistrySource, trusted_keys: str, allow_unsigned: bool
) -> ModelTrust:
    """The keyring a server checks ``source`` against (see ModelTrustSettings)."""
    settings = ModelTrustSettings(
        trusted_keys=trusted_keys, allow_unsigned_models=allow_unsigned, signing_key=""
    )
    root = source.registry.root if isinstance(source, RegistrySource) else None
    return model_trust(settings, registry_root=root)


def load_from_source(
    source: FolderSource | RegistrySource, compile: bool, trust: ModelTrust
) -> LoadedClassifier:
    folder, owned = source.fetch()
    try:
        loaded = load_folder(folder, trust, compile=compile)
    finally:
        if owned:
            shutil.rmtree(folder, ignore_errors=True)
    return loaded
