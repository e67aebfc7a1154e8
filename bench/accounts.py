"""Many accounts on one host: N accounts, each with 50 open orders, 5 positions and 5
balances, reconciled every 15 s (``--interval``) through the real ccxt client (Binance
USD-M) against the fake exchange HTTP server, which answers every request after
``--latency`` (0.15 s). Each account has its own API key.

What runs is the product's own path, as deployed on one host: ``manage.py reconcile
--loop`` (the ticker: due accounts, run rows, batches of ``[worker] passes_per_worker``)
and ``manage.py qcluster`` with this host's ``[worker] workers`` (django-q2 on Redis,
``BENCH_REDIS_URL``, else its ORM broker); each worker runs its batch's passes at once
(``reconciliation.passes.batch``), each pass its venue calls at once (``passes.fetch``).
The bench only starts them, waits for the warm-up (every account's first pass done), then
measures ``--duration`` seconds (300) from the run rows the passes write. Lines::

    accounts n=N interval_s=15 duration_s=300 workers=W passes_per_worker=P passes=…
        passes_per_s=… cadence_p50_s=… cadence_p99_s=… cadence_max_s=… in_budget_pct=…
        behind=…
        failed=… skipped=… pass_p50_ms=… pass_p99_ms=… warmup_s=… first_pass_s=…
        cpu_pct=… ticker_cpu_pct=… rss_mb=… venue_cpu_pct=… host_cpu_pct=… load=… ratio=…

``cadence`` is the interval between one account's consecutive pass starts (p50/p99 over
every account); ``in_budget_pct`` the share within ``interval ± 2 s``; ``behind`` the
accounts that missed at least one slot in the window: more than ``interval + 2 s`` without
a pass starting, between two passes or at either end of the window. ``ratio`` is passes/s
over what the cadence needs (N / interval): 1.00 keeps up. ``cpu_pct`` is the ticker's
and the workers' CPU (100 = one core; ``ticker_cpu_pct`` the ticker's part), ``rss_mb``
their memory; ``venue_cpu_pct`` the fake venue's; ``host_cpu_pct`` every process on the
host (PostgreSQL, anything else running: 100 per core), ``load`` the load averages.
The accounts start with a fills watermark (as after an earlier pass) except
``FIRST_PASS_SAMPLE`` of them, whose first pass (the venue's whole trade history, 6 months
in 7-day windows per symbol: rate-limit bound) is reported as ``first_pass_s``.

    python bench/accounts.py --accounts 100 --accounts 500 --accounts 1000 [--duration 300]
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import ROOT, bench_database, django_setup  # noqa: E402

KEY_PREFIX = "bench-key-"
SECRET = "bench-secret"  # noqa: S105 (the fake venue checks only that a signature is sent)
FIRST_PASS_SAMPLE = 5
WARMUP_LIMIT_S = 240
SETTLE_LIMIT_S = 20  # at most, after the window, for the passes started in it to end
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
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


def make_accounts(n: int, url: str, interval: int) -> list[int]:
    from tests.fakes.exchange_server import FakeExchangeServer
    from tradingstate.models import Balance, ExchangeAccount, Order, Position

    server = FakeExchangeServer()
    server._httpd = type("H", (), {"server_address": tuple(url[7:].split(":"))})()
    urls = server.ccxt_urls("binance")
    prefix = f"acc{n}-"  # one set per size (accounts cannot be deleted: their rows protect them)
    accounts = []
    watermark = datetime.now(tz=UTC) - timedelta(minutes=1)
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
                reconciliation_interval_seconds=interval,
                # as after an earlier pass, except the first-pass sample
                fills_watermark_at=None if i < FIRST_PASS_SAMPLE else watermark,
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


# --- processes: CPU and memory from /proc -------------------------------------------------
def _stat(pid: int) -> tuple[int, str, float] | None:
    """(parent pid, command, CPU seconds) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _all() -> dict[int, tuple[int, str, float]]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            out[int(entry)] = st
    return out


def _tree(roots: list[int], procs) -> set[int]:
    pids, grew = set(roots), True
    while grew:
        more = {p for p, (ppid, _, _) in procs.items() if ppid in pids} - pids
        pids |= more
        grew = bool(more)
    return pids & set(procs)


def cpu_seconds(roots: list[int]) -> float:
    """CPU seconds of these processes and their descendants."""
    procs = _all()
    return sum(procs[p][2] for p in _tree(roots, procs))


