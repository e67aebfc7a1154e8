"""Prune 1,000,000 old runs in bounded batches while reconciliation passes keep running.

    python bench/prune.py [--runs 1000000] [--batch-size 5000]

Given one account with 1,000,000 finished runs older than the retention (inserted in one
INSERT … SELECT), a thread runs passes of that account back to back, first alone (the
baseline), then during ``prune``. Lines:

    prune what=delete runs=… seconds=… batches=… slowest_batch_ms=… rows_per_s=…
    prune what=passes-during baseline_p50_ms=… p50_ms=… p95_ms=… max_ms=… passes=…
          completed=… skipped=… failed=… ratio=<max during / baseline p50>
    prune what=counters passes_total_before=… passes_total_after=… (equal: rollups)

A pass is never locked out for longer than one batch: ``max_ms`` stays near the baseline
plus ``slowest_batch_ms``, and every pass during the prune completes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, django_setup

COLUMNS = (
    "account_id, trigger, status, dry_run, requested_by, created_at, started_at, finished_at, "
    "duration_ms, orders_synced, positions_synced, balances_synced, discrepancies_found, "
    "order_discrepancies, position_discrepancies, balance_discrepancies, repairs_applied, "
    "repairs_deferred, fill_discrepancies, trades_synced, error"
)


def insert_old_runs(account_id: int, n: int) -> None:
    from django.db import connection

    values = (
        "%s, 'schedule', 'completed', false, 'system:ticker', {old}, {old}, {old}, 40, "
        "3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, ''"
    )
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            old = "now() - interval '400 days' + (i || ' seconds')::interval"
            cur.execute(
                f"INSERT INTO reconciliation_reconciliationrun ({COLUMNS}) "
                f"SELECT {values.format(old=old)} FROM generate_series(1, %s) AS i",
                [account_id, n],
            )
        else:
            old = "datetime('now', '-400 days', '+' || i || ' seconds')"
            cur.execute(
                f"INSERT INTO reconciliation_reconciliationrun ({COLUMNS}) "
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
                f"SELECT {values.format(old=old).replace('false', '0')} FROM s",
                [n, account_id],
            )


def passes(account, stop: threading.Event, out: list) -> None:
    from django.db import connection

    from reconciliation.services import run_reconciliation

    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            run = run_reconciliation(account)
            out.append(((time.perf_counter() - t0) * 1000, run.status))
    finally:
        connection.close()


def passes_total(client) -> float:
    text = client.get("/metrics").content.decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("tradingstate_reconciliation_passes_total{")
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=5000)
    args = parser.parse_args()
    with bench_database():
        django_setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        from reconciliation.retention import prune
        from tradingstate.models import ExchangeAccount

        settings.ALLOWED_HOSTS = ["*"]
        call_command("demo")
        account = ExchangeAccount.objects.get(name="paper-demo")
        t0 = time.perf_counter()
        insert_old_runs(account.pk, args.runs)
        print(f"# inserted {args.runs} old runs in {time.perf_counter() - t0:.1f}s", flush=True)
        client = Client(SERVER_NAME="127.0.0.1", secure=True)
        before = passes_total(client)

        stop = threading.Event()
        baseline: list = []
        worker = threading.Thread(target=passes, args=(account, stop, baseline))
        worker.start()
        time.sleep(5)
        stop.set()
        worker.join()

        stop = threading.Event()
        during: list = []
        worker = threading.Thread(target=passes, args=(account, stop, during))
        worker.start()
        retention = settings.TRADINGSTATE.retention.model_copy(
            update={"runs_days": 30, "batch_size": args.batch_size}
        )
        result = prune(retention=retention)
        stop.set()
        worker.join()
        after = passes_total(client)

        deleted = result.deleted.get("runs", 0)
        print(
            f"prune what=delete runs={deleted} seconds={result.seconds:.1f} "
            f"batches={result.batches} slowest_batch_ms={result.slowest_batch_ms:.0f} "
            f"rows_per_s={deleted / max(result.seconds, 1e-9):.0f}",
            flush=True,
        )
        base_p50 = statistics.median(ms for ms, _ in baseline)
        times = sorted(ms for ms, _ in during)
        statuses = [s for _, s in during]
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        print(
            f"prune what=passes-during baseline_p50_ms={base_p50:.0f} "
            f"p50_ms={statistics.median(times):.0f} p95_ms={p95:.0f} max_ms={times[-1]:.0f} "
            f"passes={len(times)} completed={statuses.count('completed')} "
            f"skipped={statuses.count('skipped')} failed={statuses.count('failed')} "
            f"ratio={times[-1] / base_p50:.1f}",
            flush=True,
        )
        print(
            f"prune what=counters passes_total_before={before:.0f} "
            f"passes_total_after={after:.0f} (after = before + passes run meanwhile "
            f"{len(baseline) + len(during)})",
            flush=True,
        )
        ok = deleted == args.runs and statuses.count("completed") == len(statuses)
        ok = ok and after == before + len(baseline) + len(during)
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
