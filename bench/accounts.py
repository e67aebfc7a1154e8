"""Many accounts on one host: N accounts, each with 50 open orders, 5 positions and 5
balances, reconciled every ``--interval`` seconds (15) for ``--duration`` seconds (300)
through the real ccxt client (Binance USDⓈ-M) against the fake exchange HTTP server, which
answers every request after ``--latency`` (0.15 s). Each account has its own API key.

The worker layout is this host's default (``[worker] workers``) times
``[worker] passes_per_worker`` passes at once (one process here, one thread per pass, each
with its own database connection); requests to one venue with one key are spaced by the
venue's ccxt ``rateLimit`` across every concurrent pass (``tradingstate.exchanges.pool``).
A scheduler starts each account's pass when it is due (accounts spread evenly over the
interval); a pass still running when its next one is due makes that one late. Lines::

    accounts n=N interval_s=15 duration_s=300 concurrency=C passes=P passes_per_s=…
        cadence_p50_s=… cadence_p99_s=… late=… failed=… pass_p50_ms=… pass_p99_ms=…
        cpu_pct=… rss_mb=… ratio=…

``ratio`` is passes/s over the passes/s the cadence needs (N / interval): 1.00 keeps up.
``cpu_pct`` is this process's CPU (the passes; the fake venue runs in its own process,
PostgreSQL in its own) as a share of one core.

    python bench/accounts.py --accounts 100 --accounts 500 --accounts 1000 [--duration 300]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, bench_database, django_setup  # noqa: E402

KEY_PREFIX = "bench-key-"
SECRET = "bench-secret"  # noqa: S105 (the fake venue checks only that a signature is sent)
SERVER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from tests.fakes.exchange_server import (
    FakeExchangeServer, FakeBalance, FakeMarket, FakeOrder, FakePosition)
s = FakeExchangeServer()
s.latency = float(sys.argv[2]); s.api_key_prefix = sys.argv[3]; s.keep_requests = False
st = s.binance
for base in ("SOL", "XRP", "DOGE"):
    st.markets.append(FakeMarket(base, "USDT", "linear", amount_step="0.01", price_step="0.01"))
bases = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
for i in range(50):
    st.orders.append(FakeOrder(order_id=str(10000 + i), symbol=bases[i % 5] + "USDT", side="buy",
                               amount="1", price="10", client_order_id=f"b{i}"))
for b in bases:
    st.positions.append(FakePosition(symbol=b + "USDT", qty="1", entry_price="10"))
for c in ("USDT", "BNB", "BTC", "ETH", "USDC"):
    st.futures_balances.append(FakeBalance(currency=c, free="100"))
s.start()
print(s.url, flush=True)
sys.stdin.read()
"""


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(ROOT), str(latency), KEY_PREFIX],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def make_accounts(n: int, url: str) -> list[int]:
    from tests.fakes.exchange_server import FakeExchangeServer
    from tradingstate.models import Balance, ExchangeAccount, Order, Position

    server = FakeExchangeServer()
    server._httpd = type("H", (), {"server_address": tuple(url[7:].split(":"))})()
    urls = server.ccxt_urls("binance")
    prefix = f"acc{n}-"  # one set per size (accounts cannot be deleted: their rows protect them)
    accounts = []
    for i in range(n):
        os.environ[f"TS_BENCH_KEY_{n}_{i}"] = f"{KEY_PREFIX}{n}-{i}"
        accounts.append(
            ExchangeAccount(
                name=f"{prefix}{i}",
                exchange="binance",
                market_type="swap",
                api_key_env=f"TS_BENCH_KEY_{n}_{i}",
                secret_env="TS_BENCH_SECRET",  # noqa: S106 (a variable's name)
                ccxt_options={"urls": urls, "timeout": 10000},
                reconciliation_interval_seconds=15,
            )
        )
    os.environ["TS_BENCH_SECRET"] = SECRET
    ExchangeAccount.objects.bulk_create(accounts, batch_size=1000)
    accounts = list(ExchangeAccount.objects.filter(name__startswith=prefix).order_by("id"))
    bases = ["BTC", "ETH", "SOL", "XRP", "DOGE"]
    one = Decimal(1)
    orders, positions, balances = [], [], []
    for a in accounts:
        for i in range(50):
            orders.append(
                Order(
                    account=a,
                    client_order_id=f"b{i}",
                    exchange_order_id=str(10000 + i),
                    symbol=f"{bases[i % 5]}/USDT:USDT",
                    side="buy",
                    quantity=one,
                    price=Decimal(10),
                    remaining_qty=one,
                    status="submitted",
                )
            )
        positions += [
            Position(account=a, symbol=f"{b}/USDT:USDT", qty=one, entry_price=Decimal(10))
            for b in bases
        ]
        balances += [
            Balance(account=a, currency=c, free=Decimal(100), total=Decimal(100))
            for c in ("USDT", "BNB", "BTC", "ETH", "USDC")
        ]
    Order.objects.bulk_create(orders, batch_size=5000)
    Position.objects.bulk_create(positions, batch_size=5000)
    Balance.objects.bulk_create(balances, batch_size=5000)
    return [a.pk for a in accounts]


