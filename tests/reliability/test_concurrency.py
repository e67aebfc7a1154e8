"""Concurrency on PostgreSQL: bots and reconciliation passes at once, and two worker
processes over the same drifted accounts."""

from __future__ import annotations

import itertools
import json
import queue
import random
import subprocess
import threading
import time
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection
from django.db.models import Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from killswitch.services import order_register_guarded
from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.services import run_reconciliation
from tests.fakes.memory import TradingMemoryExchange
from tests.pg import requires_postgres
from tests.reliability.conftest import HERE, python, worker_env
from tests.reliability.support import (
    DRIFTS_PER_ACCOUNT,
    paper_account,
    repairs_consistent,
    stage_drift,
)
from tradingstate.actors import Actor
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, Fill, Order
from tradingstate.services import fill_record, order_transition

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

BOTS = 16
DURATION = 30.0
PASS_EVERY = 1.0
DUPLICATE_SHARE = 0.2


class LockedVenue(TradingMemoryExchange):
    """The MemoryExchange, listing its trades (issue 14), safe to share between bot threads
    and the pass thread."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.lock = threading.RLock()

    def fetch_open_orders(self):
        with self.lock:
            return super().fetch_open_orders()

    def fetch_balances(self):
        with self.lock:
            return super().fetch_balances()

    def fetch_positions(self):
        with self.lock:
            return super().fetch_positions()

    def fetch_order(self, *args):
        with self.lock:
            return super().fetch_order(*args)

    def fetch_my_trades(self, since, symbols=None):
        with self.lock:
            return super().fetch_my_trades(since, symbols)

    def trade(self, **kw) -> None:
        with self.lock:
            self.add_trade(**kw)

    def put(self, order: ex.ExchangeOrder) -> None:
        with self.lock:
            self.orders[order.exchange_order_id] = order

    def update(self, exchange_order_id: str, **changes) -> None:
        with self.lock:
            self.orders[exchange_order_id] = replace(self.orders[exchange_order_id], **changes)


class Ledger:
    """What the bots were told (acknowledged writes), for the no-lost-write check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.orders: dict[str, dict] = {}  # coid -> {"status", "version", "trades": {id: qty}}
        self.versions: dict[str, list[int]] = {}
        self.writes = 0
        self.duplicates_sent = 0
        self.duplicates_recorded = 0
        self.errors: list[str] = []

    def ack(self, order: Order, *, write: bool = True) -> None:
        with self.lock:
            entry = self.orders.setdefault(order.client_order_id, {"trades": {}})
            entry["status"] = order.status
            entry["version"] = max(order.version, entry.get("version", 0))
            self.versions.setdefault(order.client_order_id, []).append(order.version)
            self.writes += int(write)


def _split(total: Decimal, parts: int) -> list[Decimal]:
    unit = Decimal("0.001")
    steps = int(total / unit)
    cuts = sorted(random.sample(range(1, steps), parts - 1)) if parts > 1 else []
    bounds = [0, *cuts, steps]
    return [(b - a) * unit for a, b in itertools.pairwise(bounds)]


