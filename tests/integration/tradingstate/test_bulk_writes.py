"""The bulk write helpers behind repairs and bulk transitions: exact values, one statement."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import AccountFactory, OrderFactory
from tradingstate.models import AuditEntry, Order
from tradingstate.services.bulk import rows_bulk_insert, rows_bulk_update

pytestmark = pytest.mark.django_db

FIELDS = ["status", "filled_qty", "remaining_qty", "avg_fill_price", "exchange_order_id"]


def _orders(n: int) -> list[Order]:
    account = AccountFactory()
    return [
        OrderFactory(account=account, client_order_id=f"c{i}", quantity=Decimal("10"))
        for i in range(n)
    ]


def test_rows_bulk_update_writes_exact_values():
    orders = _orders(3)
    at = timezone.now() - timedelta(minutes=5)
    values = [
        ("partially_filled", Decimal("0.000000000000000001"), Decimal("123456.5"), "x'1\"\\"),
        ("partially_filled", Decimal("9.999999999999999999"), None, "ümlaut,{}"),
        ("submitted", Decimal("0"), Decimal("1E+5"), ""),
    ]
    for order, (status, filled, avg, exid) in zip(orders, values, strict=True):
        order.status, order.filled_qty, order.avg_fill_price = status, filled, avg
        order.remaining_qty = order.quantity - filled
        order.exchange_order_id = exid
        order.updated_at = at
    assert rows_bulk_update(Order, orders, [*FIELDS, "updated_at"]) == 3
    for order, (status, filled, avg, exid) in zip(orders, values, strict=True):
        fresh = Order.objects.get(pk=order.pk)
        assert (fresh.status, fresh.filled_qty, fresh.avg_fill_price) == (status, filled, avg)
        assert fresh.remaining_qty == Decimal("10") - filled
        assert fresh.exchange_order_id == exid and fresh.updated_at == at


def test_rows_bulk_update_leaves_other_rows_and_fields_alone():
    orders = _orders(3)
    before = Order.objects.get(pk=orders[2].pk)
    orders[0].status = "cancelled"
    orders[0].symbol = "ETH/USDT"  # not in the field list: not written
    rows_bulk_update(Order, orders[:1], ["status"])
    assert Order.objects.get(pk=orders[0].pk).symbol == before.symbol
    assert Order.objects.get(pk=orders[0].pk).status == "cancelled"
    assert Order.objects.get(pk=orders[2].pk).status == before.status


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite batches bulk_update")
def test_rows_bulk_update_is_one_statement_at_any_size():
    for n in (2, 40):
        orders = _orders(n)
        with CaptureQueriesContext(connection) as ctx:
            assert rows_bulk_update(Order, orders, FIELDS) == n
        assert len(ctx.captured_queries) == 1


def test_rows_bulk_insert_writes_json_and_auto_now_add():
    account = AccountFactory()
    entries = [
        AuditEntry(
            actor_type="system",
            actor_name="tests",
            action="repair.apply",
            account=account,
            target_type="order",
            target_id=str(i),
            before={"qty": "0.05", "quote": 'it\'s "x"'},
            after={"qty": "0.08", "nested": [1, None, {"a": "ü"}]},
            reason="auto-repair",
        )
        for i in range(3)
    ]
    started = timezone.now()
    rows_bulk_insert(AuditEntry, entries)
    rows = list(AuditEntry.objects.filter(account=account).order_by("target_id"))
    assert [r.target_id for r in rows] == ["0", "1", "2"]
    assert rows[1].before == {"qty": "0.05", "quote": 'it\'s "x"'}
    assert rows[1].after == {"qty": "0.08", "nested": [1, None, {"a": "ü"}]}
    assert all(r.created_at >= started - timedelta(seconds=1) for r in rows)
