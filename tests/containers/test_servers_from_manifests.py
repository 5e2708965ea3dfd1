"""Both servers as the dev overlay runs them: its predictor pods, rendered, run by podman.

``manifest_classifier`` and ``manifest_scorer`` (tests/conftest.py) render
``manifests/overlays/dev`` and run each InferenceService's predictor with exactly the image,
command, args, env, ports, securityContext, volumes and limits it declares
(tests/_manifest_container.py). The attack tests of tests/integration/serving run against the
same pods through their ``*_classifier`` / ``target`` fixtures.
"""

from __future__ import annotations

import json
import re

import grpc
import httpx
import joblib
import numpy as np
import pytest
from _manifest_servers import CLASSIFIER, SCORER, caller_key
from _wdbc_model import wdbc

pytestmark = [pytest.mark.container, pytest.mark.integration]

ROWS = wdbc()[0][:4]
# Passages every simulated rater answers (the simulator fails some passages on purpose, by hash);
# the in-process scorer tests rate the same ones.
TEXTS = [
    "Lawmakers debated the budget bill for hours (False).",
    "Radical activists again demanded handouts paid by taxpayers (False).",
]
GRPC_TEXT = "Council approves new bike lanes downtown."


@pytest.fixture(params=["classifier", "bias-scorer"])
def pod(request: pytest.FixtureRequest):
    return request.getfixturevalue(
        "manifest_classifier" if request.param == "classifier" else "manifest_scorer"
    )


def _v2_classifier_body(rows: np.ndarray) -> dict:
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP64"}
    return {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}


def _outputs(response: httpx.Response) -> dict[str, list]:
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


def _grpc_int64(answer, name: str) -> list[int]:
    """An INT64 output of a ModelInferResponse, sent raw or in typed contents."""
    index = [o.name for o in answer.outputs].index(name)
    if answer.raw_output_contents:
        return np.frombuffer(answer.raw_output_contents[index], dtype=np.int64).tolist()
    return list(answer.outputs[index].contents.int64_contents)


def _proc_status(pod, container: str = "kserve-container") -> dict[str, str]:
    code, text = pod.run("cat", "/proc/1/status", container=container)
    assert code == 0, text
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


@pytest.mark.parametrize("kind", ["readinessProbe", "livenessProbe"])
def test_the_probes_paths_answer(pod, kind: str) -> None:
    path, port = pod.probe(kind)
    response = httpx.get(f"http://127.0.0.1:{pod.port(port)}{path}", timeout=10)
    assert response.status_code == 200, (kind, path, response.text)


def test_every_container_of_the_pod_keeps_running(pod) -> None:
    assert pod.exited() is None, pod.logs(pod.exited()[0])


def test_classifier_v2_rest_answers_as_the_registered_model(manifest_classifier) -> None:
    """The answer is the registered version's: the pipeline of the folder mounted at
    /mnt/models, at its card's threshold."""
    response = httpx.post(
        f"{manifest_classifier.url}/v2/models/{CLASSIFIER}/infer",
        json=_v2_classifier_body(ROWS),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    outputs = _outputs(response)
    folder = manifest_classifier.model_dir
    card = json.loads((folder / "model-card.json").read_text())
    expected = joblib.load(folder / "model.joblib").predict_proba(ROWS)[:, 1]
    np.testing.assert_allclose(outputs["probability"], expected, rtol=1e-4, atol=1e-5)
    assert outputs["predict"] == (expected >= card["threshold"]).astype(int).tolist()


def test_classifier_v2_grpc_infer(manifest_classifier) -> None:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    rows = ROWS.astype(np.float32)
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP32", shape=list(rows.shape)
    )
    request = pb.ModelInferRequest(
        model_name=CLASSIFIER, inputs=[tensor], raw_input_contents=[rows.tobytes()]
    )
    with grpc.insecure_channel(manifest_classifier.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready
        answer = stub.ModelInfer(request, timeout=30)
    predict = _grpc_int64(answer, "predict")
    assert answer.model_name == CLASSIFIER and len(predict) == len(rows)
    assert set(predict) <= {0, 1}


def test_scorer_v2_rest_rates_with_every_simulated_rater(manifest_scorer) -> None:
    """The dev ensemble (the ConfigMap mounted at /etc/assay) rates through the llm-sim sidecar
    on the pod's loopback, its limits shared through the Redis its ConfigMap names: every rater
    answers, none is missing."""
    body = {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES", "data": TEXTS}]}
    response = httpx.post(
        f"{manifest_scorer.url}/v2/models/{SCORER}/infer",
        json=body,
        headers={"Authorization": f"Bearer {caller_key()}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    outputs = _outputs(response)
    assert outputs["n_ratings"] == [3, 3], outputs
    assert outputs["missing_raters"] == ["", ""]
    assert all(-2 <= score <= 2 for score in outputs["bias_score"])


def test_scorer_v2_grpc_infer(manifest_scorer) -> None:
    from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
    from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text",
        datatype="BYTES",
        shape=[1],
        contents=pb.InferTensorContents(bytes_contents=[GRPC_TEXT.encode()]),
    )
    request = pb.ModelInferRequest(model_name=SCORER, inputs=[tensor])
    with grpc.insecure_channel(manifest_scorer.grpc_target) as channel:
        answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(
            request, timeout=120, metadata=(("authorization", f"Bearer {caller_key()}"),)
        )
    assert _grpc_int64(answer, "n_ratings") == [3]


def test_the_server_runs_as_the_manifests_user_without_privileges(pod) -> None:
    context = pod.serving["securityContext"]
    status = _proc_status(pod)
    uids, gids = status["Uid"].split(), status["Gid"].split()
    assert set(uids) == {str(context["runAsUser"])}, status["Uid"]
    assert set(gids) == {str(context["runAsGroup"])}, status["Gid"]
    assert int(status["CapEff"], 16) == 0 and int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


def test_the_root_filesystem_is_read_only_and_tmp_is_writable(pod) -> None:
    code, text = pod.run("sh", "-c", "echo x > /opt/venv/planted")
    assert code != 0 and "Read-only file system" in text, text
    for path in ("/planted", "/var/tmp/planted", "/run/planted"):  # no tmpfs the pod lacks
        code, text = pod.run("sh", "-c", f"echo x > {path}")
        assert code != 0, (path, text)
    code, text = pod.run("sh", "-c", "echo x > /tmp/planted && cat /tmp/planted")
    assert code == 0 and text.strip() == "x", text


def test_the_model_folder_is_mounted_read_only(manifest_classifier) -> None:
    """The storage initializer's volume is read-only in the server's container (a mount flag:
    the files' modes alone already refuse the server's uid)."""
    code, mounts = manifest_classifier.run("cat", "/proc/self/mounts")
    assert code == 0, mounts
    (options,) = [
        line.split()[3] for line in mounts.splitlines() if line.split()[1] == "/mnt/models"
    ]
    assert options.split(",")[0] == "ro", options


def test_the_memory_limit_is_the_manifests(pod) -> None:
    limit = pod.serving["resources"]["limits"]["memory"]
    number, unit = re.fullmatch(r"(\d+)(Mi|Gi)", limit).groups()  # type: ignore[union-attr]
    expected = int(number) * {"Mi": 2**20, "Gi": 2**30}[unit]
    assert pod.inspect("{{.HostConfig.Memory}}") == str(expected)
