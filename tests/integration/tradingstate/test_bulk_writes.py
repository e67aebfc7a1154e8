"""The bulk write helpers behind repairs and bulk transitions: exact values, one statement."""

import warnings
from datetime import UTC, date, datetime, timedelta
from datetime import timezone as timezone_of
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg.adapt import PyFormat, Transformer

from tests.factories import AccountFactory, OrderFactory
from tests.pg import requires_postgres
from tradingstate.db.rows import insert_values, preparer
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


# --- the written values' preparation (COPY, UPDATE, the hot path): the ORM's, value for value


class _DecimalKind(Decimal):
    pass


class _DatetimeKind(datetime):
    pass


_AWARE = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
_VALUES = [
    None,
    Decimal("1.5"),
    Decimal("-0.000000000000000001"),
    Decimal("1E+5"),
    Decimal("12345678901234567890.5"),
    Decimal("NaN"),
    Decimal("-Infinity"),
    _DecimalKind("2.5"),
    1.5,
    3,
    True,
    "2.5",
    "",
    "x'\"ü",
    _AWARE,
    _AWARE.astimezone(timezone_of(timedelta(hours=5, minutes=30))),
    _AWARE.replace(tzinfo=None),
    _DatetimeKind(2026, 1, 2, tzinfo=UTC),
    date(2026, 1, 2),
    {"qty": "0.05", "nested": [1, None, {"a": "ü", "b": 1.5}]},
    [1, "2", None],
    {},
    [],
    ("a", 1),
]


def _written(prepare, obj):
    """What reaches PostgreSQL: the value's text as psycopg dumps it for COPY (and for the
    arrays of an UPDATE), or the error on the way; and the warnings."""
    connection.ensure_connection()
    dumpers = Transformer(connection.connection)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = prepare(obj)
            text = None if value is None else dumpers.get_dumper(value, PyFormat.TEXT).dump(value)
    except Exception as exc:  # the class is what is compared
        return ("raises", type(exc).__name__)
    return (
        bytes(text) if text is not None else None,
        sorted({w.category.__name__ for w in caught}),
    )


def _models():
    return [
        m
        for m in apps.get_models()
        if m.__module__.split(".")[0] in ("tradingstate", "reconciliation", "killswitch")
    ]


@requires_postgres
@pytest.mark.parametrize(
    "add", [True, False, None], ids=["insert", "save-update", "attribute-update"]
)
def test_written_values_are_what_the_orm_writes_for_every_field_and_value(add, monkeypatch):
    """``preparer`` (COPY, UPDATE … FROM unnest) and ``insert_values`` (the hot path's
    statements) against the ORM's ``pre_save`` + ``get_db_prep_save``."""
    # given: a fixed clock (auto_now / auto_now_add stamp the row in pre_save)
    monkeypatch.setattr(timezone, "now", lambda: _AWARE)
    checked = 0
    for model in _models():
        for field in model._meta.concrete_fields:
            if field.primary_key:
                continue
            prepare = preparer(field, connection, add=add)
            paths = [lambda o, prepare=prepare: prepare(o, connection)]
            if add is not None:
                paths.append(lambda o, field=field: insert_values(o, [field], add=add)[0])
            for value in _VALUES:

                def django(o, field=field):
                    value = getattr(o, field.attname) if add is None else field.pre_save(o, add)
                    return field.get_db_prep_save(value, connection)

                for fast in paths:
                    # when: the same unsaved row prepared both ways
                    obj, orm = model(), model()
                    setattr(obj, field.attname, value)
                    setattr(orm, field.attname, value)
                    # then: the same value (type and text), warnings and errors
                    assert _written(fast, obj) == _written(django, orm), (
                        model,
                        field.name,
                        value,
                    )
                    # and the row keeps the same attribute (auto_now, auto_now_add set it)
                    assert repr(getattr(obj, field.attname)) == repr(getattr(orm, field.attname))
                    checked += 1
    assert checked > 1000
