"""``make bench``: run every bench script, print their lines, append them to RESULTS.md.

Each script runs in its own process on its own throw-away database (see common.py), so the
scripts also run alone: ``python bench/reconcile.py``, ``python bench/api.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import is_postgres, machine_line  # noqa: E402

SCRIPTS = [
    ("reconcile.py", []),
    ("api.py", []),
]
RESULTS = HERE / "RESULTS.md"
TIMEOUT = 15 * 60


def main() -> int:
    started = dt.datetime.now(dt.UTC)
    lines: list[str] = []
    failed: list[str] = []
    for script, args in SCRIPTS:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / script), *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=HERE.parent,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            print(line, flush=True)
            if line.startswith(("reconcile ", "api ")):
                lines.append(line)
        if proc.wait(TIMEOUT) != 0:
            failed.append(f"{script} exited {proc.returncode}")
    minutes = (dt.datetime.now(dt.UTC) - started).total_seconds() / 60
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
