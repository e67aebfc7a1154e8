"""Reconciliation pass benchmark: one account, N open orders, N/10 positions and balances.

Through an in-process exchange (no HTTP), on the configured database engine (a dedicated
bench database; see ``bench/common.py``). With ``--desync 0.1``, 10% of each kind is out of
sync: orders open on the venue missing locally, stale local orders (active locally, gone
from the venue; its single-order query says closed, canceled or not found), position and
balance mismatches. Every pass is verified: discrepancies as built, repairs == discrepancies,
audit rows == repairs. One line per case::

    reconcile orders=N positions=P balances=B desync=0.1 discrepancies=D repairs=R queries=Q ms=M
        target_ms=T ratio=M/T

``ms`` is the median of ``--passes`` passes, each on freshly built state; ``queries`` the SQL
statements of one pass (a warm-up pass under CaptureQueriesContext, not timed).

    python bench/reconcile.py                      # 1,000 / 10,000 / 100,000, desync 0.1 and 0
    python bench/reconcile.py --orders 10000 --desync 0.1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, django_setup

SIZES = (1_000, 10_000, 100_000)
DESYNCS = (0.1, 0.0)
AGE = timedelta(hours=1)  # well past stale_order_grace_seconds


@dataclass
class Case:
    orders: int
    desync: float

    @property
    def positions(self) -> int:
        return max(1, self.orders // 10)

    @property
    def balances(self) -> int:
        return max(1, self.orders // 10)

    def out(self, n: int) -> int:
        return int(n * self.desync)

    @property
    def expected(self) -> int:
        # missing + stale orders (10% of N each), position and balance mismatches
        return 2 * self.out(self.orders) + self.out(self.positions) + self.out(self.balances)


def _indexed_memory_exchange():
    from tests.fakes.memory import MemoryExchange
    from tradingstate.exchanges import base as ex

    class IndexedMemoryExchange(MemoryExchange):
        def fetch_order(self, client_order_id, exchange_order_id, symbol):
            self._call("fetch_order")
            order = self._by_coid.get(client_order_id) or self.orders.get(exchange_order_id)
            if order is None:
                raise ex.OrderNotFound(f"order {client_order_id or exchange_order_id} not found")
            return order

    return IndexedMemoryExchange


def IndexedMemoryExchange(**kwargs):
    return _indexed_memory_exchange()(**kwargs)


def build_venue(case: Case):
    """The exchange's truth. Single-order lookups are indexed (the stock MemoryExchange
    scans every order per lookup, which would make the fake, not the pass, the cost)."""
    from tradingstate.exchanges import base as ex

    venue = IndexedMemoryExchange(max_order_lookups_per_pass=None)
    old = _now() - AGE
    one = Decimal(1)
    symbols = _symbols(case)
    for i in range(case.orders):
        venue.add_order(
            symbol=symbols[i % len(symbols)],
            amount=one,
            exchange_order_id=f"E{i}",
            client_order_id=f"c{i}",
            timestamp=old,
        )
    for j in range(case.out(case.orders)):  # stale locals: closed, canceled, or unknown
        if j % 3 == 2:
            continue
        venue.add_order(
            symbol=symbols[j % len(symbols)],
            amount=one,
            filled=one if j % 3 == 0 else Decimal(0),
            status=ex.CLOSED if j % 3 == 0 else ex.CANCELED,
            exchange_order_id=f"X{j}",
            client_order_id=f"s{j}",
            timestamp=old,
        )
    venue._by_coid = {o.client_order_id: o for o in venue.orders.values()}
    for i, symbol in enumerate(symbols):
        venue.set_position(symbol, "2" if i < case.out(case.positions) else "1", "100")
    for i in range(case.balances):
        venue.set_balance(f"C{i}", "200" if i < case.out(case.balances) else "100")
    return venue


def _symbols(case: Case) -> list[str]:
    return [f"S{i}/USDT:USDT" for i in range(case.positions)]


def _now():
    from django.utils import timezone

    return timezone.now()


def reset_tables() -> None:
    from django.core.management.color import no_style
    from django.db import connection

    from reconciliation.models import Discrepancy, ReconciliationRun, Repair
    from tradingstate.models import AuditEntry, Balance, Fill, Order, Position

    models = [Repair, Discrepancy, ReconciliationRun, AuditEntry, Fill, Order, Position, Balance]
    tables = [m._meta.db_table for m in models]
    sql = connection.ops.sql_flush(no_style(), tables, allow_cascade=True)
    connection.ops.execute_sql_flush(sql)


def build_local(case: Case, account) -> None:
    """The local state of record, bulk-inserted (setup, not the code under test)."""
    from django.db import connection

    from tradingstate.models import Balance, Order, Position

    reset_tables()
    one, zero = Decimal(1), Decimal(0)
    symbols = _symbols(case)
    missing = case.out(case.orders)
    common = {"account": account, "side": "buy", "type": "limit", "quantity": one}
    common.update(price=Decimal(100), filled_qty=zero, remaining_qty=one, status="submitted")
    rows = [
        Order(
            client_order_id=f"c{i}",
            exchange_order_id=f"E{i}",
            symbol=symbols[i % len(symbols)],
            **common,
        )
        for i in range(missing, case.orders)
    ]
    rows += [
        Order(
            client_order_id=f"s{j}",
            exchange_order_id=f"X{j}",
            symbol=symbols[j % len(symbols)],
            **common,
        )
        for j in range(case.out(case.orders))
    ]
    Order.objects.bulk_create(rows, batch_size=2000)
    Order.objects.filter(account=account).update(updated_at=_now() - AGE)
    Position.objects.bulk_create(
        [Position(account=account, symbol=s, qty=one, entry_price=Decimal(100)) for s in symbols],
        batch_size=2000,
    )
    Balance.objects.bulk_create(
        [
            Balance(account=account, currency=f"C{i}", free=Decimal(100), total=Decimal(100))
            for i in range(case.balances)
        ],
        batch_size=2000,
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            for model in (Order, Position, Balance):
                cur.execute(f'ANALYZE "{model._meta.db_table}"')


def one_pass(case: Case, account, venue, *, capture: bool = False) -> tuple[float, int, object]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reconciliation.services import run_reconciliation

    build_local(case, account)
    ctx = CaptureQueriesContext(connection) if capture else None
    started = time.perf_counter()
    if ctx is not None:
        with ctx:
            run = run_reconciliation(account, "manual", adapter=venue)
    else:
        run = run_reconciliation(account, "manual", adapter=venue)
    ms = (time.perf_counter() - started) * 1000
    verify(case, run)
    return ms, len(ctx.captured_queries) if ctx is not None else -1, run


def verify(case: Case, run) -> None:
    from reconciliation.models import Discrepancy, Repair
    from tradingstate.models import AuditEntry

    repairs = Repair.objects.filter(run=run, status="applied").count()
    audits = AuditEntry.objects.filter(run_id=run.pk).count()
    found = Discrepancy.objects.filter(run=run).count()
    problems = []
    if run.status != "completed":
        problems.append(f"status {run.status} ({run.error})")
    if run.discrepancies_found != case.expected or found != case.expected:
        problems.append(f"discrepancies {run.discrepancies_found}/{found} != {case.expected}")
    if not (run.repairs_applied == repairs == run.discrepancies_found):
        problems.append(f"repairs {run.repairs_applied}/{repairs} != {run.discrepancies_found}")
    if audits != repairs:
        problems.append(f"audit rows {audits} != repairs {repairs}")
    if problems:
        raise SystemExit(f"reconcile bench: pass verification failed: {'; '.join(problems)}")


def run_case(case: Case, passes: int) -> str:
    from tradingstate.models import ExchangeAccount

    account, _ = ExchangeAccount.objects.get_or_create(
        name="bench", defaults={"exchange": "paper", "market_type": "swap"}
    )
    venue = build_venue(case)
    _, queries, run = one_pass(case, account, venue, capture=True)  # warm-up, counted
    timings = [one_pass(case, account, venue)[0] for _ in range(passes)]
    ms = statistics.median(timings)
    # issue 17: 10,000 orders, 10 % desync <= 800 ms (10x the seed's in-memory pass), clean
    # <= 200 ms; scaled linearly for other sizes. ratio = ms / target: <= 1.00 meets it
    target = (800 if case.desync else 200) * case.orders / 10_000
    return (
        f"reconcile orders={case.orders} positions={case.positions} balances={case.balances} "
        f"desync={case.desync:g} discrepancies={run.discrepancies_found} "
        f"repairs={run.repairs_applied} queries={queries} ms={ms:.0f} "
        f"target_ms={target:.0f} ratio={ms / target:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, action="append", help="N (repeatable)")
    parser.add_argument("--desync", type=float, action="append", help="fraction (repeatable)")
    parser.add_argument("--passes", type=int, default=5, help="timed passes per case")
    args = parser.parse_args(argv)
    sizes = args.orders or list(SIZES)
    desyncs = args.desync if args.desync is not None else list(DESYNCS)
    with bench_database():
        django_setup()
        for n in sizes:
            for desync in desyncs:
                print(run_case(Case(n, desync), args.passes), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
