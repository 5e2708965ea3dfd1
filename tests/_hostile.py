"""Hostile inputs shared by the attack tests."""

from __future__ import annotations

import pickle
import socket
from pathlib import Path


class _RunsCodeWhenUnpickled:
    """Unpickling this creates ``marker``: the stand-in for arbitrary code in a tampered model."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def code_running_pickle(marker: Path) -> bytes:
    """Pickle bytes whose unpickling creates the file ``marker``."""
    return pickle.dumps(_RunsCodeWhenUnpickled(marker))


def read_answer(sock: socket.socket) -> tuple[int, str]:
    """Status and text of what a server sends on ``sock`` before it closes (0: nothing)."""
    answer = b""
    try:
        while data := sock.recv(65536):
            answer += data
    except ConnectionResetError:
        pass  # the answer was read; the close came as a reset
    if not answer:
        return 0, ""
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.decode(errors="replace")


def raw_post(port: int, path: str, head: list[str], chunks: list[bytes]) -> tuple[int, str]:
    """Send a POST head and body chunks exactly as given over a raw socket; (status, text)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", *head, "", ""]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall("\r\n".join(lines).encode())
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the whole body was sent
        return read_answer(sock)
