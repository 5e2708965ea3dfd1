"""Stopping a process the tests started: SIGTERM, then SIGKILL if it outlives its grace time."""

from __future__ import annotations

import subprocess


def stop_process(process: subprocess.Popen[bytes], grace_s: float = 10) -> None:
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