def _bot(n, account, venue, ledger, stop, redeliver: queue.Queue, rng_seed):
    rng = random.Random(rng_seed)
    actor = Actor(type="bot", name=f"bot-{n}", correlation_id=f"bot-{n}")
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            coid = f"b{n}-{seq}"
            qty = Decimal(rng.randint(2, 40)) / 1000
            order, created = order_register_guarded(
                account=account,
                client_order_id=coid,
                symbol="BTC/USDT",
                side=rng.choice(["buy", "sell"]),
                quantity=str(qty),
                price="50000",
                actor=actor,
            )
            assert created
            ledger.ack(order)
            exid = f"EX-{coid}"
            venue.put(
                ex.ExchangeOrder(
                    symbol="BTC/USDT",
                    side=order.side,
                    type="limit",
                    amount=qty,
                    filled=Decimal(0),
                    status=ex.OPEN,
                    exchange_order_id=exid,
                    client_order_id=coid,
                    price=Decimal(50000),
                    timestamp=timezone.now(),
                )
            )
            order = order_transition(
                account=account,
                client_order_id=coid,
                to_status="submitted",
                exchange_order_id=exid,
                actor=actor,
            )
            ledger.ack(order)
            # fills: 1-4 pieces, 20 % of them delivered twice, in shuffled order; a third
            # of the orders are cancelled after their first fills, some stay open
            pieces = _split(qty, rng.randint(1, min(4, int(qty * 1000))))
            fate = rng.choice(["fill", "fill", "cancel", "open"])
            if fate != "fill":
                pieces = pieces[: rng.randint(0, len(pieces) - 1)]
            trades = [(f"t-{coid}-{i}", p) for i, p in enumerate(pieces)]
            sends = list(trades)
            for trade in trades:
                if rng.random() < DUPLICATE_SHARE:
                    sends.append(trade)
            rng.shuffle(sends)
            filled = Decimal(0)
            seen = set()
            for trade_id, piece in sends:
                _, new = fill_record(
                    account=account,
                    client_order_id=coid,
                    trade_id=trade_id,
                    quantity=str(piece),
                    price="50000",
                    actor=actor,
                )
                with ledger.lock:
                    ledger.orders[coid]["trades"][trade_id] = piece
                    if trade_id in seen:
                        ledger.duplicates_sent += 1
                        ledger.duplicates_recorded += int(new)
                    ledger.writes += int(new)
                if new:
                    filled += piece
                    order.refresh_from_db()
                    ledger.ack(order, write=False)  # counted above
                    venue.update(
                        exid,
                        filled=filled,
                        status=ex.CLOSED if filled == qty else ex.OPEN,
                    )
                    venue.trade(trade_id=trade_id, exchange_order_id=exid, symbol="BTC/USDT",
                                side=order.side, quantity=piece, price=Decimal(50000))  # fmt: skip
                    if rng.random() < DUPLICATE_SHARE:
                        redeliver.put((coid, trade_id, piece))  # another bot delivers it again
                seen.add(trade_id)
            if fate == "cancel":
                order = order_transition(
                    account=account, client_order_id=coid, to_status="cancelled", actor=actor
                )
                ledger.ack(order)
                venue.update(exid, status=ex.CANCELED)
            for _ in range(2):  # deliver someone else's fill again
                try:
                    other, trade_id, piece = redeliver.get_nowait()
                except queue.Empty:
                    break
                _, new = fill_record(
                    account=account,
                    client_order_id=other,
                    trade_id=trade_id,
                    quantity=str(piece),
                    price="50000",
                    actor=actor,
                )
                with ledger.lock:
                    ledger.duplicates_sent += 1
                    ledger.duplicates_recorded += int(new)
    except Exception as exc:  # reported by the test
        ledger.errors.append(f"bot {n}: {type(exc).__name__}: {exc}")
        raise
    finally:
        connection.close()


def _invariant_breaks(account) -> list[str]:
    """Orders whose filled quantity is not the sum of their fills (issue 14), read in one
    statement (one snapshot while the bots keep writing; PostgreSQL sums the amounts)."""
    rows = (
        Order.objects.filter(account=account)
        .annotate(total=Coalesce(Sum("fills__quantity"), Value(Decimal(0))))
        .values_list("client_order_id", "filled_qty", "fills_qty", "total")
    )
    return [
        f"{coid}: filled {filled} != fills {total} (fills_qty {fills_qty})"
        for coid, filled, fills_qty, total in rows
        if not filled == fills_qty == total
    ]


