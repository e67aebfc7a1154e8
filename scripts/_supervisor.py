"""Shared by run_paper.py and run_live.py: the runbook's restart, in the foreground.

    python scripts/run_paper.py --config configs/paper.toml [--web HOST:PORT | --no-web]

1. ``manage.py migrate`` (idempotent), ``createcachetable``, ``collectstatic`` (with the web
   server) and ``manage.py recover --config PATH``: accounts loaded from the config, each
   reconciled before trading resumes (orders refused with 503 until then);
2. then, under this one supervisor: ``manage.py reconcile --loop`` (the ticker: one leader
   across hosts), ``manage.py qcluster`` (the workers) and, unless ``--no-web``, the console
   and API under gunicorn on ``--web`` (default 127.0.0.1:8000).
SIGINT (Ctrl+C) or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period);
if one child dies, the rest are stopped and the exit status is non-zero. Each long-running
child leads its own process group, so the SIGKILL takes its own children with it (the
qcluster's worker processes, gunicorn's workers): a stop leaves no orphan behind.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tradingstate.venv import ensure_project_python  # noqa: E402

STOP_GRACE_SECONDS = 15
DEFAULT_WEB = "127.0.0.1:8000"
GUNICORN_REQUEST_LINE = 8190  # gunicorn's maximum
LOOPBACK = ("127.0.0.1", "localhost", "::1")
TLS_OFF_PUBLIC = (
    '--web {bind}: [web] tls = "off" (plain HTTP) is for loopback only; bind 127.0.0.1 or '
    'set [web] tls = "direct" or "proxy" (README "Security model")\n'
)


def web_bind_refused(config: Path, bind: str) -> str:
    """Why ``bind`` may not serve with this config's TLS mode ("" when it may)."""
    from tradingstate.config import ConfigError, load_config

    try:
        mode = load_config(config).web.tls
    except ConfigError:
        return ""  # manage.py reports the configuration error itself
    host = bind.rsplit(":", 1)[0].strip("[]") if ":" in bind else bind
    if mode == "off" and host not in LOOPBACK and not host.startswith("127."):
        return TLS_OFF_PUBLIC.format(bind=bind)
    return ""


def parse(default_config: str, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=default_config, help="TOML configuration file")
    web = parser.add_mutually_exclusive_group()
    web.add_argument("--web", metavar="HOST:PORT", default=DEFAULT_WEB,
                     help=f"serve the console and API here (default {DEFAULT_WEB})")  # fmt: skip
    web.add_argument("--no-web", action="store_true", help="worker-only host: no web server")
    parser.add_argument("--web-workers", type=int, default=2, metavar="N",
                        help="gunicorn worker processes (default 2)")  # fmt: skip
    parser.add_argument("--no-migrate", action="store_true", help="skip manage.py migrate")
    return parser.parse_args(argv)


def commands(py: str, config: Path, args: argparse.Namespace) -> tuple[list, list]:
    """(the steps run one after the other, the long-running children)."""
    manage = [py, str(ROOT / "manage.py")]
    steps = []
    if not args.no_migrate:
        steps += [[*manage, "migrate", "--noinput", "-v", "0"], [*manage, "createcachetable"]]
    if not args.no_web:
        steps.append([*manage, "collectstatic", "--noinput", "-v", "0"])
    steps.append([*manage, "recover", "--config", str(config)])
    children = [[*manage, "reconcile", "--loop"], [*manage, "qcluster"]]
    if not args.no_web:
        children.append(
            [py, "-m", "gunicorn", "tradingstate.wsgi", "--bind", args.web,
             "--workers", str(args.web_workers), "--access-logfile", "-",
             # above [web] max_url_bytes, so the app answers long URLs (414 JSON)
             "--limit-request-line", str(GUNICORN_REQUEST_LINE)]
        )  # fmt: skip
    return steps, children


def main(default_config: str, argv: list[str]) -> int:
    ensure_project_python(sys.argv[0], argv)
    args = parse(default_config, argv)
    config = Path(args.config)
    if not config.is_absolute():
        config = (Path.cwd() / config) if (Path.cwd() / config).exists() else ROOT / config
    if not config.exists():
        sys.stderr.write(f"--config: {config} not found\n")
        return 2
    refused = "" if args.no_web else web_bind_refused(config, args.web)
    if refused:
        sys.stderr.write(refused)
        return 2
    env = dict(os.environ, TRADINGSTATE_CONFIG=str(config), PYTHONUNBUFFERED="1")
    steps, long_running = commands(sys.executable, config, args)

    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for step in steps:
        code = subprocess.call(step, env=env, cwd=ROOT)
        if code != 0:
            sys.stderr.write(f"{' '.join(step[2:4])} failed with exit status {code}\n")
            return code
        if stopping:
            return 1
    children = start(long_running, env)
    status = 0
    while not stopping:
        for child in children:
            code = child.poll()
            if code is not None:
                sys.stderr.write(f"{_name(child)} exited with {code}; stopping\n")
                status = code or 1
                stopping = True
                break
        time.sleep(0.5)
    stop_all(children)
    return status


def start(commands_: list[list[str]], env: dict) -> list[subprocess.Popen]:
    """Each child in a process group of its own (``start_new_session``)."""
    return [subprocess.Popen(cmd, env=env, cwd=ROOT, start_new_session=True) for cmd in commands_]


def stop_all(children: list[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """SIGTERM to each child; past ``grace`` seconds, SIGKILL to its whole process group."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(0.1, deadline - time.monotonic()))
        # the group: what the child started dies with it, even once the child has exited
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def _name(child: subprocess.Popen) -> str:
    args = [str(a) for a in child.args]
    return "gunicorn" if "gunicorn" in args else " ".join(args[2:4])
