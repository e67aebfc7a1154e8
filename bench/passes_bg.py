"""Reconciliation passes in the background, for ``api endpoint=register-under-passes``.

``passes_running(account)`` starts this script in its own process on the bench database
and waits until its world is built; while the ``with`` block runs, the process runs a pass
of ``account`` every 2 s (or back to back when a pass takes longer), each with 10,000
orders and 10 % of each kind out of sync, through an in-process venue; on exit it stops
and returns the passes' figures.

Each cycle re-creates the desync cheaply, so every pass has the same work: the venue gets
1,000 new open orders (missing locally) and drops last cycle's (whose local copies are then
closed by one UPDATE), 1,000 stale local orders are inserted (old, gone from the venue),
and 10 % of positions and balances flip on the venue. The bots' orders are young (the
account's stale grace is an hour), so the passes leave them alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

ORDERS = 10_000
DESYNC = 0.1
INTERVAL = 2.0


@contextlib.contextmanager
def passes_running(account: str):
    stats: dict = {}
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "passes_bg.py"), account],
        stdout=subprocess.PIPE,
        stdin=subprocess.PIPE,
        text=True,
        cwd=HERE.parent,
        env=os.environ.copy(),
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        for line in proc.stdout:
            if line.startswith("READY"):
                break
        else:
            raise SystemExit("passes_bg: the background passes did not start")
        yield stats
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if line.startswith("STATS "):
                stats.update(json.loads(line[6:]))
        proc.wait(120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)


def _world(account_name: str):
    from reconcile import IndexedMemoryExchange

    from tradingstate.models import Balance, ExchangeAccount, Order, Position

    account = ExchangeAccount.objects.get(name=account_name)
    n_missing = int(ORDERS * DESYNC)
    n_sync = ORDERS - n_missing
    n_pos = ORDERS // 10
    symbols = [f"S{i}/USDT:USDT" for i in range(n_pos)]
    venue = IndexedMemoryExchange(max_order_lookups_per_pass=None)
    one = Decimal(1)
    old = time.time()
    for i in range(n_sync):
        venue.add_order(
            symbol=symbols[i % n_pos],
            amount=one,
            exchange_order_id=f"E{i}",
            client_order_id=f"c{i}",
        )
    common = {"account": account, "side": "buy", "type": "limit", "quantity": one}
    common.update(price=Decimal(100), filled_qty=Decimal(0), remaining_qty=one, status="submitted")
    Order.objects.bulk_create(
        [
            Order(
                client_order_id=f"c{i}",
                exchange_order_id=f"E{i}",
                symbol=symbols[i % n_pos],
                **common,
            )
            for i in range(n_sync)
        ],
        batch_size=5000,
    )
    Position.objects.bulk_create([Position(account=account, symbol=s, qty=one) for s in symbols])
    Balance.objects.bulk_create(
        [
            Balance(account=account, currency=f"C{i}", free=Decimal(100), total=Decimal(100))
            for i in range(n_pos)
        ]
    )
    for s in symbols:
        venue.set_position(s, "1")
    for i in range(n_pos):
        venue.set_balance(f"C{i}", "100")
    del old
    return account, venue, symbols, common


def _desync(cycle: int, account, venue, symbols, common) -> None:
    from django.utils import timezone

    from tradingstate.exchanges import base as ex
    from tradingstate.models import Order

    n = int(ORDERS * DESYNC)
    one = Decimal(1)
    # last cycle's missing orders leave the venue; their local copies are closed
    for i in range(n):
        venue.orders.pop(f"M{cycle - 1}-{i}", None)
    Order.objects.filter(account=account, client_order_id__startswith=f"m{cycle - 1}-").update(
        status="cancelled", remaining_qty=0
    )
    for i in range(n):  # missing locally
        venue.add_order(
            symbol=symbols[i % len(symbols)],
            amount=one,
            exchange_order_id=f"M{cycle}-{i}",
            client_order_id=f"m{cycle}-{i}",
        )
    stale = [
        Order(
            client_order_id=f"s{cycle}-{j}",
            exchange_order_id=f"X{cycle}-{j}",
            symbol=symbols[j % len(symbols)],
            **common,
        )
        for j in range(n)
    ]
    Order.objects.bulk_create(stale, batch_size=5000)
    Order.objects.filter(account=account, client_order_id__startswith=f"s{cycle}-").update(
        updated_at=timezone.now() - timedelta(hours=2)
    )
    for j in range(n):  # gone from the venue: closed, canceled, or unknown
        if j % 3 == 2:
            continue
        venue.add_order(
            symbol=symbols[j % len(symbols)],
            amount=one,
            filled=one if j % 3 == 0 else Decimal(0),
            status=ex.CLOSED if j % 3 == 0 else ex.CANCELED,
            exchange_order_id=f"X{cycle}-{j}",
            client_order_id=f"s{cycle}-{j}",
        )
    venue._by_coid = {o.client_order_id: o for o in venue.orders.values()}
    k = int(len(symbols) * DESYNC)
    value = "2" if cycle % 2 == 0 else "1"
    for i in range(k):
        venue.set_position(symbols[i], value)
        venue.set_balance(f"C{i}", "200" if cycle % 2 == 0 else "100")


def _serve(account_name: str) -> None:
    import select

    from common import django_setup

    django_setup()
    from reconciliation.priority import worker_priority_apply
    from reconciliation.services import run_reconciliation

    account, venue, symbols, common = _world(account_name)
    nice = worker_priority_apply()  # as a worker process runs passes ([worker] nice)
    print("READY", flush=True)
    timings, found = [], []
    cycle = 0
    while True:
        started = time.monotonic()
        _desync(cycle, account, venue, symbols, common)
        t0 = time.perf_counter()
        run = run_reconciliation(account, "manual", adapter=venue)
        timings.append((time.perf_counter() - t0) * 1000)
        found.append(run.discrepancies_found)
        cycle += 1
        wait = max(0.0, INTERVAL - (time.monotonic() - started))
        ready, _, _ = select.select([sys.stdin], [], [], wait)
        if ready:
            break
    stats = {
        "passes": len(timings),
        "p50_ms": round(statistics.median(timings)),
        "max_ms": round(max(timings)),
        "discrepancies": round(statistics.median(found)),
        "statuses": run.status,
        "nice": nice,
    }
    print("STATS " + json.dumps(stats), flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1])
