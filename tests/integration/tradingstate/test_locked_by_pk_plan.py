"""A batch of rows locked by primary key is read through the primary key, whatever the
account's statistics say (PostgreSQL).

The defect (issue 17, register-under-passes, found with ``pg_stat_statements`` and
``auto_explain``): a pass's lock of the orders it repairs named the account and the keys,
``account_id = X AND id = ANY(...) FOR UPDATE``. The account's orders had grown since the
last ANALYZE; the planner expected 89 of them, so it read the account's rows through the
account index and compared each with every key: 133,832 rows read, 132,988 thrown away,
~500 ms of PostgreSQL CPU on every pass. ``tradingstate.locks.locked_by_pk`` compares the
account as ``account_id + 0``, which no index serves: the keys pick the rows through the
primary key, and another account's row named by a key is neither returned nor locked.

Each test builds the trap: another account's orders are analysed, then this account's
orders are written without an ANALYZE (autovacuum off for the table meanwhile), so the
planner believes this account holds next to nothing. The plan is read with
``EXPLAIN (ANALYZE, FORMAT JSON)`` of the statement the service sent: rows thrown away by
a filter mean the account's rows were read.
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AccountFactory
from tests.pg import lockable_elsewhere, requires_postgres
from tradingstate.actors import Actor
from tradingstate.locks import locked_by_pk, order_qs_select_for_update
from tradingstate.models import Fill, Order
from tradingstate.services.fills import fills_correct
from tradingstate.services.sync import SyncItem, orders_sync_state

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres]

ANALYSED = 3000  # another account's orders, in the statistics
GROWN = 3000  # this account's, written after the ANALYZE
LOCKED = 200
RECONCILER = Actor.system("reconciler")


def _order(account, i: int, status: str = "submitted") -> Order:
    return Order(
        account=account, client_order_id=f"o-{account.pk}-{i}", exchange_order_id=f"x{i}",
        symbol="BTC/USDT", side="buy", type="limit", quantity=D("1"), price=D("10"),
        filled_qty=D("0"), remaining_qty=D("1"), status=status,
    )  # fmt: skip


def _fill(account, i: int) -> Fill:
    return Fill(
        account=account, symbol="BTC/USDT", side="buy", trade_id=f"t{i}", quantity=D("1"),
        price=D("10"), executed_at=timezone.now(),
    )  # fmt: skip


def _grown(model, make):
    """An account whose rows of ``model`` the statistics do not know about: another
    account's rows are analysed, then this account's are written."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    try:
        other = AccountFactory(name="analysed")
        model.objects.bulk_create(make(other, i) for i in range(ANALYSED))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {table}")
        account = AccountFactory(name="grown")
        model.objects.bulk_create(make(account, i) for i in range(GROWN))
        yield account
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table} RESET (autovacuum_enabled)")


@pytest.fixture
def grown_account():
    """An account whose orders the statistics do not know about."""
    yield from _grown(Order, _order)


@pytest.fixture
def grown_fills():
    """An account whose fills the statistics do not know about."""
    yield from _grown(Fill, _fill)


def _nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def _explained(sql: str) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        raw = cursor.fetchone()[0]
    plan = json.loads(raw) if isinstance(raw, str) else raw
    return list(_nodes(plan[0]["Plan"]))


def _assert_read_by_key(sql: str, table: str, strangers: int = 0) -> None:
    """The statement went through the primary key and read no row but those it was named:
    only the named rows of another account (``strangers``) may be thrown away."""
    nodes = _explained(sql)
    thrown = sum(n.get("Rows Removed by Filter", 0) for n in nodes)
    scans = [n for n in nodes if n.get("Relation Name") == table]
    assert thrown <= strangers, (
        f"{thrown} rows read and thrown away: {[n['Node Type'] for n in nodes]}"
    )
    assert scans and all(n.get("Index Name") == f"{table}_pkey" for n in scans), scans


def _the_lock(ctx, table: str) -> str:
    locks = [
        q["sql"] for q in ctx.captured_queries if "FOR UPDATE" in q["sql"] and table in q["sql"]
    ]
    assert len(locks) == 1, locks
    return locks[0]