def _passes(account, venue, stop, runs: list, drift: list, breaks: list | None = None):
    n = 0
    try:
        while not stop.is_set():
            started = time.monotonic()
            n += 1
            if n % 3 == 0:  # drift: an order placed on the venue by hand, long ago
                coid = f"venue-{n}"
                with venue.lock:
                    venue.add_order(
                        symbol="BTC/USDT",
                        amount=Decimal("0.01"),
                        exchange_order_id=f"V-{n}",
                        client_order_id=coid,
                        timestamp=timezone.now() - timedelta(minutes=5),
                    )
                drift.append(coid)
            close_old_connections()
            run = run_reconciliation(account, "schedule", adapter=venue)
            runs.append(run.status)
            if breaks is not None and run.status == ReconciliationRun.Status.COMPLETED:
                breaks.extend(f"pass {run.pk}: {b}" for b in _invariant_breaks(account))
            stop.wait(max(0.0, PASS_EVERY - (time.monotonic() - started)))
    finally:
        connection.close()


@pytest.mark.bound(150)
def test_16_bots_and_passes_every_second_lose_nothing(figure, seed):
    # given: a spot paper-style account whose venue mirrors what the bots do
    account = paper_account("conc", market_type="spot")
    venue = LockedVenue()
    ledger = Ledger()
    stop = threading.Event()
    redeliver: queue.Queue = queue.Queue()
    runs: list[str] = []
    drift: list[str] = []
    breaks: list[str] = []  # filled_qty != sum of fills after a pass (issue 14)
    audits_before = AuditEntry.objects.filter(account=account).count()
    watch_errors: list[str] = []

    def watch():  # versions read back from the database only ever go up
        last: dict[int, int] = {}
        try:
            while not stop.is_set():
                for pk, version in Order.objects.values_list("pk", "version"):
                    if version < last.get(pk, 0):
                        watch_errors.append(f"order {pk}: version {last[pk]} -> {version}")
                    last[pk] = version
                time.sleep(0.2)
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=_bot, args=(n, account, venue, ledger, stop, redeliver, seed + n), daemon=True
        )
        for n in range(BOTS)
    ]
    threads.append(
        threading.Thread(target=_passes, args=(account, venue, stop, runs, drift, breaks))
    )
    threads.append(threading.Thread(target=watch, daemon=True))
    # when
    for thread in threads:
        thread.start()
    time.sleep(DURATION)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    while not redeliver.empty():  # the last redeliveries
        coid, trade_id, piece = redeliver.get()
        _, new = fill_record(
            account=account,
            client_order_id=coid,
            trade_id=trade_id,
            quantity=str(piece),
            price="50000",
            actor=Actor.system("late"),
        )
        ledger.duplicates_sent += 1
        ledger.duplicates_recorded += int(new)
    final = run_reconciliation(account, "manual", adapter=venue)

    # then: the bots never failed
    assert not ledger.errors, ledger.errors[:5]
    # after every completed pass, every order's filled_qty was the sum of its fills
    assert breaks == [], breaks[:5]
    assert _invariant_breaks(account) == []
    assert not watch_errors, watch_errors[:5]
    # every order's filled_qty is the sum of its distinct fills
    sums = dict(
        Fill.objects.filter(account=account)
        .values("order__client_order_id")
        .annotate(total=Sum("quantity"))
        .values_list("order__client_order_id", "total")
    )
    for coid, filled in Order.objects.filter(account=account).values_list(
        "client_order_id", "filled_qty"
    ):
        assert filled == sums.get(coid, Decimal(0)), (coid, filled, sums.get(coid))
    # no acknowledged write lost: every order, its last status and version, every trade
    lost = []
    rows = {o.client_order_id: o for o in Order.objects.filter(account=account, origin="bot")}
    recorded = set(Fill.objects.filter(account=account).values_list("trade_id", flat=True))
    for coid, entry in ledger.orders.items():
        row = rows.get(coid)
        if row is None or row.status != entry["status"] or row.version != entry["version"]:
            lost.append(
                (coid, entry["status"], entry["version"], row and (row.status, row.version))
            )
        lost.extend(t for t in entry["trades"] if t not in recorded)
    assert lost == [], lost[:5]
    for coid, versions in ledger.versions.items():
        assert versions == sorted(set(versions)), (coid, versions)
    duplicates = Fill.objects.filter(account=account).count() - len(recorded)
    assert duplicates == 0 and ledger.duplicates_recorded == 0
    # reconciliation repaired the venue drift, each once, and never touched a bot's order
    repaired = Repair.objects.filter(account_id=account.pk, status="applied")
    assert not repaired.filter(discrepancy__key__startswith="b").exists()
    created = set(
        Order.objects.filter(account=account, origin="reconciliation").values_list(
            "client_order_id", flat=True
        )
    )
    assert created == set(drift)
    assert repaired.count() == len(drift)
    assert final.status == ReconciliationRun.Status.COMPLETED and final.discrepancies_found == 0
    audit_writes = (
        AuditEntry.objects.filter(account=account)
        .exclude(action="repair.apply")
        .exclude(action__startswith="paper.")  # the paper venue's own side, counted below
    )
    assert audit_writes.count() - audits_before == ledger.writes
    # each bot order was placed on the paper venue once, when it was submitted
    bot_orders = Order.objects.filter(account=account, origin="bot").count()
    venue = AuditEntry.objects.filter(account=account, action="paper.order_place")
    assert venue.count() == bot_orders
    repairs_consistent(account)
    assert len(runs) >= DURATION / PASS_EVERY * 0.5, runs
    figure(
        ops=ledger.writes + ledger.duplicates_sent,
        orders=len(ledger.orders),
        acknowledged_writes=ledger.writes,
        duplicate_fills_sent=ledger.duplicates_sent,
        passes=len(runs) + 1,
        pass_statuses={s: runs.count(s) for s in set(runs)},
        repairs=repaired.count(),
        lost=len(lost),
        duplicates=duplicates,
    )


