"""A bot's fill: one locking read, one write.

Bench line: ``api endpoint=fill``. Before, a fill cost a locking read of the order, a read
of the trade id, a savepoint, the fill's insert, the savepoint's release, the order's
update, a locking read of the position, its update and the audit insert (9 statements).

- ``fill_read`` (one statement): the order under ``FOR UPDATE``, the fill already recorded
  under this trade id (if any) and the order's position under ``FOR UPDATE`` (if any), in
  the service's lock order (Order, then Position). SQLite takes no row locks (its
  ``BEGIN IMMEDIATE`` already holds the database's write lock).
- ``fill_write`` (PostgreSQL: one statement): the fill's insert (a trade id recorded
  meanwhile on another order inserts nothing, and then nothing else is written), the
  order's and the position's new values (every column, as ``save()`` writes them), and the
  audit row naming the new fill. Elsewhere: four statements.

The ``*_orm`` functions do the same through the ORM, beside them for the equivalence test.
"""

from __future__ import annotations

from functools import cache

from django.db import IntegrityError, connection, transaction

from tradingstate.db import execute
from tradingstate.db.rows import (
    columns,
    insert_fields,
    insert_values,
    instance,
    placeholder,
    qn,
    update_fields,
)
from tradingstate.locks import order_qs_select_for_update, position_qs_select_for_update
from tradingstate.models import AuditEntry, Fill, Order, Position

BENCH = "api endpoint=fill"
ORDER_KEEP = ("account", "client_order_id", "created_at")
POSITION_KEEP = ("account", "symbol")


def _all(model) -> list:
    return list(model._meta.concrete_fields)


@cache
def _read_sql(vendor: str) -> str:
    lock = " FOR UPDATE" if vendor == "postgresql" else ""
    o, f, p = _all(Order), _all(Fill), _all(Position)
    return (
        f"WITH o AS (SELECT {columns(o)} FROM {qn(Order._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('account_id')} = %s AND {qn('client_order_id')} = %s{lock}), "
        f"p AS MATERIALIZED (SELECT {columns(p)} FROM {qn(Position._meta.db_table)} "
        f"WHERE {qn('account_id')} = %s AND {qn('symbol')} = (SELECT {qn('symbol')} FROM o)"
        f"{lock}) "
        f"SELECT {columns(o, 'o.')}, {columns(f, 'f.')}, {columns(p, 'p.')} FROM o "
        f"LEFT JOIN {qn(Fill._meta.db_table)} f ON f.{qn('account_id')} = %s "
        f"AND f.{qn('trade_id')} = %s LEFT JOIN p ON TRUE"
    )


def fill_read(*, account, client_order_id: str, trade_id: str):
    """``(order, existing_fill, position)``; ``order`` None when the account has no such
    order (then nothing is locked), the others None when absent."""
    rows = execute(
        _read_sql(connection.vendor),
        [account.pk, client_order_id, account.pk, account.pk, trade_id],
    )
    if not rows:
        return None, None, None
    row = rows[0]
    o, f, p = _all(Order), _all(Fill), _all(Position)
    order = instance(Order, o, row[: len(o)])
    fill_values = row[len(o) : len(o) + len(f)]
    position_values = row[len(o) + len(f) :]
    fill = None if fill_values[0] is None else instance(Fill, f, fill_values)
    position = None if position_values[0] is None else instance(Position, p, position_values)
    for obj in (order, fill, position):
        if obj is not None:
            obj.account = account
    return order, fill, position


def fill_read_orm(*, account, client_order_id: str, trade_id: str):
    """``fill_read`` through the ORM (three statements)."""
    order = (
        order_qs_select_for_update()
        .filter(account=account, client_order_id=client_order_id)
        .first()
    )
    if order is None:
        return None, None, None
    fill = Fill.objects.filter(account=account, trade_id=trade_id).first()
    position = position_qs_select_for_update().filter(account=account, symbol=order.symbol).first()
    return order, fill, position


def _set(fields) -> str:
    return ", ".join(f"{qn(f.column)} = {placeholder(f)}" for f in fields)