def test_the_trap_is_real(grown_account):
    # given the account's rows and keys in one statement (as before), the planner reads the
    # account's rows and throws most away: the condition this file guards against
    ids = list(
        Order.objects.filter(account=grown_account).order_by("-pk").values_list("pk", flat=True)
    )[:LOCKED]
    query = order_qs_select_for_update().filter(account=grown_account, pk__any=ids).query
    with transaction.atomic(), connection.cursor() as cursor:
        text = cursor.mogrify(*query.sql_with_params())
    nodes = _explained(text)
    assert sum(n.get("Rows Removed by Filter", 0) for n in nodes) > GROWN // 2


def test_locked_by_pk_reads_by_key_and_keeps_the_accounts_rows(grown_account):
    other = list(Order.objects.exclude(account=grown_account).values_list("pk", flat=True)[:5])
    mine = list(
        Order.objects.filter(account=grown_account).order_by("-pk").values_list("pk", flat=True)
    )[:LOCKED]
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        rows = locked_by_pk(order_qs_select_for_update(), grown_account, [*mine, *other])
    # then only this account's rows come back, each once
    assert sorted(rows) == sorted(mine)
    assert all(row.account_id == grown_account.pk for row in rows.values())
    # and the statement went through the primary key
    _assert_read_by_key(_the_lock(ctx, Order._meta.db_table), Order._meta.db_table, len(other))


def test_a_key_of_another_account_leaves_that_row_unlocked(grown_account):
    # a key that names another tenant's order must not hold that tenant's row until this
    # transaction ends (its bots' transitions and its own pass would wait on it)
    stranger = Order.objects.exclude(account=grown_account).first()
    mine = Order.objects.filter(account=grown_account).first()
    with transaction.atomic():
        rows = locked_by_pk(order_qs_select_for_update(), grown_account, [mine.pk, stranger.pk])
        assert list(rows) == [mine.pk]
        assert not lockable_elsewhere(Order, mine.pk)  # the probe sees this account's lock
        assert lockable_elsewhere(Order, stranger.pk)


def test_a_pass_locks_the_orders_it_repairs_by_key(grown_account):
    orders = list(Order.objects.filter(account=grown_account).order_by("-pk")[:LOCKED])
    items = [
        SyncItem(
            key=o.client_order_id,
            values={"status": "cancelled", "filled_qty": "0"},
            target_id=o.pk,
            expected_version=o.version,
        )
        for o in orders
    ]
    with CaptureQueriesContext(connection) as ctx:
        outcomes = orders_sync_state(account=grown_account, items=items, actor=RECONCILER)
    assert all(o.applied for o in outcomes), [o.error for o in outcomes if not o.applied][:3]
    assert Order.objects.filter(account=grown_account, status="cancelled").count() == LOCKED
    _assert_read_by_key(_the_lock(ctx, Order._meta.db_table), Order._meta.db_table)


def test_an_order_of_another_account_is_not_repaired_through_this_one(grown_account):
    stranger = Order.objects.exclude(account=grown_account).first()
    item = SyncItem(
        key=stranger.client_order_id,
        values={"status": "cancelled", "filled_qty": "0"},
        target_id=stranger.pk,
        expected_version=stranger.version,
    )
    [outcome] = orders_sync_state(account=grown_account, items=[item], actor=RECONCILER)
    assert not outcome.applied
    stranger.refresh_from_db()
    assert stranger.status == "submitted"


def test_a_fill_correction_locks_the_fills_it_corrects_by_key(grown_fills):
    fills = list(Fill.objects.filter(account=grown_fills).order_by("-pk")[:LOCKED])
    seen = {"quantity": "1", "price": "10", "fee": "0"}
    values = {"quantity": "2", "price": "10", "fee": "0", "seen": seen}
    items = [
        SyncItem(key=f.trade_id, values=values, target_id=f.pk, expected_version=None)
        for f in fills
    ]
    with CaptureQueriesContext(connection) as ctx:
        outcomes = fills_correct(account=grown_fills, items=items, actor=RECONCILER)
    assert all(o.applied for o in outcomes), [o.error for o in outcomes if not o.applied][:3]
    assert Fill.objects.filter(account=grown_fills, quantity=D("2")).count() == LOCKED
    _assert_read_by_key(_the_lock(ctx, Fill._meta.db_table), Fill._meta.db_table)
