"""A bot's fill (``services.fills.fill_record``): one read, one write.

Bench line: ``api endpoint=fill``. Before, a fill cost a locking read of the order, a read
of the trade, a locking read of the position, a read of the instrument, a savepoint, the
fill's insert, the savepoint's release, the order's update, the position's update and the
audit insert (10 statements inside the transaction).

- ``fill_read`` (one statement): the order under ``FOR UPDATE``, the fill already recorded
  for this trade (account, the order's symbol, trade id) if any, the order's position
  under ``FOR UPDATE`` if any, and the symbol's instrument if any (its accounting terms),
  in the service's lock order (Order, then Position). SQLite takes no row locks (its
  ``BEGIN IMMEDIATE`` already holds the database's write lock).
- ``fill_write`` (PostgreSQL: one statement, a writable CTE): the fill's insert (``ON
  CONFLICT DO NOTHING`` on the trade: a trade recorded meanwhile inserts nothing, and then
  nothing else is written), the order's and the position's new values (every column, as
  ``save()`` writes them) and the audit row naming the new fill. Elsewhere: four statements.

Only the statements are here: the figures written are the service's, from the pure rules
(``rules.fills.order_after_fill``, ``rules.accounting`` through
``services.accounting.position_accounting_apply``). The ``*_orm`` functions do the same
through the ORM, beside them for ``tests/integration/tradingstate/test_db_equivalence.py``.
"""

from __future__ import annotations

from functools import cache

from django.db import IntegrityError, connection, transaction

from tradingstate.db import execute
from tradingstate.db.rows import (
    all_fields,
    columns,
    insert_fields,
    insert_values,
    instance,
    placeholder,
    qn,
    update_fields,
)
from tradingstate.locks import order_qs_select_for_update, position_qs_select_for_update
from tradingstate.models import AuditEntry, Fill, Instrument, Order, Position

BENCH = "api endpoint=fill"
ORDER_KEEP = ("account", "client_order_id", "created_at")
POSITION_KEEP = ("account", "symbol")


@cache
def _read_sql(vendor: str, locked: bool = True) -> str:
    lock = " FOR UPDATE" if vendor == "postgresql" and locked else ""
    o, f, p, i = (all_fields(m) for m in (Order, Fill, Position, Instrument))
    return (
        f"WITH o AS MATERIALIZED (SELECT {columns(o)} FROM {qn(Order._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('account_id')} = %s AND {qn('client_order_id')} = %s{lock}), "
        f"p AS MATERIALIZED (SELECT {columns(p)} FROM {qn(Position._meta.db_table)} "
        f"WHERE {qn('account_id')} = %s AND {qn('symbol')} = (SELECT {qn('symbol')} FROM o)"
        f"{lock}) "
        f"SELECT {columns(o, 'o.')}, {columns(f, 'f.')}, {columns(p, 'p.')}, {columns(i, 'i.')} "
        f"FROM o LEFT JOIN {qn(Fill._meta.db_table)} f ON f.{qn('account_id')} = %s "
        f"AND f.{qn('symbol')} = o.{qn('symbol')} AND f.{qn('trade_id')} = %s "
        f"LEFT JOIN p ON TRUE "
        f"LEFT JOIN {qn(Instrument._meta.db_table)} i ON i.{qn('account_id')} = %s "
        f"AND i.{qn('symbol')} = o.{qn('symbol')}"
    )


def fill_read(*, account, client_order_id: str, trade_id: str, locked: bool = True):
    """``(order, existing_fill, position, instrument)``; all None when the account has no
    such order (then nothing is locked), the last three None when absent. ``locked=False``
    reads without locks (for ``fill_write_checked``)."""
    a = account.pk
    sql = _read_sql(connection.vendor, locked)
    rows = execute(sql, [a, client_order_id, a, a, trade_id, a], binary=True)
    if not rows:
        return None, None, None, None
    row = rows[0]
    out = []
    start = 0
    for model in (Order, Fill, Position, Instrument):
        fields = all_fields(model)
        values = row[start : start + len(fields)]
        start += len(fields)
        out.append(None if values[0] is None else instance(model, fields, values, binary=True))
    for obj in out:
        if obj is not None:
            obj.account = account
    order, fill, position, instrument = out
    if fill is not None and fill.order_id == order.pk:
        fill.order = order
    return order, fill, position, instrument


def fill_read_orm(*, account, client_order_id: str, trade_id: str):
    """``fill_read`` through the ORM (four statements)."""
    order = (
        order_qs_select_for_update()
        .filter(account=account, client_order_id=client_order_id)
        .first()
    )
    if order is None:
        return None, None, None, None
    fill = Fill.objects.filter(account=account, symbol=order.symbol, trade_id=trade_id).first()
    position = position_qs_select_for_update().filter(account=account, symbol=order.symbol).first()
    instrument = Instrument.objects.filter(account=account, symbol=order.symbol).first()
    return order, fill, position, instrument


def _set(fields) -> str:
    return ", ".join(f"{qn(f.column)} = {placeholder(f)}" for f in fields)


CONFLICT = "ON CONFLICT ({}, {}, {}) DO NOTHING"


def _conflict() -> str:
    return CONFLICT.format(qn("account_id"), qn("symbol"), qn("trade_id"))


