"""Compile pipelines to IR YAML and submit them to a Kubeflow Pipelines endpoint (kfp.Client).

No Kubeflow runs here, so only the argument handling and the unreachable-endpoint error are
tested; the calls are the documented kfp 2 SDK ones (``Client.create_run_from_pipeline_func``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from assay.errors import UsageError
from assay.workflow.errors import PipelineRunError

DEFAULT_EXPERIMENT = "assay"
TOKEN_ENV = "KFP_TOKEN"


def compile_pipelines(
    out_dir: Path, pipelines: Mapping[str, Any], image: str | None = None
) -> dict[str, Path]:
    """Write ``<out_dir>/<name>.yaml`` for every ``{name: @dsl.pipeline object}`` given; with
    ``image``, every step (executor) runs that image instead of the components' default."""
    from kfp import compiler

    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, pipeline in pipelines.items():
        target = out_dir / f"{name}.yaml"
        tmp = out_dir / f".{name}.tmp.yaml"
        compiler.Compiler().compile(pipeline, str(tmp))
        if image is not None:
            set_executor_image(tmp, image)
        tmp.replace(target)
        written[name] = target
    return written


def set_executor_image(path: Path, image: str) -> None:
    """Point every container executor of the IR file at ``path`` to ``image``."""
    spec, *platform = yaml.safe_load_all(path.read_text())
    for executor in spec["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["image"] = image
    # kfp writes its IR with sorted keys too: an unchanged image gives the same file.
    path.write_text(yaml.safe_dump_all([spec, *platform], sort_keys=True))


def client_arguments(
    host: str, namespace: str | None = None, token: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``kfp.Client``; the token comes from KFP_TOKEN if not given."""
    if not host.startswith(("http://", "https://")):
        raise UsageError(
            f"--host must be an http(s) URL of the Kubeflow Pipelines API, not {host!r}."
        )
    arguments: dict[str, Any] = {"host": host.rstrip("/")}
    if namespace:
        arguments["namespace"] = namespace
    token = token or os.environ.get(TOKEN_ENV)
    if token:
        arguments["existing_token"] = token
    return arguments


def default_run_name(pipeline_name: str) -> str:
    return f"{pipeline_name}-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"


def submit_pipeline(
    pipeline: Any,
    arguments: Mapping[str, Any],
    *,
    name: str,
    host: str,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
    namespace: str | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """Create a run of ``pipeline`` (a @dsl.pipeline object registered as ``name``); return
    ``{"run_id", "url", "experiment"}``."""
    client_kwargs = client_arguments(host, namespace, token)  # cheap checks first

    import kfp

    try:
        with _quiet_sdk():
            client = kfp.Client(**client_kwargs)
            result = client.create_run_from_pipeline_func(
                pipeline,
                arguments=dict(arguments),
                run_name=run_name or default_run_name(name),
                experiment_name=experiment,
                namespace=namespace,
            )
    except Exception as exc:  # the SDK raises urllib3/ApiException/ValueError variants
        raise PipelineRunError(
            f"Could not submit pipeline {name!r} to Kubeflow Pipelines at "
            f"{client_kwargs['host']}: {_reason(exc)}"
        ) from exc
    run_id = str(result.run_id)
    return {
        "run_id": run_id,
        "url": f"{client_kwargs['host']}/#/runs/details/{run_id}",
        "experiment": experiment,
    }


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """kfp.Client warns about server versions and urllib3 logs each retry; one sentence is
    enough for the user when the endpoint is down."""
    pool_logger = logging.getLogger("urllib3.connectionpool")
    level = pool_logger.level
    pool_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        pool_logger.setLevel(level)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    chain = f"{text} {exc.__cause__ or exc.__context__ or ''}"
    if any(sign in chain for sign in ("Max retries", "Connection refused", "refused")):
        return "the endpoint is unreachable (connection refused); check --host and that it is up."
    return text[:300]


def load_compiled(path: Path) -> Any:
    """Load a compiled pipeline YAML with the kfp SDK (raises if it is not valid IR)."""
    from kfp import components

    return components.load_component_from_file(str(path))


_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def parse_parameters(pipeline: Any, pairs: list[str], *, name: str) -> dict[str, Any]:
    """``["repeats=3", "deploy=true"]`` -> typed arguments checked against the inputs of
    ``pipeline`` (a @dsl.pipeline object registered as ``name``)."""
    inputs = pipeline.component_spec.inputs or {}
    arguments: dict[str, Any] = {}
    for pair in pairs:
        parameter, sep, raw = pair.partition("=")
        parameter = parameter.strip()
        if not sep or not parameter:
            raise UsageError(f"--param {pair!r} must look like NAME=VALUE.")
        if parameter not in inputs:
            known = ", ".join(sorted(inputs))
            raise UsageError(f"Pipeline {name!r} has no parameter {parameter!r} ({known}).")
        arguments[parameter] = _coerce(parameter, raw, str(inputs[parameter].type))
    return arguments


def _coerce(name: str, raw: str, kind: str) -> Any:
    expected = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false"}
    try:
        if kind == "Integer":
            return int(raw)
        if kind == "Float":
            return float(raw)
        if kind == "Boolean":
            return _BOOLEANS[raw.strip().lower()]
    except (ValueError, KeyError):
        raise UsageError(f"Parameter {name!r} must be {expected[kind]}, not {raw!r}.") from None
    return raw
