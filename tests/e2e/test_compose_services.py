"""The exact commands of docker-compose.yml's services, run outside containers.

No image can be pulled here, so this test reads the compose file (and the Dockerfile's
collectstatic step) and runs each service's own `command` and `healthcheck` against a real
PostgreSQL and Redis, with only the container-network names replaced (postgres/redis hosts,
`python`/`gunicorn` by this venv's, 0.0.0.0:8000 by a free loopback port). Then it does what
`docker compose restart trading` does: stop the trading process, start the same command.
`docker-compose config` itself runs in CI (.ci/run).
"""

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VENV_BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("COMPOSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/5")

pytestmark = pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL (DATABASE_URL), as the compose file's services do",
)


def interpolate(value: str, env: dict) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME:?error} substitution."""

    def sub(m):
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":?":
            raise AssertionError(f"compose needs {name}: {arg}")
        return arg or ""

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", sub, value)


def for_host(argv: list[str], port: int) -> list[str]:
    """Container paths and addresses -> this machine's."""
    out = []
    for arg in argv:
        arg = arg.replace("0.0.0.0:8000", f"127.0.0.1:{port}")
        arg = arg.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        arg = re.sub(r"(?<![\w/.-])python(?= )", str(VENV_BIN / "python"), arg)
        arg = re.sub(r"(?<![\w/.-])gunicorn(?= )", str(VENV_BIN / "gunicorn"), arg)
        out.append({"python": str(VENV_BIN / "python"), "gunicorn": str(VENV_BIN / "gunicorn")}
                   .get(arg, arg))  # fmt: skip
    return out


def command(service: str, env: dict, port: int) -> list[str]:
    cmd = COMPOSE["services"][service]["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    return for_host([interpolate(a, env) for a in argv], port)


def healthcheck(service: str, env: dict, port: int) -> list[str]:
    test = COMPOSE["services"][service]["healthcheck"]["test"]
    kind, *rest = test
    argv = rest if kind == "CMD" else ["sh", "-c", rest[0]]
    return for_host([interpolate(a, env) for a in argv], port)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_up(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port or 6379), 2):
            return True
    except OSError:
        return False


@pytest.fixture
def compose_env(tmp_path):
    import psycopg

    if not redis_up(REDIS_URL):
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    base = os.environ["DATABASE_URL"]
    parts = urlsplit(base)
    name = f"{(parts.path.lstrip('/') or 'tradingstate')}_compose"
    admin = dict(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                 password=parts.password, dbname="postgres", autocommit=True)  # fmt: skip
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    app_env = COMPOSE["x-app"]["environment"]
    given = {"SECRET_KEY": "c" * 64, "PATH": os.environ["PATH"]}
    env = {k: interpolate(str(v), given) for k, v in app_env.items()}
    # the container network's host names -> this machine's servers
    assert "@postgres:5432/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith(
        "redis://redis:"
    )
    env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + name))
    env["REDIS_URL"] = REDIS_URL
    env.update(
        PATH=os.environ["PATH"],
        TRADINGSTATE_LOG_DIR=str(tmp_path / "logs"),  # the `logs` volume
        TRADINGSTATE_STATIC_ROOT=str(tmp_path / "static"),  # the image's /app/static
    )
    yield env
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dockerfile_collectstatic() -> str:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    run = next(line for line in text.splitlines() if "collectstatic" in line)
    return run.strip().removeprefix("RUN ").split("&&")[0].strip()


def start(argv, env, log: Path) -> subprocess.Popen:
    with log.open("a") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip


def stop(proc: subprocess.Popen) -> int:
    os.killpg(proc.pid, signal.SIGTERM)  # what `docker compose stop` sends the container
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def wait_for(check, seconds: float, what: str, log: Path):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"{what} not reached in {seconds}s\n{log.read_text()[-4000:]}")


def runs(env) -> list[tuple]:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as conn:
        return conn.execute(
            "SELECT trigger, status FROM reconciliation_reconciliationrun ORDER BY id"
        ).fetchall()


def test_compose_services_run_as_written(compose_env, tmp_path):
    env, port = compose_env, free_port()
    log = tmp_path / "services.log"
    # the image build's collectstatic, as the Dockerfile writes it
    build = subprocess.run(["sh", "-c", *for_host([dockerfile_collectstatic()], port)], cwd=ROOT,
                           env={**env, "SECRET_KEY": "build"}, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "static" / "staticfiles.json").exists()

    web = start(command("web", env, port), env, log)
    trading = None
    try:
        # web: migrations, then gunicorn; its healthcheck passes
        web_health = healthcheck("web", env, port)
        wait_for(lambda: subprocess.run(web_health, env=env, capture_output=True).returncode == 0,
                 180, "web healthy", log)  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=10) as r:
            css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', r.read().decode())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{css.group(1)}", timeout=10) as r:
            assert r.status == 200

        # trading (depends on web healthy): recovery, then the ticker and the cluster
        trading = start(command("trading", env, port), env, log)
        trading_health = healthcheck("trading", env, port)
        wait_for(lambda: ("startup", "completed") in runs(env), 120, "recovery pass", log)
        wait_for(lambda: subprocess.run(trading_health, cwd=ROOT, env=env,
                                        capture_output=True).returncode == 0,
                 120, "trading healthy", log)  # fmt: skip
        wait_for(lambda: ("schedule", "completed") in runs(env), 120, "a scheduled pass", log)

        # `docker compose restart trading`: stop, then the same command again
        assert stop(trading) == 0
        before = sum(1 for r in runs(env) if r == ("startup", "completed"))
        trading = start(command("trading", env, port), env, log)
        wait_for(lambda: sum(1 for r in runs(env) if r == ("startup", "completed")) > before,
                 120, "recovery after restart", log)  # fmt: skip
        # the console never went away
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health/", timeout=10) as r:
            assert r.status == 200
    finally:
        if trading is not None and trading.poll() is None:
            stop(trading)
        if web.poll() is None:
            stop(web)
    text = log.read_text()
    assert "Application started" in text and "ReconciliationLoop started" in text
