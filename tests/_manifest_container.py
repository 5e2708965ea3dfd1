"""Run a KServe predictor exactly as the rendered manifests describe it, with podman.

The pod of an InferenceService is read from the rendered kustomize target
(``kubectl kustomize manifests/overlays/<overlay>``): its own ``predictor.containers``, or the
ServingRuntime its ``predictor.model`` names, merged as KServe merges them (the model's fields
over the runtime container's, args appended, ``{{.Name}}`` substituted, the storage
initializer's ``/mnt/models``). Each container becomes one ``podman run`` in a podman pod:

- image, command and args as rendered (an override map only for development:
  ``ASSAY_TEST_IMAGE_MAP="ref=local-ref,..."``);
- env: literal values, ConfigMap and Secret references resolved from the rendered objects
  (Secrets may be given test values), ``envFrom`` too; a required reference that resolves to
  nothing is an error;
- securityContext: runAsUser/runAsGroup -> ``--user``, readOnlyRootFilesystem -> ``--read-only``,
  capabilities.drop -> ``--cap-drop``, allowPrivilegeEscalation false -> no-new-privileges;
- volumes: emptyDir -> ``--tmpfs``; ConfigMap and Secret -> their keys as files, mounted read-only;
- resources: the memory and CPU limits;
- ports: every declared containerPort and the servers' ``--grpc_port`` are published on
  127.0.0.1 (the pod's other containers reach each other on the pod's loopback, as in
  Kubernetes);
- probes: the readiness probe's path and port decide when the pod is ready.

A container that exits, or a readiness probe that never answers 200, raises
:class:`PodNotReady` with the container's exit code and the end of its log, so drift between a
manifest and the image (a wrong module path, a missing file, a read-only path written to) fails
with the reason the process gave.
"""

from __future__ import annotations

import base64
import copy
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from _kustomize import Obj, find

MODEL_MOUNT = "/mnt/models"
IMAGE_MAP_ENV = "ASSAY_TEST_IMAGE_MAP"
SERVING_GROUP = "serving.kserve.io"
PODMAN_TIMEOUT_S = 600
"""A podman command waits for the storage lock while another build or run holds it."""


class PodNotReady(AssertionError):
    """A container of the pod exited, or its readiness probe never answered 200."""


class ManifestError(AssertionError):
    """The rendered objects cannot be run as written (a dangling reference, an unknown volume)."""


# --------------------------------------------------------------------------------------------
# The predictor pod, as KServe would build it
# --------------------------------------------------------------------------------------------


def _kserve_objects(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind and o["apiVersion"].startswith(SERVING_GROUP)]


def _serving_runtime(objs: list[Obj], name: str) -> Obj:
    runtimes = [
        o
        for kind in ("ServingRuntime", "ClusterServingRuntime")
        for o in _kserve_objects(objs, kind)
        if o["metadata"]["name"] == name
    ]
    if len(runtimes) != 1:
        raise ManifestError(f"the model names runtime {name!r}: {len(runtimes)} rendered")
    return runtimes[0]


