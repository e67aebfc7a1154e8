"""A live tradingstate for the client's tests: gunicorn serving the app from the project root
on a loopback port, with a database of its own (PostgreSQL when DATABASE_URL points at
PostgreSQL, else a throwaway SQLite file). Real HTTP; nothing of the server is mocked.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[3]
GUNICORN = Path(sys.executable).with_name("gunicorn")
ACCOUNT = "paper-demo"

SETUP_SCRIPT = """
import io
import json
from django.core.management import call_command

# one process for the whole set-up (each manage.py start costs seconds under load)
call_command("migrate", interactive=False, verbosity=0)
call_command("createcachetable")
call_command("demo", stdout=io.StringIO())
call_command("reconcile", account="paper-demo", stdout=io.StringIO())  # converge
from django.contrib.auth import get_user_model
from knox.models import AuthToken
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount
from tradingstate.services import bot_create

ExchangeAccount.objects.get_or_create(name="other", defaults={"exchange": "paper"})
ExchangeAccount.objects.get_or_create(name="client-spare", defaults={"exchange": "paper"})
actor = Actor.system("client-tests")
tokens = {}
for name, accounts in [("alpha", ["paper-demo", "client-spare"]), ("throttled", ["paper-demo"]),
                       ("paperbot", ["paper-demo"])]:
    tokens[name] = bot_create(name=name, account_names=accounts, actor=actor, reason="").token
staff = get_user_model().objects.create_superuser("client-staff", "staff@example.com", "x" * 20)
tokens["staff"] = AuthToken.objects.create(user=staff)[1]
print("TOKENS=" + json.dumps(tokens))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL") or ""
    return url if url.startswith(("postgres://", "postgresql://")) else None


@dataclass
class Database:
    url: str
    drop: object = None  # callable, or None for SQLite


def make_database(tmp: Path) -> Database:
    base = _postgres_url()
    if base is None:
        return Database(url=f"sqlite:///{tmp / 'client.sqlite3'}")
    import psycopg  # the project's driver

    parts = urlsplit(base)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"{parts.path.lstrip('/') or 'tradingstate'}_client_{worker}"[:63]
    admin = urlunsplit(parts._replace(path="/postgres"))

    def run(sql: str) -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql)

    run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    run(f'CREATE DATABASE "{name}"')
    return Database(
        url=urlunsplit(parts._replace(path=f"/{name}")),
        drop=lambda: run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'),
    )


@dataclass
class Server:
    base_url: str
    env: dict
    tokens: dict
    process: subprocess.Popen
    log: Path
    extra: dict = field(default_factory=dict)

    @property
    def token(self) -> str:
        return self.tokens["alpha"]

    def manage(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return manage(self.env, *args, timeout=timeout)

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code).stdout


