"""One local Ray for the whole test run, shared by every pytest-xdist worker.

The head lives in a process of its own (so no test process holds Ray's threads while other
tests fork). Without xdist the session starts it as a child and stops it by closing its stdin.
Under xdist the first worker that needs it starts it, in a session of its own, and writes how
to join it into the run's shared temporary folder; the other workers read that file. It stays
up until the xdist controller stops it at the end of the run (:func:`stop_shared_head`), and
stops by itself if the controller disappears without doing so.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Starts a local Ray (2 CPUs) the way every assay step does, prints what a process needs to
# join it (its GCS address; the token-auth mode Ray enabled, whose token is in ~/.ray), then
# waits: for its stdin to close (argv[1] == "0"), or for process argv[1] to end, or SIGTERM.
_HEAD = """
import json, os, signal, sys, time
from assay.parallel import init_ray
ray = init_ray(workers=2)
join = {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}
if os.environ.get("RAY_AUTH_MODE"):
    join["RAY_AUTH_MODE"] = os.environ["RAY_AUTH_MODE"]
print(json.dumps(join), flush=True)
watched = int(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True

try:
    if watched == 0:
        sys.stdin.read()
    else:
        while alive(watched):
            time.sleep(1)
finally:
    ray.shutdown()
"""

SHARED_FILE = "ray-head.json"


def _launch(log: Path, watched: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    with log.open("w") as sink:
        head = subprocess.Popen(
            [sys.executable, "-c", _HEAD, str(watched)],
            stdin=subprocess.PIPE if watched == 0 else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
            start_new_session=watched != 0,
        )
    assert head.stdout is not None
    line = head.stdout.readline().strip()
    if not line:
        head.kill()
        head.wait(timeout=10)
        raise AssertionError(f"the Ray head did not start:\n{log.read_text()[-3000:]}")
    return head, {str(k): str(v) for k, v in json.loads(line).items()}


@contextmanager
def private_head(folder: Path) -> Iterator[dict[str, str]]:
    """A Ray head for this process's session only; stopped on exit."""
    head, join = _launch(folder / "head.log", watched=0)
    assert head.stdin is not None
    try:
        yield join
    finally:
        head.stdin.close()
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait(timeout=10)


def shared_head(run_folder: Path, controller_pid: int) -> dict[str, str]:
    """The run's Ray head (started here if no worker has yet): how to join it."""
    record = run_folder / SHARED_FILE
    with (run_folder / "ray-head.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.exists():
            head, join = _launch(run_folder / "ray-head.log", watched=controller_pid)
            record.write_text(json.dumps({"pid": head.pid, "join": join}))
        return dict(json.loads(record.read_text())["join"])


def stop_shared_head(run_folder: Path, grace_s: float = 60) -> None:
    """Stop the run's Ray head, if a worker started one (called by the xdist controller)."""
    record = run_folder / SHARED_FILE
    if not record.exists():
        return
    pid = int(json.loads(record.read_text())["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while _running(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                return
            time.sleep(0.2)
    except ProcessLookupError:
        pass


def _running(pid: int) -> bool:
    """True while ``pid`` exists and has not exited (a zombie has exited)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"
