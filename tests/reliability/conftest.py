"""The reliability suite (``make reliability``): every test here is marked ``reliability``,
bounded in time, seeded (the seed is printed; ``RELIABILITY_SEED=<n>`` replays it) and
reports one figure line: operations done, repairs, lost, duplicates.

Subprocesses (workers, qcluster, tickers) reach the test database through ``worker_env()``.
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import signal
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEFAULT_BOUND_SECONDS = 120
FIGURES: list[str] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "bound(seconds): hard time limit of one reliability test")
    config.addinivalue_line("markers", "last: runs after every other reliability test")


def pytest_collection_modifyitems(config, items):
    mine = [item for item in items if HERE in Path(str(item.fspath)).parents]
    for item in mine:
        item.add_marker(pytest.mark.reliability)
    # tests marked `last` (the PostgreSQL restart) run at the very end
    items.sort(key=lambda item: item in mine and item.get_closest_marker("last") is not None)


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("reliability figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


class _Overrun(Exception):
    pass


@pytest.fixture(autouse=True)
def bounded(request):
    """A soft limit (SIGALRM raises in the test) and a hard one 30 s later (traceback, exit)."""
    marker = request.node.get_closest_marker("bound")
    seconds = int(marker.args[0]) if marker else DEFAULT_BOUND_SECONDS

    def overrun(*_):
        raise _Overrun(f"{request.node.nodeid} ran past its {seconds} s bound")

    previous = signal.signal(signal.SIGALRM, overrun)
    signal.alarm(seconds)
    faulthandler.dump_traceback_later(seconds + 30, exit=True)
    try:
        yield seconds
    finally:
        signal.alarm(0)
        faulthandler.cancel_dump_traceback_later()
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def seed(request):
    value = int(os.environ.get("RELIABILITY_SEED") or random.SystemRandom().randrange(2**32))
    random.seed(value)
    line = f"SEED {request.node.nodeid} RELIABILITY_SEED={value}"
    print(line)
    sys.stderr.write(line + "\n")
    request.node.user_properties.append(("seed", value))
    return value


@pytest.fixture
def figure(request, seed):
    """``figure(ops=..., repairs=..., lost=0, duplicates=0, **more)``: print and keep it."""

    def report(**values) -> dict:
        values = {"test": request.node.name, "seed": seed, **values}
        line = "FIGURE " + json.dumps(values, default=str)
        print(line)
        FIGURES.append(line)
        return values

    return report


def test_database_url() -> str:
    """A DATABASE_URL for the database this test runs on (``test_<name>``)."""
    s = connection.settings_dict
    if connection.vendor != "postgresql":
        raise RuntimeError("subprocess workers need PostgreSQL")
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


test_database_url.__test__ = False  # not a test


def worker_env(**extra) -> dict:
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SETTINGS_MODULE": "tradingstate.settings",
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("REDIS_URL", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def python() -> str:
    return str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