def _substitute(text: str, values: Mapping[str, str]) -> str:
    """KServe's Go-template substitution of ServingRuntime fields (``{{.Name}}`` and friends)."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise ManifestError(f"{match.group(0)} in a ServingRuntime: KServe sets no such field")
        return values[key]

    return re.sub(r"\{\{\s*\.(\w+)\s*\}\}", value, text)


def _merge_model(runtime_container: Obj, model: Obj, values: Mapping[str, str]) -> Obj:
    """The kserve-container: the model's container fields over the runtime's, args appended."""
    merged = copy.deepcopy(runtime_container)
    skip = {
        "modelFormat",
        "runtime",
        "storageUri",
        "protocolVersion",
        "args",
        "env",
        "volumeMounts",
    }
    merged.update({k: copy.deepcopy(v) for k, v in model.items() if k not in skip})
    # KServe merges the model's container into the runtime's by strategic merge patch: volume
    # mounts are merged by mountPath (the model's win), not replaced as a whole list.
    by_path = {m["mountPath"]: m for m in runtime_container.get("volumeMounts", [])}
    by_path.update({m["mountPath"]: m for m in model.get("volumeMounts", [])})
    merged["volumeMounts"] = copy.deepcopy(list(by_path.values()))
    merged["args"] = [*runtime_container.get("args", []), *model.get("args", [])]
    by_name = {e["name"]: e for e in runtime_container.get("env", [])}
    by_name.update({e["name"]: e for e in model.get("env", [])})
    merged["env"] = list(by_name.values())
    for key in ("command", "args"):
        merged[key] = [_substitute(str(part), values) for part in merged.get(key, [])]
    for env in merged["env"]:
        if "value" in env:
            env["value"] = _substitute(str(env["value"]), values)
    if "storageUri" in model:
        mounts = merged.setdefault("volumeMounts", [])
        mounts.append(
            {"name": "kserve-provision-location", "mountPath": MODEL_MOUNT, "readOnly": True}
        )
    return merged


def predictor_pod(objs: list[Obj], isvc_name: str) -> Obj:
    """The pod spec (containers, volumes) of an InferenceService's predictor."""
    isvc = find(objs, "InferenceService", isvc_name)
    predictor = copy.deepcopy(isvc["spec"]["predictor"])
    volumes = list(predictor.get("volumes", []))
    if "model" not in predictor:
        return {"containers": predictor["containers"], "volumes": volumes}
    model = predictor["model"]
    runtime = _serving_runtime(objs, model["runtime"])
    values = {"Name": isvc_name, "Namespace": isvc["metadata"].get("namespace", "default")}
    containers = copy.deepcopy(runtime["spec"]["containers"])
    containers[0] = _merge_model(containers[0], model, values)
    if "storageUri" in model:
        volumes.append({"name": "kserve-provision-location", "modelFolder": True})
    runtime_volumes = copy.deepcopy(runtime["spec"].get("volumes", []))
    return {"containers": containers, "volumes": [*runtime_volumes, *volumes]}


# --------------------------------------------------------------------------------------------
# From a container spec to `podman run`
# --------------------------------------------------------------------------------------------


def _object_data(objs: list[Obj], kind: str, name: str, secrets: Mapping[str, str]) -> dict:
    """A ConfigMap's or Secret's data as rendered; a Secret's keys may be given test values
    (``secrets["<name>/<key>"]``), also for a Secret the overlay leaves to the operator."""
    matches = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    obj = matches[0] if matches else {}
    if kind == "ConfigMap":
        return dict(obj.get("data", {}))
    data = {k: base64.b64decode(v).decode() for k, v in obj.get("data", {}).items()}
    data.update(obj.get("stringData", {}))
    given = {k.split("/", 1)[1]: v for k, v in secrets.items() if k.split("/", 1)[0] == name}
    return {**data, **given}


def _resolve_ref(objs: list[Obj], ref: Obj, kind: str, secrets: Mapping[str, str]) -> str | None:
    data = _object_data(objs, kind, ref["name"], secrets)
    if ref["key"] in data:
        return str(data[ref["key"]])
    if ref.get("optional"):
        return None
    raise ManifestError(f"env refers to {kind} {ref['name']} key {ref['key']}: not rendered")