WORKERS = 2
PASSES = 100
ACCOUNTS = 10


@pytest.mark.bound(240)
def test_two_worker_processes_repair_each_drift_exactly_once(figure, seed):
    # given: 10 drifted paper accounts (the venue lives in the database: both see it)
    accounts = [stage_drift(f"drift-{i}") for i in range(ACCOUNTS)]
    ids = ",".join(str(a.pk) for a in accounts)
    # when: two processes, 100 passes each over all ten accounts
    procs = [
        subprocess.Popen(
            [
                python(),
                str(HERE / "worker.py"),
                "--accounts",
                ids,
                "--passes",
                str(PASSES),
                "--seed",
                str(seed + i),
            ],
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(WORKERS)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=200)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    # then: each drift repaired exactly once, audit rows = repairs
    expected = ACCOUNTS * DRIFTS_PER_ACCOUNT
    repairs = Repair.objects.filter(status=Repair.Status.APPLIED)
    assert repairs.count() == expected
    assert sum(r["repairs"] for r in results) == expected
    assert AuditEntry.objects.filter(action="repair.apply").count() == expected
    for account in accounts:
        keys = list(
            repairs.filter(account_id=account.pk).values_list("discrepancy__key", flat=True)
        )
        assert len(keys) == len(set(keys)) == DRIFTS_PER_ACCOUNT, (account.name, keys)
    assert not Discrepancy.objects.filter(status=Discrepancy.Status.OPEN).exists()
    repairs_consistent()
    statuses = {}
    for r in results:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    assert sum(statuses.values()) == WORKERS * PASSES * ACCOUNTS
    assert set(statuses) <= {"completed", "skipped"}, statuses
    figure(
        ops=WORKERS * PASSES * ACCOUNTS,
        pass_statuses=statuses,
        repairs=repairs.count(),
        expected_repairs=expected,
        lost=0,
        duplicates=repairs.count() - expected,
    )