@cache
def _write_sql(vendor: str, checked: bool = False) -> str:
    """The fill, the order's and position's new values and the audit row in one statement.

    ``checked``: first lock the order and then the position, each only if it still has the
    version the caller read (``FOR UPDATE`` in a materialized CTE: a row changed meanwhile
    is re-checked on its newest version, and fails); the fill goes in only if both were
    locked. The statement's last column counts the positions locked (0: a version moved)."""
    fill_fields = insert_fields(Fill)
    audit_fields = insert_fields(AuditEntry)
    order_fields = update_fields(Order, keep=ORDER_KEEP)
    position_fields = update_fields(Position, keep=POSITION_KEEP)
    audit_values = ", ".join(
        "CAST(fins.id AS varchar)" if f.name == "target_id" else placeholder(f)
        for f in audit_fields
    )
    if checked:
        ids = f"{qn('id')} = %s AND {qn('version')} = %s"
        head = (
            f"WITH lo AS MATERIALIZED (SELECT {qn('id')} FROM {qn(Order._meta.db_table)} "  # noqa: S608
            f"WHERE {ids} FOR UPDATE), "
            f"lp AS MATERIALIZED (SELECT {qn('id')} FROM {qn(Position._meta.db_table)} "
            f"WHERE {ids} AND EXISTS (SELECT 1 FROM lo) FOR UPDATE), "
            f"fins AS (INSERT INTO {qn(Fill._meta.db_table)} ({columns(fill_fields)}) "
            f"SELECT {', '.join(placeholder(f) for f in fill_fields)} "
            f"WHERE EXISTS (SELECT 1 FROM lp) {_conflict()} RETURNING {qn('id')}), "
        )
        locked = ", (SELECT count(*) FROM lp)"
    else:
        head = (
            f"WITH fins AS (INSERT INTO {qn(Fill._meta.db_table)} "  # noqa: S608
            f"({columns(fill_fields)}) VALUES "
            f"({', '.join(placeholder(f) for f in fill_fields)}) "
            f"{_conflict()} RETURNING {qn('id')}), "
        )
        locked = ""
    return (
        f"{head}"  # noqa: S608
        f"oupd AS (UPDATE {qn(Order._meta.db_table)} SET {_set(order_fields)} "
        f"WHERE {qn('id')} = %s AND EXISTS (SELECT 1 FROM fins) RETURNING {qn('id')}), "
        f"pupd AS (UPDATE {qn(Position._meta.db_table)} SET {_set(position_fields)} "
        f"WHERE {qn('id')} = %s AND EXISTS (SELECT 1 FROM fins) RETURNING {qn('id')}), "
        f"aud AS (INSERT INTO {qn(AuditEntry._meta.db_table)} ({columns(audit_fields)}) "
        f"SELECT {audit_values} FROM fins RETURNING {qn('id')}) "
        "SELECT (SELECT id FROM fins), (SELECT id FROM aud), (SELECT count(*) FROM oupd), "
        f"(SELECT count(*) FROM pupd){locked}"
    )


def fill_write(*, fill: Fill, order: Order, position: Position, audit: AuditEntry) -> bool:
    """Insert ``fill`` and, if its trade was not recorded yet, write ``order`` and
    ``position`` (saved rows, locked) and insert ``audit`` (its ``target_id`` filled from
    the new fill's id). False: the trade is recorded already (nothing written)."""
    if connection.vendor != "postgresql":
        fill_values = insert_values(fill, insert_fields(Fill))
        return _fill_write_portable(fill, order, position, audit, fill_values)
    params = _write_params(fill, order, position, audit)
    ((fill_id, audit_id, orders, positions),) = execute(_write_sql("postgresql"), params)
    return _written(fill, audit, fill_id, audit_id, orders, positions)


def checked_writes() -> bool:
    """Whether ``fill_write_checked`` is available (PostgreSQL's writable CTEs)."""
    return connection.vendor == "postgresql"


WRITTEN = "written"
RECORDED = "recorded"  # the trade is recorded already: nothing written
STALE = "stale"  # the order or the position changed since it was read: nothing written


def fill_write_checked(
    *,
    fill: Fill,
    order: Order,
    position: Position,
    audit: AuditEntry,
    read_versions: tuple[int, int],
) -> str:
    """``fill_write`` for rows read without a lock (PostgreSQL only; one statement, no
    transaction needed): written only if the order and the position still have
    ``read_versions`` (compare-and-set). ``WRITTEN``, ``RECORDED`` or ``STALE``."""
    order_version, position_version = read_versions
    params = [
        order.pk,
        order_version,
        position.pk,
        position_version,
        *_write_params(fill, order, position, audit),
    ]
    ((fill_id, audit_id, orders, positions, locked),) = execute(
        _write_sql("postgresql", checked=True), params
    )
    if not locked:
        return STALE
    return WRITTEN if _written(fill, audit, fill_id, audit_id, orders, positions) else RECORDED


def _write_params(fill, order, position, audit) -> list:
    """``_write_sql``'s parameters after its checks: the fill, the order's and position's
    new values with their ids, the audit row (its target is the new fill's id, in SQL)."""
    audit_values = [
        v
        for f, v in zip(insert_fields(AuditEntry), _audit_values(audit), strict=True)
        if f.name != "target_id"
    ]
    return [
        *insert_values(fill, insert_fields(Fill)),
        *insert_values(order, update_fields(Order, keep=ORDER_KEEP), add=False),
        order.pk,
        *insert_values(position, update_fields(Position, keep=POSITION_KEEP), add=False),
        position.pk,
        *audit_values,
    ]


def _written(fill, audit, fill_id, audit_id, orders, positions) -> bool:
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
        f"VALUES ({', '.join('%s' for _ in fill_fields)}) {_conflict()} RETURNING {qn('id')}"
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