def resolve_env(objs: list[Obj], container: Obj, secrets: Mapping[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        kind, ref = (
            ("ConfigMap", source["configMapRef"])
            if "configMapRef" in source
            else ("Secret", source["secretRef"])
        )
        data = _object_data(objs, kind, ref["name"], secrets)
        if not data and not ref.get("optional"):
            raise ManifestError(f"envFrom refers to {kind} {ref['name']}: not rendered")
        env.update({source.get("prefix", "") + k: str(v) for k, v in data.items()})
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = expand(str(item["value"]), env)
            continue
        source = item.get("valueFrom", {})
        if "configMapKeyRef" in source:
            value = _resolve_ref(objs, source["configMapKeyRef"], "ConfigMap", secrets)
        elif "secretKeyRef" in source:
            value = _resolve_ref(objs, source["secretKeyRef"], "Secret", secrets)
        else:
            raise ManifestError(f"env {item['name']}: unsupported valueFrom {source}")
        if value is not None:
            env[item["name"]] = value
    return env


def _mount_sources(
    objs: list[Obj], pod: Obj, workdir: Path, model_dir: Path | None, secrets: Mapping[str, str]
) -> dict[str, Path | None]:
    """Volume name -> host folder to bind (None: an emptyDir, a tmpfs)."""
    sources: dict[str, Path | None] = {}
    for volume in pod["volumes"]:
        name = volume["name"]
        if "emptyDir" in volume:
            sources[name] = None
        elif volume.get("modelFolder"):
            if model_dir is None:
                raise ManifestError(f"the predictor loads {MODEL_MOUNT}: give a model folder")
            sources[name] = model_dir
        elif "hostPath" in volume:
            sources[name] = Path(volume["hostPath"]["path"])
        elif "persistentVolumeClaim" in volume:  # a fresh, empty volume, as a new PV is
            folder = workdir / f"pvc-{name}"
            folder.mkdir(mode=0o777)
            folder.chmod(0o777)  # the pod's fsGroup would make it writable for its uid
            sources[name] = folder
        elif "configMap" in volume or "secret" in volume:
            kind = "ConfigMap" if "configMap" in volume else "Secret"
            ref = volume["configMap"] if kind == "ConfigMap" else volume["secret"]
            ref_name = ref.get("name") or ref.get("secretName")
            data = _object_data(objs, kind, ref_name, secrets)
            if not data and not ref.get("optional"):
                raise ManifestError(f"volume {name} mounts {kind} {ref_name}: not rendered")
            folder = workdir / f"volume-{name}"
            folder.mkdir(mode=0o755)
            for key, text in data.items():
                (folder / key).write_text(text)
                (folder / key).chmod(0o644)
            sources[name] = folder
        else:
            raise ManifestError(f"volume {name}: no podman equivalent for {sorted(volume)}")
    return sources


def _memory(limit: str) -> str:
    units = {"Ki": "k", "Mi": "m", "Gi": "g"}
    for suffix, podman in units.items():
        if limit.endswith(suffix):
            return limit[: -len(suffix)] + podman
    return limit


def _cpus(limit: str) -> str:
    return str(int(limit[:-1]) / 1000) if limit.endswith("m") else limit


def _security_flags(context: Obj) -> list[str]:
    flags: list[str] = []
    if "runAsUser" in context:
        group = context.get("runAsGroup", context["runAsUser"])
        flags.append(f"--user={context['runAsUser']}:{group}")
    elif context.get("runAsNonRoot"):
        flags.append("--user=65534:65534")  # no uid named: any non-root uid fits the manifest
    if context.get("readOnlyRootFilesystem"):
        # podman's --read-only alone mounts writable tmpfs on /tmp, /var/tmp and /run; Kubernetes
        # gives a read-only root no writable path the pod spec does not mount.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    flags += [f"--cap-drop={cap}" for cap in context.get("capabilities", {}).get("drop", [])]
    flags += [f"--cap-add={cap}" for cap in context.get("capabilities", {}).get("add", [])]
    if context.get("allowPrivilegeEscalation") is False:
        flags.append("--security-opt=no-new-privileges")
    return flags


def image_for(reference: str) -> str:
    """The rendered image reference, or its development stand-in from ``ASSAY_TEST_IMAGE_MAP``."""
    for pair in filter(None, os.environ.get(IMAGE_MAP_ENV, "").split(",")):
        rendered, _, local = pair.partition("=")
        if rendered.strip() == reference:
            return local.strip()
    return reference


def run_flags(
    container: Obj, env: Mapping[str, str], mounts: Mapping[str, Path | None]
) -> list[str]:
    """The `podman run` flags (before the image) that reproduce one container spec."""
    flags = _security_flags(container.get("securityContext", {}))
    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        flags.append(f"--memory={_memory(str(limits['memory']))}")
    if "cpu" in limits:
        flags.append(f"--cpus={_cpus(str(limits['cpu']))}")
    for mount in container.get("volumeMounts", []):
        if mount["name"] not in mounts:
            raise ManifestError(f"{container['name']} mounts volume {mount['name']}: not declared")
        source = mounts[mount["name"]]
        if source is None:
            flags.append(f"--tmpfs={mount['mountPath']}:rw,mode=1777")
        else:
            mode = "ro" if mount.get("readOnly") else "rw"
            flags.append(f"--volume={source}:{mount['mountPath']}:{mode}")
    flags += [f"--env={key}={value}" for key, value in env.items()]
    if container.get("command"):
        flags.append(f"--entrypoint={container['command'][0]}")
    return flags


def expand(text: str, env: Mapping[str, str]) -> str:
    """The kubelet's ``$(VAR)`` expansion of command, args and env values: a defined variable's
    value, ``$$`` an escaped ``$``, an undefined reference left as written."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\((\w+)\)", value, text)


def command_line(container: Obj, env: Mapping[str, str] | None = None) -> list[str]:
    """What follows the image: the command's tail (its head is the entrypoint) and the args,
    with the container's environment ``env`` expanded in them as the kubelet does.

    An empty ``--entrypoint`` would keep the image's ENTRYPOINT, which Kubernetes replaces.
    """
    command = list(container.get("command", []))
    return [expand(part, env or {}) for part in [*command[1:], *container.get("args", [])]]


# --------------------------------------------------------------------------------------------
# The running pod
# --------------------------------------------------------------------------------------------


def _podman(*args: str, timeout: float = PODMAN_TIMEOUT_S, check: bool = True) -> str:
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout


def _grpc_port(container: Obj) -> int | None:
    for arg in container.get("args", []):
        if re.fullmatch(r"--grpc[_-]port=\d+", arg):
            return int(arg.split("=")[1])
    return None


def _pod_ports(pod: Obj) -> list[int]:
    ports = {p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])}
    ports |= {port for c in pod["containers"] if (port := _grpc_port(c)) is not None}
    return sorted(ports)


@dataclass
class ManifestPod:
    """A predictor pod running in podman; ``port(8080)`` is the host port of container port 8080."""

    name: str
    pod: Obj
    host_ports: dict[int, int]
    containers: dict[str, str] = field(default_factory=dict)  # spec name -> podman container
    model_name: str = ""
    model_dir: Path | None = None
    admin_token: str = ""  # the manifests give the servers none: repository endpoints are off

    @property
    def serving(self) -> Obj:
        return next(c for c in self.pod["containers"] if c["name"] == "kserve-container")

    def port(self, container_port: int) -> int:
        return self.host_ports[container_port]

    def probe(self, kind: str) -> tuple[str, int]:
        """(path, container port) of the serving container's ``readinessProbe`` or the like."""
        get = self.serving[kind]["httpGet"]
        return str(get["path"]), int(get["port"])

    @property
    def http_port(self) -> int:
        return self.port(int(self.serving["ports"][0]["containerPort"]))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        port = _grpc_port(self.serving)
        assert port is not None, "the serving container sets no --grpc_port"
        return f"127.0.0.1:{self.port(port)}"

    def exec(self, *command: str, container: str = "kserve-container") -> subprocess.Popen:
        """A ``podman exec`` in one container, as the container's own user."""
        return subprocess.Popen(
            ["podman", "exec", self.containers[container], *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def run(self, *command: str, container: str = "kserve-container") -> tuple[int, str]:
        process = self.exec(*command, container=container)
        output, _ = process.communicate(timeout=PODMAN_TIMEOUT_S)
        return process.returncode, output

    def inspect(self, template: str, container: str = "kserve-container") -> str:
        return _podman("inspect", "--format", template, self.containers[container]).strip()

    def logs(self, container: str = "kserve-container", tail: int = 60) -> str:
        """The end of a container's output (stdout and stderr, as podman stored them).

        Right after a container exits its last lines can still be on their way to the log
        file: an empty log is read again for a few seconds.
        """
        for _ in range(40):
            result = subprocess.run(
                ["podman", "logs", "--tail", str(tail), self.containers[container]],
                capture_output=True,
                text=True,
                timeout=PODMAN_TIMEOUT_S,
                check=False,
            )
            if (text := result.stdout + result.stderr).strip():
                return text
            time.sleep(0.25)
        return self._rerun_output(container)

    def _rerun_output(self, container: str) -> str:
        """The output of the same exited container started again, attached.

        podman 4.3 now and then keeps no log for a container that exits within a second of
        starting (the process wrote it; conmon did not store it); the second run's output is
        read straight from the attached streams.
        """
        state = self.inspect("{{.State.Status}} {{.State.ExitCode}}", container)
        if not state.startswith(("exited", "stopped")):
            return f"(empty log; podman: {state})"
        result = subprocess.run(
            ["podman", "start", "--attach", self.containers[container]],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PODMAN_TIMEOUT_S,
            check=False,
        )
        output = (result.stdout + result.stderr).strip() or "(empty)"
        return f"(podman kept no log; the same container started again printed:)\n{output}"

    def exited(self) -> tuple[str, int] | None:
        """(spec name, exit code) of a container that is no longer running."""
        for spec_name, container in self.containers.items():
            state = _podman(
                "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container
            ).split()
            if state and state[0] in {"exited", "stopped", "dead"}:
                return spec_name, int(state[1])
        return None

    def wait_ready(self, timeout_s: float = 120) -> ManifestPod:
        path, port = self.probe("readinessProbe")
        url = f"http://127.0.0.1:{self.port(port)}{path}"
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if (gone := self.exited()) is not None:
                spec_name, code = gone
                # conmon may still be writing the log: wait until podman has recorded the exit.
                _podman("wait", self.containers[spec_name], check=False)
                raise PodNotReady(
                    f"container {spec_name} of {self.name} exited with code {code} before its "
                    f"readiness probe {path} answered 200; its log ends:\n{self.logs(spec_name)}"
                )
            try:
                answer = httpx.get(url, timeout=2)
                if answer.status_code == 200:
                    return self
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.3)
        raise PodNotReady(
            f"{self.name}: readiness probe {path} on port {port} not 200 after {timeout_s:.0f} s "
            f"(last: {last}); the serving container's log ends:\n{self.logs()}"
        )


@dataclass(frozen=True)
class PodOptions:
    """What the cluster would provide around the manifests."""

    model_dir: Path | None = None
    """The registered version folder the storage initializer would copy to /mnt/models."""
    secrets: Mapping[str, str] = field(default_factory=dict)
    """Test values for Secret keys, as ``{"<secret>/<key>": value}``."""
    hosts: Mapping[str, str] = field(default_factory=dict)
    """Extra /etc/hosts entries of the pod (a cluster Service name -> an address in the pod)."""
    extra_containers: tuple[Obj, ...] = ()
    """Containers that stand in for other Services (e.g. Redis), started first."""
    extra_volumes: tuple[Obj, ...] = ()
    """Volumes those containers mount (``hostPath`` ones bind a host folder)."""


def require_podman() -> None:
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed: the container tests run with `make test-image`")


def require_image(reference: str) -> str:
    local = image_for(reference)
    require_podman()
    found = subprocess.run(
        ["podman", "image", "exists", local],
        capture_output=True,
        timeout=PODMAN_TIMEOUT_S,
        check=False,
    )
    if found.returncode != 0:
        pytest.skip(f"image {local} is not built: `make image` then `make test-image`")
    return local


def _free_ports(count: int) -> list[int]:
    import socket

    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _start_container(
    objs: list[Obj],
    pod_name: str,
    container: Obj,
    mounts: Mapping[str, Path | None],
    opts: PodOptions,
) -> str:
    name = f"{pod_name}-{container['name']}"
    env = resolve_env(objs, container, opts.secrets)
    flags = run_flags(container, env, mounts)
    image = image_for(container["image"])
    _podman(
        "run",
        "--detach",
        f"--pod={pod_name}",
        f"--name={name}",
        *flags,
        image,
        *command_line(container, env),
    )
    return name


@contextmanager
def run_predictor(
    objs: list[Obj], isvc_name: str, workdir: Path, options: PodOptions | None = None
) -> Iterator[ManifestPod]:
    """Start the predictor pod of ``isvc_name`` (not yet ready); removed on exit."""
    opts = options or PodOptions()
    pod = predictor_pod(objs, isvc_name)
    pod["volumes"] = [*pod["volumes"], *opts.extra_volumes]
    for container in pod["containers"]:
        require_image(container["image"])
    ports = _pod_ports(pod)
    host_ports = dict(zip(ports, _free_ports(len(ports)), strict=True))
    name = f"assay-test-{isvc_name}-{uuid.uuid4().hex[:8]}"
    publish = [f"--publish=127.0.0.1:{host}:{port}" for port, host in host_ports.items()]
    hosts = [f"--add-host={host}:{address}" for host, address in opts.hosts.items()]
    _podman("pod", "create", f"--name={name}", *publish, *hosts)
    running = ManifestPod(name, pod, host_ports, model_name=isvc_name, model_dir=opts.model_dir)
    try:
        mounts = _mount_sources(objs, pod, workdir, opts.model_dir, opts.secrets)
        for container in [*opts.extra_containers, *pod["containers"]]:
            running.containers[container["name"]] = _start_container(
                objs, name, container, mounts, opts
            )
        yield running
    finally:
        _podman("pod", "rm", "--force", "--time=5", name, check=False)
