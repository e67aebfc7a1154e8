"""``make bench``: run every bench script, print their lines, append them to RESULTS.md.

Each script runs in its own process on its own throw-away database (see common.py), so the
scripts also run alone: ``python bench/reconcile.py``, ``python bench/api.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import is_postgres, machine_line  # noqa: E402

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
# (label, script, args, extra environment)
SCRIPTS = [
    (
        "floors: this machine's speed now, and steps no pass or request can skip",
        "floors.py",
        [],
        {},
    ),
    ("reconciliation pass", "reconcile.py", [], {}),
    ("retention: prune 1,000,000 runs while passes run", "prune.py", [], {}),
    ("P&L and exposure reads (statements: target <= 5 each)", "pnl.py", [], {}),
    ("API, throttle counts in the database: the zero-setup default", "api.py", [], {}),
    (
        "API, the production image's layout (gunicorn --workers 4, Dockerfile)",
        "api.py",
        ["--workers", "4", "--no-passes"],
        {},
    ),
    (
        "many accounts per host (bench/accounts.py; --duration from BENCH_ACCOUNTS_DURATION)",
        "accounts.py",
        ["--duration", os.environ.get("BENCH_ACCOUNTS_DURATION", "300")],
        {},
    ),
]


def _redis_up(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


RESULTS = HERE / "RESULTS.md"
TIMEOUT = 15 * 60


def _uptime() -> str:
    """The host's load averages (other processes share the cores: say so beside the
    figures)."""
    try:
        return "load average " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "load average unknown"


def main() -> int:
    started = dt.datetime.now(dt.UTC)
    lines: list[str] = []
    failed: list[str] = []
    scripts = list(SCRIPTS)
    if not os.environ.get("REDIS_URL") and _redis_up(REDIS_URL):
        label = "API, throttle counts in Redis: the production setup"
        scripts.append((label, "api.py", ["--no-passes"], {"REDIS_URL": REDIS_URL}))
    for label, script, args, env in scripts:
        print(f"# {label}", flush=True)
        lines.append(f"# {label} ({_uptime()} at start)")
        proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE.parent,
            env={**os.environ, **env},
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            print(line, flush=True)
            if line.startswith(("floor ", "reconcile ", "api ", "prune ", "pnl ", "accounts ")):
                lines.append(line)
        if proc.wait(TIMEOUT) != 0:
            failed.append(f"{script} exited {proc.returncode}")
    minutes = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
    lines.append(f"load: {_uptime()}")
    engine = "PostgreSQL" if is_postgres(os.environ.get("DATABASE_URL", "")) else "SQLite"
    block = [
        "",
        f"## {started:%Y-%m-%d %H:%M} UTC ({engine})",
        "",
        f"machine: {machine_line()}",
        "",
        "```",
        *lines,
        *(f"FAILED: {f}" for f in failed),
        "```",
        f"({minutes:.1f} min)",
        "",
    ]
    if not RESULTS.exists():
        RESULTS.write_text("# Bench results\n\nAppended by `make bench` (bench/run_all.py).\n")
    with RESULTS.open("a") as f:
        f.write("\n".join(block))
    print(f"appended to {RESULTS.relative_to(HERE.parent)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
