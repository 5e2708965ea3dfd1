"""Compile/submit helpers. No Kubeflow endpoint can run here: submission is tested for its
argument handling and, against a closed port on 127.0.0.1, for its unreachable-host error."""

from __future__ import annotations

import socket

import pytest

from assay.errors import UsageError
from assay.workflow.errors import PipelineRunError
from assay.workflow.remote import client_arguments, parse_parameters, submit_pipeline
from assay_pipelines import get_pipeline


def test_parse_parameters_types_values_from_the_pipeline_signature() -> None:
    arguments = parse_parameters(
        get_pipeline("training"),
        ["repeats=3", "deploy=true", "target_sensitivity=0.95", "models=adaboost"],
        name="training",
    )
    assert arguments == {
        "repeats": 3,
        "deploy": True,
        "target_sensitivity": 0.95,
        "models": "adaboost",
    }


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("repeats", "must look like NAME=VALUE"),
        ("nope=1", "has no parameter 'nope'"),
        ("repeats=many", "'repeats' must be an integer"),
        ("deploy=maybe", "'deploy' must be true or false"),
    ],
)
def test_parse_parameters_rejects_bad_pairs(pair: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_parameters(get_pipeline("training"), [pair], name="training")


def test_unknown_pipeline_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="Unknown pipeline 'nope'"):
        parse_parameters(get_pipeline("nope"), [], name="nope")


def test_client_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KFP_TOKEN", raising=False)
    assert client_arguments("http://kfp.example:8888/") == {"host": "http://kfp.example:8888"}
    monkeypatch.setenv("KFP_TOKEN", "t0ken")
    assert client_arguments("https://kfp", namespace="team") == {
        "host": "https://kfp",
        "namespace": "team",
        "existing_token": "t0ken",
    }
    with pytest.raises(UsageError, match="must be an http"):
        client_arguments("kfp.example:8888")


def test_submit_to_unreachable_host_is_one_sentence() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens
    with pytest.raises(PipelineRunError, match=r"unreachable \(connection refused\)"):
        submit_pipeline(
            get_pipeline("training"),
            {"repeats": 1},
            name="training",
            host=f"http://127.0.0.1:{port}",
        )
