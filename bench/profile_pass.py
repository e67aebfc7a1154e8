"""The CPU of one steady-state pass of a ``bench/accounts.py`` account, by package.

20 accounts on the fake venue (no latency), a first pass each (clients, markets, the
watermark), then 45 steady-state passes one at a time under cProfile; prints the CPU per
pass without the profiler (``time.process_time``) and the profiler's time per pass summed
by package (sleeps and lock waits left out). ``python bench/profile_pass.py``
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import accounts as bench  # noqa: E402
from common import bench_database, django_setup  # noqa: E402

WAITS = ("time.sleep", "'acquire'", "'recv_into'", "'poll'")
PACKAGES = ("ccxt", "django", "psycopg", "requests", "urllib3", "socket", "http", "json")
PACKAGES += ("reconciliation", "tradingstate")


def main() -> int:
    with bench_database():
        django_setup()
        from reconciliation.passes import run_reconciliation

        server, url = bench.start_server(0.0)
        try:
            ids = bench.make_accounts(20, url, 15)[bench.FIRST_PASS_SAMPLE :]
            for account_id in ids:
                run_reconciliation(account_id, "schedule")
            started = time.process_time()
            for account_id in ids:
                run_reconciliation(account_id, "schedule")
            plain = (time.process_time() - started) / len(ids) * 1000
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(3):
                for account_id in ids:
                    run_reconciliation(account_id, "schedule")
            profile.disable()
        finally:
            server.stdin.close()
            server.terminate()
            server.wait(10)
    n = 3 * len(ids)
    by: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, tottime, _ct, _callers) in pstats.Stats(
        profile
    ).stats.items():
        if any(w in name for w in WAITS):
            continue
        key = next((p for p in PACKAGES if f"/{p}/" in path or path.endswith(f"/{p}.py")), "rest")
        by[key] = by.get(key, 0.0) + tottime
    total = sum(by.values())
    print(f"profile cpu_ms_per_pass={plain:.1f} (without the profiler)")
    for key, seconds in sorted(by.items(), key=lambda kv: -kv[1]):
        print(f"profile {key}={100 * seconds / total:.0f}% ({seconds / n * 1000:.1f} ms profiled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