def run(n: int, interval: float, duration: float, concurrency: int, latency: float) -> str:
    from django.db import connection, connections

    from reconciliation.passes import run_reconciliation

    proc, url = start_server(latency)
    try:
        ids = make_accounts(n, url)
        connection.close()
        starts: dict[int, list[float]] = {i: [] for i in ids}
        durations: list[float] = []
        running: set[int] = set()
        late = failed = 0
        lock = threading.Lock()

        def one(account_id: int) -> None:
            nonlocal failed
            t0 = time.monotonic()
            try:
                result = run_reconciliation(account_id, "schedule")
                if result.status not in ("completed",):
                    with lock:
                        failed += 1
            except Exception:
                with lock:
                    failed += 1
            finally:
                with lock:
                    durations.append(time.monotonic() - t0)
                    running.discard(account_id)

        def closing(account_id: int) -> None:
            one(account_id)

        cpu0 = os.times()
        t_start = time.monotonic()
        due = [(t_start + interval * k / n, account_id) for k, account_id in enumerate(ids)]
        heapq.heapify(due)
        end = t_start + duration
        with ThreadPoolExecutor(concurrency, initializer=lambda: None) as pool:
            while due:
                at, account_id = heapq.heappop(due)
                if at >= end:
                    break
                wait = at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                with lock:
                    busy = account_id in running
                    if not busy:
                        running.add(account_id)
                if busy:
                    late += 1
                else:
                    starts[account_id].append(time.monotonic())
                    pool.submit(closing, account_id)
                heapq.heappush(due, (at + interval, account_id))
            # the passes still queued when the time is up are not run (nor counted)
            pool.shutdown(wait=True, cancel_futures=True)
        elapsed = time.monotonic() - t_start
        cpu1 = os.times()
        connections.close_all()
    finally:
        proc.stdin.close()
        proc.terminate()
        proc.wait(10)
    intervals = sorted(b - a for s in starts.values() for a, b in itertools.pairwise(s))
    passes = len(durations)
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def pct(xs, q):
        return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")

    durations.sort()
    need = n / interval
    return (
        f"accounts n={n} interval_s={interval:g} duration_s={duration:g} "
        f"concurrency={concurrency} passes={passes} passes_per_s={passes / elapsed:.1f} "
        f"cadence_p50_s={pct(intervals, 0.5):.2f} cadence_p99_s={pct(intervals, 0.99):.2f} "
        f"late={late} failed={failed} pass_p50_ms={statistics.median(durations) * 1000:.0f} "
        f"pass_p99_ms={pct(durations, 0.99) * 1000:.0f} cpu_pct={cpu / elapsed * 100:.0f} "
        f"rss_mb={rss:.0f} ratio={passes / elapsed / need:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--latency", type=float, default=0.15)
    parser.add_argument("--concurrency", type=int, help="passes at once (default: config)")
    args = parser.parse_args(argv)
    with bench_database():
        django_setup()
        from django.conf import settings

        worker = settings.TRADINGSTATE.worker
        concurrency = args.concurrency or worker.workers * worker.passes_per_worker
        for n in args.accounts or [100, 500, 1000]:
            print(run(n, args.interval, args.duration, concurrency, args.latency), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