def host_cpu_seconds() -> float:
    """Busy CPU seconds of the whole host, every core (/proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def rss_mb(roots: list[int]) -> float:
    total = 0
    for pid in _tree(roots, _all()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _loadavg() -> str:
    return "/".join(Path("/proc/loadavg").read_text().split()[:3])


# --- the run ---------------------------------------------------------------------------------
def _redis_url() -> str | None:
    if os.environ.get("BENCH_BROKER", "redis") != "redis":
        return None
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
        client.flushdb()  # this bench's queue only (a Redis database of its own)
        return REDIS_URL
    except Exception:
        return None


def start_product(redis_url: str | None) -> list[subprocess.Popen]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    manage = [sys.executable, str(ROOT / "manage.py")]
    out = subprocess.DEVNULL
    return [
        subprocess.Popen([*manage, "qcluster"], env=env, stdout=out, stderr=out, cwd=ROOT),
        subprocess.Popen(
            [*manage, "reconcile", "--loop"], env=env, stdout=out, stderr=out, cwd=ROOT
        ),
    ]


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


def _missed_slot(starts: list[datetime], start: datetime, end: datetime, budget: float) -> bool:
    """Whether an account went longer than ``budget`` seconds without a pass starting within
    the window: between two of its passes, or from the window's start to its first, or from
    its last to the window's end (a count of passes against ``duration / interval`` would
    call an account on a 15.1 s cadence behind for the phase of its first pass)."""
    if not starts:
        return True
    edges = [start, *starts, end]
    return any((b - a).total_seconds() > budget for a, b in itertools.pairwise(edges))


def run(n: int, interval: int, duration: float, latency: float) -> str:
    from django.conf import settings
    from django.db import connection

    from reconciliation.models import ReconciliationRun
    from tradingstate.models import ExchangeAccount

    worker = settings.TRADINGSTATE.worker
    server, url = start_server(latency)
    procs: list[subprocess.Popen] = []
    ids: list[int] = []
    try:
        ids = make_accounts(n, url, interval)
        connection.close()
        runs = ReconciliationRun.objects.filter(account_id__in=ids)
        done = [ReconciliationRun.Status.COMPLETED, ReconciliationRun.Status.INCOMPLETE]
        procs = start_product(_redis_url())
        t0 = time.monotonic()
        while time.monotonic() - t0 < WARMUP_LIMIT_S:  # every account's first pass
            time.sleep(2)
            ready = runs.filter(status__in=done).values("account_id").distinct().count()
            if ready >= n:
                break
        warmup = time.monotonic() - t0
        time.sleep(interval)  # the spread of the slots after the startup passes settles
        workers, ticker = procs[0].pid, procs[1].pid
        cpu0 = [cpu_seconds([workers]), cpu_seconds([ticker]), cpu_seconds([server.pid])]
        host0 = host_cpu_seconds()
        start = datetime.now(tz=UTC)
        m0 = time.monotonic()
        time.sleep(duration)
        elapsed = time.monotonic() - m0
        cpu1 = [cpu_seconds([workers]), cpu_seconds([ticker]), cpu_seconds([server.pid])]
        host1 = host_cpu_seconds()
        rss = rss_mb([workers, ticker])
        load = _loadavg()
        end = start + timedelta(seconds=elapsed)
        # a pass writes its run row (its start time included) when it ends: the passes that
        # started within the window are let finish before the rows are read, else the ones
        # still running at its end would count as missed slots (``behind``)
        settle = time.monotonic() + SETTLE_LIMIT_S
        while (
            time.monotonic() < settle
            and runs.filter(status=ReconciliationRun.Status.QUEUED, created_at__lt=end).exists()
        ):
            time.sleep(0.5)
        rows = list(
            runs.filter(started_at__gte=start, started_at__lt=end)
            .values_list("account_id", "status", "started_at", "finished_at")
            .order_by("account_id", "started_at")
        )
        first = [
            (f - s).total_seconds()
            for s, f in runs.filter(
                account_id__in=ids[:FIRST_PASS_SAMPLE], trigger="startup"
            ).values_list("started_at", "finished_at")
            if s and f
        ]
    finally:
        stop(procs)
        ExchangeAccount.objects.filter(pk__in=ids).update(enabled=False)  # the next size's turn
        server.stdin.close()
        server.terminate()
        server.wait(10)
    ran = [r for r in rows if r[1] in done]
    starts: dict[int, list[datetime]] = {}
    for account_id, _, started, _ in ran:
        starts.setdefault(account_id, []).append(started)
    intervals = sorted(
        (b - a).total_seconds() for s in starts.values() for a, b in itertools.pairwise(s)
    )
    durations = sorted((f - s).total_seconds() for _, _, s, f in ran if f)
    behind = sum(1 for i in ids if _missed_slot(starts.get(i, []), start, end, interval + 2))
    in_budget = sum(1 for x in intervals if abs(x - interval) <= 2)
    failed = sum(1 for r in rows if r[1] == ReconciliationRun.Status.FAILED)
    skipped = sum(1 for r in rows if r[1] == ReconciliationRun.Status.SKIPPED)
    passes_per_s = len(ran) / elapsed
    return (
        f"accounts n={n} interval_s={interval} duration_s={elapsed:.0f} "
        f"workers={worker.workers} passes_per_worker={worker.passes_per_worker} "
        f"passes={len(ran)} passes_per_s={passes_per_s:.1f} "
        f"cadence_p50_s={pct(intervals, 0.5):.2f} cadence_p99_s={pct(intervals, 0.99):.2f} "
        f"cadence_max_s={max(intervals, default=float('nan')):.2f} "
        f"in_budget_pct={100 * in_budget / max(len(intervals), 1):.1f} behind={behind} "
        f"failed={failed} skipped={skipped} "
        f"pass_p50_ms={pct(durations, 0.5) * 1000:.0f} "
        f"pass_p99_ms={pct(durations, 0.99) * 1000:.0f} "
        f"warmup_s={warmup:.0f} first_pass_s={max(first, default=float('nan')):.1f} "
        f"cpu_pct={(cpu1[0] + cpu1[1] - cpu0[0] - cpu0[1]) / elapsed * 100:.0f} "
        f"ticker_cpu_pct={(cpu1[1] - cpu0[1]) / elapsed * 100:.0f} rss_mb={rss:.0f} "
        f"venue_cpu_pct={(cpu1[2] - cpu0[2]) / elapsed * 100:.0f} "
        f"host_cpu_pct={(host1 - host0) / elapsed * 100:.0f} load={load} "
        f"ratio={passes_per_s / (n / interval):.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--duration", type=float, default=300.0)
    parser.add_argument("--interval", type=int, default=15)
    parser.add_argument("--latency", type=float, default=0.15)
    args = parser.parse_args(argv)
    with bench_database():
        django_setup()
        for n in args.accounts or [100, 500, 1000]:
            print(run(n, args.interval, args.duration, args.latency), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
