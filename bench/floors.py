"""Floors: the cost of steps a benchmarked path cannot skip, measured on this machine now.

The targets in RESULTS.md are absolute times on "this 2-core machine", whose speed moves
from run to run (a shared host). These lines put each run's figures in context:

    floor what=python-loop ms=…            3M-iteration loop: the machine's speed today
    floor what=db-roundtrip us=…           SELECT 1 through Django's cursor (median)
    floor what=orm-one-row us=…            one indexed one-row ORM read (median)
    floor what=runbook-log-lines lines=4400 ms=…
        the log lines a 10k pass with 10 % desync must write (DESIGN §4: one JSON line per
        discrepancy, one "Auto-repair applied" line per repair) through the product's own
        logging configuration

    python bench/floors.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, django_setup

DISCREPANCIES = 2200  # a 10,000-order pass with 10 % of each kind out of sync


def _median_us(fn, n: int = 2000) -> float:
    for _ in range(100):
        fn()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def python_loop_ms() -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(3_000_000):
            total += i * i
        best = min(best, time.perf_counter() - started)
    return best * 1000


def runbook_log_lines_ms() -> float:
    """Emit the lines of one 10k desync pass as the pass does (reconciliation/passes/log.py:
    held in a PassLog, then one write and one flush per handler)."""
    from reconciliation.passes.log import PassLog

    log = PassLog()
    context = {"account": "bench", "run_id": 1}
    details = [
        {
            "type": "position_mismatch",
            "symbol": f"S{i}/USDT",
            "local_qty": "0.05",
            "exchange_qty": "0.08",
            "key": f"S{i}/USDT",
        }
        for i in range(DISCREPANCIES)
    ]
    started = time.perf_counter()
    for detail in details:
        log.warning(json.dumps(detail), extra={"structured": {**detail, **context}})
    for detail in details:
        log.info(
            "Auto-repair applied: %s %s %s",
            detail["type"],
            detail["key"],
            "0.05 -> 0.08",
            extra={
                "structured": {**context, "repair": detail["type"], "key": detail["key"]},
                "with_message": True,
            },
        )
    log.flush()
    return (time.perf_counter() - started) * 1000


def main() -> int:
    print(f"floor what=python-loop ms={python_loop_ms():.0f}", flush=True)
    with bench_database():
        django_setup()
        from django.db import connection

        from killswitch.models import KillSwitch

        def roundtrip():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchone()

        def one_row():
            return list(KillSwitch.objects.filter(account__isnull=True))

        print(f"floor what=db-roundtrip us={_median_us(roundtrip):.0f}", flush=True)
        print(f"floor what=orm-one-row us={_median_us(one_row):.0f}", flush=True)
        runs = [runbook_log_lines_ms() for _ in range(5)]
        print(
            f"floor what=runbook-log-lines lines={2 * DISCREPANCIES} "
            f"ms={statistics.median(runs):.0f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