def manage(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def start_gunicorn(env: dict, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    logfile = log.open("w")
    process = subprocess.Popen(
        [str(GUNICORN), "tradingstate.wsgi", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--timeout", "120", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({process.returncode}):\n{log.read_text()}")
        try:
            urllib.request.urlopen(base + "/api/v1/health/", timeout=2)
            return process, base
        except urllib.error.HTTPError:  # 503 (worker stale is 200 "degraded"): it answers
            return process, base
        except OSError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def write_config(path: Path, api: dict) -> Path:
    lines = [(ROOT / "configs" / "paper.toml").read_text(), "", "[api]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in api.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def live(tmp_path_factory) -> Server:
    """The app under gunicorn with the runbook's demo account, reconciled once, and tokens
    for the bots ``alpha`` (paper-demo, client-spare), ``throttled`` and ``paperbot``
    (paper-demo) and a staff user."""
    if not GUNICORN.exists():
        pytest.skip("gunicorn not installed (make install)")
    tmp = tmp_path_factory.mktemp("client-live")
    db = make_database(tmp)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TRADINGSTATE_CONFIG")},
        "DATABASE_URL": db.url,
        "TRADINGSTATE_LOG_DIR": str(tmp / "logs"),
        "TRADINGSTATE_CONFIG": str(write_config(tmp / "live.toml", {"page_size": 100})),
        "DEBUG": "0",
        "SECRET_KEY": "client-tests-" + "x" * 60,
        "SECURE_SSL_REDIRECT": "0",
    }
    # migrate, demo, one pass (converged first: trading is normal), then the bots' tokens
    out = manage(env, "shell", "-c", SETUP_SCRIPT, timeout=300).stdout
    tokens = json.loads(next(li for li in out.splitlines() if li.startswith("TOKENS="))[7:])
    process, base = start_gunicorn(env, tmp / "gunicorn.log")
    server = Server(
        base_url=base, env=env, tokens=tokens, process=process, log=tmp / "gunicorn.log"
    )
    try:
        yield server
    finally:
        stop(process)
        extra = server.extra.get("throttled")
        if extra is not None:
            stop(extra)
        if db.drop is not None:
            db.drop()


@pytest.fixture(scope="session")
def throttled(live, tmp_path_factory) -> Server:
    """A second gunicorn on the same database with a bot rate of 4 requests a second."""
    tmp = tmp_path_factory.mktemp("client-throttled")
    env = {
        **live.env,
        "TRADINGSTATE_CONFIG": str(write_config(tmp / "t.toml", {"bot_rate": "4/s"})),
    }
    process, base = start_gunicorn(env, tmp / "gunicorn.log")
    live.extra["throttled"] = process
    return Server(
        base_url=base, env=env, tokens=live.tokens, process=process, log=tmp / "gunicorn.log"
    )


class StallingProxy:
    """A TCP proxy on loopback in front of the server. The first ``stall`` connections pass
    the request through but hold back the answer: the server does the work, the client
    times out. Later connections pass both ways. This fakes only the network.

    ``drop``: when the held-back answer arrives, close the client's connection at once,
    without a byte of it (the client sees the server disconnect without answering).
    ``on_answer()``: run when a held-back answer arrives, before it is dropped: a change
    someone else makes between the server applying the request and the client learning
    that it failed. ``port``: listen on this port (0: any free one)."""

    def __init__(
        self,
        upstream: str,
        stall: int = 1,
        *,
        drop: bool = False,
        on_answer=None,
        port: int = 0,
    ):
        import threading

        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.stall = stall
        self.drop = drop
        self.on_answer = on_answer
        self.connections = 0
        self.stalled = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self._sock.listen(16)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        self._sock.close()

    def _accept(self) -> None:
        import threading

        while not self._closed:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                hold = self.stall > 0
                if hold:
                    self.stall -= 1
                    self.stalled += 1
            up = socket.create_connection(self.upstream)
            threading.Thread(target=self._pipe, args=(conn, up, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, conn, hold), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, discard: bool) -> None:
        try:
            answered = False
            while data := src.recv(65536):
                if not discard:
                    dst.sendall(data)
                    continue
                if not answered and self.on_answer is not None:
                    self.on_answer()  # the server has applied the request by now
                answered = True
                if self.drop:
                    break  # close both: the client gets no answer at all
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture
def stalling_proxy(live):
    proxy = StallingProxy(live.base_url, stall=1)
    yield proxy
    proxy.close()


@dataclass
class Answer:
    """What a :class:`CraftedServer` sends back: ``body`` as bytes, or JSON for a dict/list;
    ``delay`` seconds of silence first (to outlast a client's read timeout); ``drip``: send
    the body one byte at a time, that many seconds apart (each read is quick, the whole
    is slow), and with ``drip_head`` the status line and headers too; ``drop``: close the
    connection without answering (after reading the request)."""

    status: int = 200
    body: object = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drip: float = 0.0
    drip_head: bool = False
    drop: bool = False


@dataclass
class Seen:
    """One request as it arrived at a :class:`CraftedServer`."""

    method: str
    path: str  # as sent on the wire: percent-encoding intact, query included
    headers: dict
    body: bytes
    at: float  # time.monotonic() on arrival

    def json(self):
        return json.loads(self.body)


class CraftedServer:
    """A loopback HTTP server that answers each request with ``respond(seen) -> Answer``: for
    the answers tradingstate never gives (a proxy's page, a broken body, odd headers, a slow
    pass). Real HTTP over a socket; the client under test is not mocked."""

    def __init__(self, respond):
        import http.server
        import threading

        self.respond = respond
        self.requests: list[Seen] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def handle_one(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers),
                            self.rfile.read(length), time.monotonic())  # fmt: skip
                owner.requests.append(seen)
                answer = owner.respond(seen)
                if answer.drop:
                    self.close_connection = True
                    return
                body = answer.body
                headers = dict(answer.headers)
                if isinstance(body, dict | list):
                    body = json.dumps(body).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(body, str):
                    body = body.encode()
                headers.setdefault("Content-Length", str(len(body)))
                time.sleep(answer.delay)
                phrase = self.responses.get(answer.status, ("Answer",))[0]
                head = f"HTTP/1.1 {answer.status} {phrase}\r\n" + "".join(
                    f"{name}: {value}\r\n" for name, value in headers.items()
                )
                # latin-1, as http.server sends headers (a test puts UTF-8 bytes in one)
                head = (head + "\r\n").encode("latin-1")
                if not answer.drip:  # one write: no wait for the client's delayed ACK
                    self.wfile.write(head + body)
                    return
                self.drip(head, answer.drip if answer.drip_head else 0)
                self.drip(body, answer.drip)

            def drip(self, data: bytes, every: float) -> None:
                if not every:
                    self.wfile.write(data)
                    return
                for i in range(len(data)):
                    self.wfile.write(data[i : i + 1])
                    self.wfile.flush()
                    time.sleep(every)

            do_GET = do_POST = do_PUT = handle_one

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a client that timed out and left: expected here

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        # a short poll: close() (shutdown) returns within it, not after the default 0.5 s
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def crafted():
    """``crafted(respond)`` starts a :class:`CraftedServer`; all are closed after the test."""
    servers = []

    def start(respond) -> CraftedServer:
        servers.append(CraftedServer(respond))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
