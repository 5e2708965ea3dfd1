"""Start and stop the benchmarked model servers: free ports, a process that must answer its
readiness URL, MLServer's own virtualenv, and the bare KServe server used as a reference."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import sklearn

MLSERVER_VERSION = "1.7.1"

PLAIN_KSERVE_SERVER = textwrap.dedent(
    '''
    """A bare KServe sklearn-style server: load() then predict() calling predict_proba."""
    import argparse, joblib, kserve
    from kserve import InferRequest, InferResponse, InferOutput
    class SKLearnModel(kserve.Model):
        def __init__(self, name, path):
            super().__init__(name); self.path = path; self.load()
        def load(self):
            self.model = joblib.load(self.path); self.ready = True; return True
        def predict(self, payload, headers=None):
            proba = self.model.predict_proba(payload.inputs[0].as_numpy())[:, 1]
            out = InferOutput(name="probability", shape=[len(proba)], datatype="FP64")
            out.set_data_from_numpy(proba, binary_data=False)
            return InferResponse(response_id=payload.id or "", model_name=self.name,
                                 infer_outputs=[out])
    if __name__ == "__main__":
        parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
        parser.add_argument("--model_path")
        args, _ = parser.parse_known_args()
        kserve.ModelServer(enable_latency_logging=False).start(
            [SKLearnModel(args.model_name, args.model_path)])
    '''
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    outputs: list[str] | None  # requested outputs: ask every server for probabilities
    pid: int


def mlserver_python() -> Path:
    """MLServer's own virtualenv (created once; it conflicts with assay's lock)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assay" / "bench"
    venv = cache / f"mlserver-{MLSERVER_VERSION}"
    python = venv / "bin" / "python"
    # uvloop >= 0.22 breaks MLServer 1.7's inference-pool workers (no implicit event loop)
    check = "import mlserver_sklearn, sklearn, uvloop; assert uvloop.__version__ < '0.22'"
    probe = [str(python), "-c", f"{check}; print(sklearn.__version__)"]
    if python.exists():
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == sklearn.__version__:
            return python
    print(f"installing MLServer {MLSERVER_VERSION} into {venv} (once) ...", flush=True)
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"mlserver=={MLSERVER_VERSION}",
            f"mlserver-sklearn=={MLSERVER_VERSION}",
            f"scikit-learn=={sklearn.__version__}",
            "uvloop<0.22",
        ],
        check=True,
    )
    return python


@contextmanager
def running(
    command: list[str], ready_url: str, log: Path, cwd: Path, env: dict[str, str] | None = None
) -> Iterator[int]:
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{command[:3]} exited:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"{command[:3]} not ready after 180 s:\n{log.read_text()[-3000:]}")
        yield process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