@cache
def _write_sql(vendor: str) -> str:
    fill_fields = insert_fields(Fill)
    audit_fields = insert_fields(AuditEntry)
    order_fields = update_fields(Order, keep=ORDER_KEEP)
    position_fields = update_fields(Position, keep=POSITION_KEEP)
    audit_values = ", ".join(
        "CAST(fins.id AS varchar)" if f.name == "target_id" else placeholder(f)
        for f in audit_fields
    )
    return (
        f"WITH fins AS (INSERT INTO {qn(Fill._meta.db_table)} "  # noqa: S608
        f"({columns(fill_fields)}) VALUES ({', '.join(placeholder(f) for f in fill_fields)}) "
        f"ON CONFLICT ({qn('account_id')}, {qn('trade_id')}) DO NOTHING RETURNING {qn('id')}), "
        f"oupd AS (UPDATE {qn(Order._meta.db_table)} SET {_set(order_fields)} "
        f"WHERE {qn('id')} = %s AND EXISTS (SELECT 1 FROM fins) RETURNING {qn('id')}), "
        f"pupd AS (UPDATE {qn(Position._meta.db_table)} SET {_set(position_fields)} "
        f"WHERE {qn('id')} = %s AND EXISTS (SELECT 1 FROM fins) RETURNING {qn('id')}), "
        f"aud AS (INSERT INTO {qn(AuditEntry._meta.db_table)} ({columns(audit_fields)}) "
        f"SELECT {audit_values} FROM fins RETURNING {qn('id')}) "
        "SELECT (SELECT id FROM fins), (SELECT id FROM aud), (SELECT count(*) FROM oupd), "
        "(SELECT count(*) FROM pupd)"
    )


def _values(obj, fields, *, add: bool) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, add), connection) for f in fields]


def fill_write(*, fill: Fill, order: Order, position: Position, audit: AuditEntry) -> bool:
    """Insert ``fill`` and, if its trade id was free, write ``order`` and ``position`` (saved
    rows, locked) and insert ``audit`` (its ``target_id`` filled from the new fill's id).
    False: the trade id is taken (nothing written)."""
    fill_values = insert_values(fill, insert_fields(Fill))
    if connection.vendor != "postgresql":
        return _fill_write_portable(fill, order, position, audit, fill_values)
    order_values = _values(order, update_fields(Order, keep=ORDER_KEEP), add=False)
    position_values = _values(position, update_fields(Position, keep=POSITION_KEEP), add=False)
    audit_values = [
        v
        for f, v in zip(insert_fields(AuditEntry), _audit_values(audit), strict=True)
        if f.name != "target_id"
    ]
    params = [
        *fill_values,
        *order_values,
        order.pk,
        *position_values,
        position.pk,
        *audit_values,
    ]
    ((fill_id, audit_id, orders, positions),) = execute(_write_sql("postgresql"), params)
    if fill_id is None:
        return False
    if (orders, positions) != (1, 1):  # the rows are locked: this cannot happen
        raise RuntimeError(f"fill write touched orders={orders} positions={positions}")
    fill.pk, audit.pk = fill_id, audit_id
    fill._state.adding = audit._state.adding = False
    audit.target_id = str(fill_id)
    return True


def _audit_values(audit: AuditEntry) -> list:
    return insert_values(audit, insert_fields(AuditEntry))


@cache
def _fill_insert_sql() -> str:
    fill_fields = insert_fields(Fill)
    return (
        f"INSERT INTO {qn(Fill._meta.db_table)} ({columns(fill_fields)}) "  # noqa: S608
        f"VALUES ({', '.join('%s' for _ in fill_fields)}) "
        f"ON CONFLICT ({qn('account_id')}, {qn('trade_id')}) DO NOTHING RETURNING {qn('id')}"
    )


def _fill_write_portable(fill, order, position, audit, fill_values) -> bool:
    rows = execute(_fill_insert_sql(), fill_values)
    if not rows:
        return False
    fill.pk = rows[0][0]
    fill._state.adding = False
    order.save(update_fields=[f.name for f in update_fields(Order, keep=ORDER_KEEP)])
    position.save(update_fields=[f.name for f in update_fields(Position, keep=POSITION_KEEP)])
    audit.target_id = str(fill.pk)
    audit.save(force_insert=True)
    return True


def fill_write_orm(*, fill: Fill, order: Order, position: Position, audit: AuditEntry) -> bool:
    """``fill_write`` through the ORM (a savepointed insert, two saves, the audit row)."""
    try:
        with transaction.atomic():
            fill.save(force_insert=True)
    except IntegrityError:
        return False
    order.save()
    position.save()
    audit.target_id = str(fill.pk)
    audit.save(force_insert=True)
    return True
