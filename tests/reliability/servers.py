"""Real servers for the reliability suite: gunicorn and Django's runserver on free loopback
ports, against the test's database (``worker_env()``), stopped by the context manager."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request

from tests.reliability.conftest import ROOT, python, worker_env

SERVER_ENV = {"DEBUG": "0", "SECRET_KEY": "reliability-" + "x" * 52}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(kind: str, *, workers: int = 2, **env):
    """``kind`` "gunicorn" or "runserver"; yields the base URL."""
    port = free_port()
    if kind == "gunicorn":
        cmd = [python(), "-m", "gunicorn", "tradingstate.wsgi", "-b", f"127.0.0.1:{port}",
               "-w", str(workers), "--log-level", "warning",
               "--limit-request-line", "8190"]  # fmt: skip
    else:
        cmd = [python(), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=worker_env(**SERVER_ENV, **env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/health/", timeout=2).close()
                break
            except urllib.error.HTTPError:
                break  # it answers (503 while the worker is absent is an answer)
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{kind} did not start (exit {proc.poll()})") from None
                time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def raw_request(base: str, request: bytes, timeout: float = 20) -> tuple[int, dict, bytes]:
    """Send ``request`` bytes on a fresh socket; (status, headers, body) of the answer."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            headers = _headers(head)
            length = headers.get("content-length")
            if length is not None and len(body) >= int(length):
                break
            if headers.get("transfer-encoding", "").lower() == "chunked" and body.endswith(
                b"0\r\n\r\n"
            ):
                break
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = _headers(head)
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _dechunk(body)
    return status, headers, body


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def _headers(head: bytes) -> dict:
    out = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        out[name.decode().strip().lower()] = value.decode().strip()
    return out
