"""The shape of the benchmarked paths, not their time.

- A reconciliation pass costs the same number of SQL statements whatever the size, with
  every kind of discrepancy (missing and stale orders, positions, balances) and clean.
  (Missing orders + positions + balances alone: test_reconciliation_pass.py::
  test_queries_do_not_grow_with_size; the kill-switch guard's one statement:
  test_killswitch_services.py::test_guard_uses_one_statement; the kill-switch API read's
  two, token check included: test_api_hot_path.py::
  test_killswitch_read_is_two_statements_whatever_the_halts.)
- ``bench/reconcile.py`` runs and prints a well-formed line, also with trades and desync
  together (its own verification, kind by kind, holds).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reconciliation.models import Repair
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory
from tests.fakes.memory import MemoryExchange
from tests.pg import ON_POSTGRES
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, Balance, Order, Position

ROOT = Path(__file__).resolve().parents[2]
# SQLite caps a statement's parameters, so Django splits big bulk writes there; PostgreSQL
# gets sizes where a fixed batch of 1,000 rows would show.
SIZES = (30, 1200) if ON_POSTGRES else (10, 40)
MAX_STATEMENTS = 40
MAX_STATEMENTS_WITH_FILLS = 45  # issue 14


def world(account, n: int, desync: bool) -> tuple[MemoryExchange, int]:
    """n venue orders, n/10 positions and balances; with desync 10% of each kind off (and
    n/10 stale local orders). Returns the venue and the expected discrepancy count."""
    venue = MemoryExchange(max_order_lookups_per_pass=None)
    old = timezone.now() - timedelta(hours=1)
    k = max(1, n // 10)
    off = k if desync else 0
    for i in range(n):
        venue.add_order(
            symbol="BTC/USDT",
            amount=Decimal(1),
            exchange_order_id=f"E{i}",
            client_order_id=f"c{i}",
            timestamp=old,
        )
    common = {"account": account, "symbol": "BTC/USDT", "side": "buy", "quantity": Decimal(1)}
    common.update(remaining_qty=Decimal(1), status="submitted", price=Decimal(100))
    rows = [
        Order(client_order_id=f"c{i}", exchange_order_id=f"E{i}", **common) for i in range(off, n)
    ]
    for j in range(off):  # stale: the venue says closed, canceled, or does not know it
        rows.append(Order(client_order_id=f"s{j}", exchange_order_id=f"X{j}", **common))
        if j % 3 != 2:
            venue.add_order(
                symbol="BTC/USDT",
                amount=Decimal(1),
                filled=Decimal(1) if j % 3 == 0 else Decimal(0),
                status=ex.CLOSED if j % 3 == 0 else ex.CANCELED,
                exchange_order_id=f"X{j}",
                client_order_id=f"s{j}",
            )
    Order.objects.bulk_create(rows)
    Order.objects.filter(account=account).update(updated_at=old)
    for i in range(k):
        Position.objects.create(account=account, symbol=f"S{i}/USDT", qty=Decimal(1))
        Balance.objects.create(account=account, currency=f"C{i}", total=Decimal(5), free=Decimal(5))
        off_by = 1 if i < (max(1, k // 10) if desync else 0) else 0
        venue.set_position(f"S{i}/USDT", str(1 + off_by))
        venue.set_balance(f"C{i}", str(5 + off_by))
    expected = 2 * off + 2 * max(1, k // 10) if desync else 0
    return venue, expected


def waiting(n: int, desync: bool) -> int:
    """Stale orders the venue does not know (``j % 3 == 2``): found, not yet repaired (they
    wait ``stale_not_found_passes`` passes, issue 14)."""
    off = max(1, n // 10) if desync else 0
    return sum(1 for j in range(off) if j % 3 == 2)


@pytest.mark.django_db
@pytest.mark.parametrize("desync", [True, False], ids=["desync", "clean"])
def test_pass_statements_do_not_grow_with_size(desync):
    counts = []
    for n in SIZES:
        account = AccountFactory(name=f"shape-{n}-{int(desync)}")
        venue, expected = world(account, n, desync)
        with CaptureQueriesContext(connection) as ctx:
            run = run_reconciliation(account, "manual", adapter=venue)
        assert run.status == "completed", run.error
        assert run.discrepancies_found == expected
        assert run.repairs_applied == expected - waiting(n, desync)
        assert AuditEntry.objects.filter(run_id=run.pk).count() == run.repairs_applied
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= MAX_STATEMENTS, counts


@pytest.mark.django_db
def test_repaired_discrepancies_are_written_once_already_repaired():
    # given: a desynced world (missing and stale orders, positions, balances)
    from reconciliation.models import Discrepancy

    account = AccountFactory(name="written-once")
    venue, expected = world(account, 40, True)
    # when
    with CaptureQueriesContext(connection) as ctx:
        run = run_reconciliation(account, "manual", adapter=venue)
    # then: every repaired discrepancy says so, by whom and why; the waiting ones are open
    assert run.status == "completed", run.error
    rows = list(Discrepancy.objects.filter(run=run))
    repaired = [r for r in rows if r.status == "repaired"]
    assert len(rows) == expected and len(repaired) == run.repairs_applied
    assert {(r.resolved_by, r.resolution_reason) for r in repaired} == {
        ("system:reconciliation", "auto-repair")
    }
    assert all(r.resolved_at is not None for r in repaired)
    assert {r.status for r in rows if r not in repaired} == {"open"}
    assert sorted(r.pk for r in repaired) == sorted(
        Repair.objects.filter(run=run, status="applied").values_list("discrepancy_id", flat=True)
    )
    if ON_POSTGRES:  # ids reserved first: the rows go in repaired, no UPDATE after the insert
        updates = [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE")]
        assert not [q for q in updates if '"reconciliation_discrepancy"' in q["sql"][:40]]


@pytest.mark.django_db
@pytest.mark.parametrize("desync", [True, False], ids=["desync", "clean"])
def test_pass_statements_with_fills_do_not_grow_with_size(desync):
    """Issue 14: the same world with two venue trades per order (10 % missing locally) and
    one order whose fills lag its filled quantity (an inferred fill) costs a fixed number
    of statements, at most 45."""
    from tests.fakes.memory import TradingMemoryExchange
    from tradingstate.models import Fill

    counts = []
    for n in SIZES:
        account = AccountFactory(name=f"fills-{n}-{int(desync)}", market_type="swap")
        plain, expected = world(account, n, desync)
        venue = TradingMemoryExchange(max_order_lookups_per_pass=None)
        venue.orders, venue.positions, venue.balances = (
            plain.orders,
            plain.positions,
            plain.balances,
        )
        old = timezone.now() - timedelta(hours=1)
        ids = dict(Order.objects.filter(account=account).values_list("client_order_id", "pk"))
        fills, missing = [], 0
        for i in range(n):
            for piece in range(2):
                trade_id = f"T{i}-{piece}"
                venue.add_trade(
                    trade_id=trade_id, exchange_order_id=f"E{i}", symbol="BTC/USDT",
                    quantity=Decimal("0.25"), price=Decimal(100), executed_at=old,
                )  # fmt: skip
                if (2 * i + piece) % 10 == 9 or f"c{i}" not in ids:
                    missing += 1
                else:
                    fills.append(Fill(account=account, order_id=ids[f"c{i}"], symbol="BTC/USDT",
                                      side="buy", trade_id=trade_id, quantity=Decimal("0.25"),
                                      price=Decimal(100), executed_at=old))  # fmt: skip
        Fill.objects.bulk_create(fills)
        recorded = {}
        for fill in fills:
            recorded[fill.order_id] = recorded.get(fill.order_id, Decimal(0)) + fill.quantity
        for key, order in list(venue.orders.items()):  # the venue's average of its fills
            if order.status == ex.CLOSED:
                venue.orders[key] = replace(order, average=Decimal(100))
        for i in range(n):  # the venue and the bot agree: 0.5 of 1 filled
            venue.orders[f"E{i}"] = replace(venue.orders[f"E{i}"], filled=Decimal("0.5"),
                                            average=Decimal(100))  # fmt: skip
        orders = list(Order.objects.filter(account=account, client_order_id__startswith="c"))
        for order in orders:
            order.filled_qty, order.remaining_qty = Decimal("0.5"), Decimal("0.5")
            order.status, order.avg_fill_price = "partially_filled", Decimal(100)
            order.fills_qty = recorded.get(order.pk, Decimal(0))
        Order.objects.bulk_update(
            orders, ["filled_qty", "remaining_qty", "status", "avg_fill_price", "fills_qty"]
        )
        Order.objects.filter(account=account).update(updated_at=old)
        # the stale orders the venue says closed (filled) list no trades: one inferred fill each
        off = max(1, n // 10) if desync else 0
        missing += sum(1 for j in range(off) if j % 3 == 0)
        with CaptureQueriesContext(connection) as ctx:
            run = run_reconciliation(account, "manual", adapter=venue)
        assert run.status == "completed", run.error
        assert run.fill_discrepancies == missing
        assert run.discrepancies_found == expected + missing
        assert run.repairs_applied == expected + missing - waiting(n, desync)
        for order in Order.objects.filter(account=account):
            assert order.filled_qty == order.fills_qty, order
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= MAX_STATEMENTS_WITH_FILLS, counts


LINE = re.compile(
    r"^reconcile orders=200 positions=20 balances=20 desync=(0\.1|0) discrepancies=(\d+) "
    r"repairs=(\d+) queries=(\d+) ms=(\d+) target_ms=(\d+) ratio=(\d+\.\d\d)$"
)


def test_bench_reconcile_smoke():
    # SQLite in a temp dir: the bench never touches the test or dev databases
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "bench/reconcile.py", "--orders", "200", "--passes", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    matches = [LINE.match(line) for line in lines]
    assert all(matches), lines
    desync, clean = matches
    # 44 found; the 6 stale orders the venue does not know wait stale_not_found_passes
    assert desync.group(1) == "0.1" and desync.group(2) == "44" and desync.group(3) == "38"
    assert clean.group(1) == "0" and clean.group(2) == clean.group(3) == "0"


TRADES_LINE = re.compile(
    r"^reconcile orders=100 positions=10 balances=10 desync=0\.1 trades=200 missing_fills=38 "
    r"discrepancies=(\d+) repairs=(\d+) queries=\d+ ms=\d+ ratio=\d+\.\d\d "
    r"\(vs ms=\d+ without trades\)$"
)


def test_bench_reconcile_trades_with_desync_smoke():
    # given: trades (issue 14) and desync together, SQLite in a temp dir
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    # when
    args = ["--orders", "100", "--trades", "200", "--desync", "0.1", "--passes", "1"]
    out = subprocess.run(
        [sys.executable, "bench/reconcile.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # then: the bench's own verification holds (kind by kind) and the line says what it found
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1, out.stdout
    match = TRADES_LINE.match(lines[0])
    assert match, lines
    # 10 missing + 10 stale orders, 1 position, 1 balance; missing fills: the 20 trades of
    # the 10 orders missing locally and every tenth of the other 180 (18); one inferred fill
    # per stale order the venue says filled (j % 3 == 0: 4), open for staff (no price)
    assert match.group(1) == str(10 + 10 + 1 + 1 + 20 + 18 + 4)
    # not repaired: the 3 stale orders the venue does not know (they wait
    # stale_not_found_passes) and the 4 inferred fills without a price
    assert match.group(2) == str(10 + 10 + 1 + 1 + 20 + 18 + 4 - 3 - 4)


FLOOR = re.compile(
    r"^floor what=(python-loop ms|db-roundtrip us|orm-one-row us|runbook-log-lines lines=4400 ms)"
    r"=\d+$"
)


def test_bench_floors_smoke():
    # SQLite in a temp dir, as above: the four floor lines, well formed, in order
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "bench/floors.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert [FLOOR.match(line) is not None for line in lines] == [True] * 4, lines
    assert [line.split()[1] for line in lines] == [
        "what=python-loop",
        "what=db-roundtrip",
        "what=orm-one-row",
        "what=runbook-log-lines",
    ]


PNL_LINE = re.compile(r"^pnl what=(account|exposure) .*statements=(\d+) target=5 ms=\d+$")


def test_bench_pnl_smoke():
    # SQLite in a temp dir: both P&L read lines, well formed, within the 5-statement target
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "bench/pnl.py"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    matches = [PNL_LINE.match(line) for line in out.stdout.strip().splitlines()]
    assert [m.group(1) for m in matches if m] == ["account", "exposure"], out.stdout
    assert all(int(m.group(2)) <= 5 for m in matches)


def test_bench_accounts_behind_means_a_missed_slot():
    """``behind`` in ``bench/accounts.py``: more than interval + 2 s without a pass
    starting, inside the window or at either end; not a count of passes, which the phase of
    an account's first pass moves by one."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from accounts import _missed_slot
    finally:
        sys.path.remove(str(ROOT / "bench"))
    start = timezone.now()
    end = start + timedelta(seconds=60)

    def at(*seconds):
        return [start + timedelta(seconds=s) for s in seconds]

    # a 15.1 s cadence whose first pass comes 16.5 s in: 3 passes in 60 s, none missed
    assert not _missed_slot(at(16.5, 31.6, 46.7), start, end, 17)
    # a gap of 17.5 s between two passes, at the start, at the end; no pass at all
    assert _missed_slot(at(1, 18.5, 33, 48), start, end, 17)
    assert _missed_slot(at(17.5, 32, 47), start, end, 17)
    assert _missed_slot(at(1, 16, 31, 42.5), start, end, 17)
    assert _missed_slot([], start, end, 17)
