"""A pass never stalls bots: no database transaction spans the exchange's I/O.

The pass holds only the account's lease (a session advisory lock on PostgreSQL) while it
asks the exchange; it persists in one short transaction that re-checks row versions.
"""

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from reconciliation.locks import lock_key
from reconciliation.models import ReconciliationRun, Repair
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory, BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.memory import MemoryExchange
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.models import Balance, Order, Position
from tradingstate.services import position_set

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]


def _pass_in_thread(account, venue):
    """Start a pass whose fetch waits on ``venue.gate``; return (thread, results)."""
    results = {}

    def work():
        try:
            results["run"] = run_reconciliation(account.pk, "schedule", adapter=venue)
        finally:
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    for _ in range(200):
        if "fetch_open_orders" in venue.calls:
            break
        threading.Event().wait(0.025)
    assert "fetch_open_orders" in venue.calls, "the pass never reached its fetch"
    return thread, results


def _lease_holder(account_id):
    """(pid, state, xact_start) of the session holding the account's pass lease."""
    key = lock_key(f"account:{account_id}")
    with connection.cursor() as cur:
        cur.execute(
            "SELECT a.pid, a.state, a.xact_start FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
            [key],
        )
        return cur.fetchall()


def test_rows_can_be_locked_while_the_pass_fetches():
    # given: an account with an order, a position and a balance, and a venue that holds the
    # pass inside its fetch
    account = AccountFactory(name="no-tx")
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    PositionFactory(account=account, symbol="BTC/USDT", qty=Decimal("1"))
    BalanceFactory(account=account, currency="USDT")
    venue = MemoryExchange(gate=threading.Event())
    venue.set_position("BTC/USDT", "1")
    thread, results = _pass_in_thread(account, venue)
    try:
        # when: another connection locks every row of the account, refusing to wait
        with transaction.atomic():
            locked = (
                len(Order.objects.select_for_update(nowait=True).filter(account=account)),
                len(Position.objects.select_for_update(nowait=True).filter(account=account)),
                len(Balance.objects.select_for_update(nowait=True).filter(account=account)),
            )
        holders = _lease_holder(account.pk)
    finally:
        venue.gate.set()
        thread.join(30)

    # then: nothing was locked by the pass, and the pass's session holds its lease with
    # no transaction open
    assert locked == (1, 1, 1)
    assert len(holders) == 1
    pid, state, xact_start = holders[0]
    assert pid != connection.connection.info.backend_pid
    assert (state, xact_start) == ("idle", None)
    assert results["run"].status == ReconciliationRun.Status.COMPLETED
    assert _lease_holder(account.pk) == []  # released when the pass ended


def test_a_bot_update_during_the_fetch_is_never_overwritten():
    # given: local 1 BTC, the exchange says 2; the pass is held inside its fetch
    account = AccountFactory(name="bot-wins")
    PositionFactory(account=account, symbol="BTC/USDT", qty=Decimal("1"))
    venue = MemoryExchange(gate=threading.Event())
    venue.set_position("BTC/USDT", "2")
    thread, results = _pass_in_thread(account, venue)
    try:
        # when: a bot records 3 BTC meanwhile (it takes the row's lock without waiting)
        position_set(account=account, symbol="BTC/USDT", qty="3", actor=Actor.system("bot-test"))
    finally:
        venue.gate.set()
        thread.join(30)

    # then: the repair planned from the older snapshot is deferred, the bot's value stands
    run = results["run"]
    assert run.status == ReconciliationRun.Status.COMPLETED
    assert (run.repairs_applied, run.repairs_deferred) == (0, 1)
    assert Position.objects.get(account=account, symbol="BTC/USDT").qty == Decimal("3")
    assert Repair.objects.get(run=run).status == Repair.Status.DEFERRED


def test_a_second_pass_during_the_fetch_is_skipped_and_asks_nothing():
    # given: a pass held inside its fetch
    account = AccountFactory(name="one-at-a-time")
    venue = MemoryExchange(gate=threading.Event())
    thread, results = _pass_in_thread(account, venue)
    other = MemoryExchange()
    try:
        # when: a second pass of the same account starts
        second = run_reconciliation(account.pk, "schedule", adapter=other)
    finally:
        venue.gate.set()
        thread.join(30)

    # then: it is recorded as skipped, never asked the exchange; the first completes
    assert second.status == ReconciliationRun.Status.SKIPPED
    assert other.calls == []
    assert results["run"].status == ReconciliationRun.Status.COMPLETED
