"""Shared by run_paper.py and run_live.py: restart recovery, then the worker, in the foreground.

    python scripts/run_paper.py --config configs/paper.toml [--web 127.0.0.1:8000]

1. ``manage.py migrate`` (idempotent) and ``manage.py recover --config PATH``: accounts loaded
   from the config, each reconciled before trading resumes (orders refused with 503 until then);
2. then, in one process group: ``manage.py reconcile --loop`` (the ticker: one leader across
   hosts), ``manage.py qcluster`` (the workers) and, with ``--web``, the console.
Ctrl+C (SIGINT) or SIGTERM stops every child cleanly; if one child dies, the rest are stopped
and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
STOP_GRACE_SECONDS = 15


def python() -> str:
    """The venv's interpreter when Django is not importable from this one."""
    try:
        import django  # noqa: F401
    except ImportError:
        if VENV_PYTHON.exists():
            return str(VENV_PYTHON)
        sys.stderr.write(
            f"Django is not installed and {VENV_PYTHON} is missing: run `make install`\n"
        )
        raise SystemExit(2) from None
    return sys.executable


def main(default_config: str, argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=default_config, help="TOML configuration file")
    parser.add_argument("--web", metavar="HOST:PORT", help="also serve the console here")
    parser.add_argument("--no-migrate", action="store_true", help="skip manage.py migrate")
    args = parser.parse_args(argv)
    config = Path(args.config)
    if not config.is_absolute():
        config = (Path.cwd() / config) if (Path.cwd() / config).exists() else ROOT / config
    if not config.exists():
        sys.stderr.write(f"--config: {config} not found\n")
        return 2
    env = dict(os.environ, TRADINGSTATE_CONFIG=str(config), PYTHONUNBUFFERED="1")
    py = python()
    manage = [py, str(ROOT / "manage.py")]

    steps = (
        []
        if args.no_migrate
        else [[*manage, "migrate", "--noinput", "-v", "0"], [*manage, "createcachetable"]]
    )
    steps.append([*manage, "recover", "--config", str(config)])
    for step in steps:
        code = subprocess.call(step, env=env, cwd=ROOT)
        if code != 0:
            sys.stderr.write(f"{' '.join(step[1:3])} failed with exit status {code}\n")
            return code

    commands = [[*manage, "reconcile", "--loop"], [*manage, "qcluster"]]
    if args.web:
        commands.append([*manage, "runserver", "--noreload", args.web])
    children = [subprocess.Popen(cmd, env=env, cwd=ROOT) for cmd in commands]
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    status = 0
    while not stopping:
        for child in children:
            code = child.poll()
            if code is not None:
                sys.stderr.write(f"{' '.join(child.args[2:4])} exited with {code}; stopping\n")
                status = code or 1
                stopping = True
                break
        time.sleep(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for child in children:
        try:
            child.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return status
