"""A bot's order registration and transition: their writes, each with its audit row.

Bench lines: ``api endpoint=register`` (``order_insert``) and ``api endpoint=transition``
(``order_update``). Before, a registration ran an existence check, two instrument reads,
a savepoint, the insert, the savepoint's release and the audit insert (7 statements); a
transition's write and audit insert were two.

``order_insert`` (PostgreSQL: ONE statement) inserts the order only if its symbol is one of
the account's instruments (or the account lists none) and, with ``recovery_gate``, the
account is not in restart recovery; ``ON CONFLICT DO NOTHING`` on
``(account, client_order_id)`` makes a concurrent duplicate a no-op instead of an error (so
no savepoint is needed); the audit row is inserted from the order's new id in the same
statement. Elsewhere (SQLite, which has no writable CTE): the guarded insert, then the
audit row (two statements).

A ``Guard`` (given by a layer above, e.g. the kill switch) adds a precondition read in the
same statement: its rows are locked ``FOR SHARE`` before the insert, and the order goes in
only if exactly ``rows`` came back and none refuses. The statement then needs no
transaction around it (autocommit: it is atomic on its own), so a guarded registration on
PostgreSQL is this one round trip.

``order_update`` (PostgreSQL: ONE statement) writes the given columns of a locked order and
inserts its audit row. Elsewhere: two statements.

The ``*_orm`` functions do the same through the ORM, beside them for the equivalence test
(``tests/integration/tradingstate/test_db_equivalence.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import IntegrityError, connection, transaction

from tradingstate.db import execute, fetch_all
from tradingstate.db.rows import (
    all_fields,
    columns,
    insert_fields,
    insert_values,
    instance,
    placeholder,
    qn,
)
from tradingstate.models import AuditEntry, ExchangeAccount, Instrument, Order

BENCH_REGISTER = "api endpoint=register"
BENCH_TRANSITION = "api endpoint=transition"


@dataclass(frozen=True)
class Guard:
    """A precondition for the insert, from the layer that owns the rule.

    ``sql`` is a ``SELECT`` of one boolean column (true: this row refuses the insert) ending
    in its locking clause (``FOR SHARE``); ``rows`` is how many rows it must return (fewer:
    a row is missing, and the insert does not happen: the caller must create the rows and
    decide on its own)."""

    sql: str
    params: tuple
    rows: int


@dataclass(frozen=True)
class Inserted:
    """``inserted``: the order row is new (``order.pk`` set). Otherwise why not:
    ``known_symbol`` False, ``recovering`` True (only checked with the gate), ``refused``
    True (a guard row refused), ``guard_incomplete`` True (the guard found fewer rows than
    it needs), or none of these (a row with that ``client_order_id`` exists)."""

    inserted: bool
    known_symbol: bool
    recovering: bool
    refused: bool = False
    guard_incomplete: bool = False


def _gate_sql() -> tuple[str, str]:
    instruments = qn(Instrument._meta.db_table)
    accounts = qn(ExchangeAccount._meta.db_table)
    return (
        f"(NOT EXISTS (SELECT 1 FROM {instruments} WHERE {qn('account_id')} = %s) "  # noqa: S608
        f"OR EXISTS (SELECT 1 FROM {instruments} WHERE {qn('account_id')} = %s "
        f"AND {qn('symbol')} = %s))",
        f"(%s AND EXISTS (SELECT 1 FROM {accounts} WHERE {qn('id')} = %s "  # noqa: S608
        f"AND {qn('recovery_started_at')} IS NOT NULL))",
    )


def _gate_params(order: Order, recovery_gate: bool) -> tuple[list, list]:
    a = order.account_id
    return [a, a, order.symbol], [recovery_gate, a]


@cache
def _insert_sql(vendor: str, guard_sql: str | None = None) -> str:
    known, recovering = _gate_sql()
    order_fields = insert_fields(Order)
    order_table = qn(Order._meta.db_table)
    conflict = f"ON CONFLICT ({qn('account_id')}, {qn('client_order_id')}) DO NOTHING"
    if vendor != "postgresql":
        return (
            f"INSERT INTO {order_table} ({columns(order_fields)}) "
            f"SELECT {', '.join('%s' for _ in order_fields)} "
            f"WHERE {known} AND NOT {recovering} {conflict} RETURNING {qn('id')}"
        )
    audit_fields = insert_fields(AuditEntry)
    audit_values = ", ".join(
        "CAST(ins.id AS varchar)" if f.name == "target_id" else placeholder(f) for f in audit_fields
    )
    if guard_sql is None:
        guard, guard_cols, guard_ok = "", "0 AS guard_rows, false AS refused", "true"
    else:
        # MATERIALIZED: the guard's rows are read and locked once, before the insert reads gate
        guard = f"guard(refuses) AS MATERIALIZED ({guard_sql}), "
        guard_cols = (
            "(SELECT count(*) FROM guard) AS guard_rows, "
            "COALESCE((SELECT bool_or(refuses) FROM guard), false) AS refused"
        )
        guard_ok = "gate.guard_rows = %s AND NOT gate.refused"
    return (
        f"WITH {guard}gate AS (SELECT {known} AS known, {recovering} AS recovering, "  # noqa: S608
        f"{guard_cols}), "
        f"ins AS (INSERT INTO {order_table} ({columns(order_fields)}) "
        f"SELECT {', '.join(placeholder(f) for f in order_fields)} FROM gate "
        f"WHERE gate.known AND NOT gate.recovering AND {guard_ok} {conflict} "
        f"RETURNING {qn('id')}), "
        f"aud AS (INSERT INTO {qn(AuditEntry._meta.db_table)} ({columns(audit_fields)}) "
        f"SELECT {audit_values} FROM ins RETURNING {qn('id')}) "
        "SELECT (SELECT id FROM ins), (SELECT id FROM aud), gate.known, gate.recovering, "
        "gate.guard_rows, gate.refused FROM gate"
    )


def guard_supported() -> bool:
    """Whether ``order_insert`` takes a ``guard`` here (one statement: PostgreSQL)."""
    return connection.vendor == "postgresql"


def order_insert(
    order: Order, audit: AuditEntry, *, recovery_gate: bool = False, guard: Guard | None = None
) -> Inserted:
    """Insert ``order`` (unsaved) and, if it went in, ``audit`` (its unsaved ``order.register``
    entry, whose ``target_id`` is filled from the new id). See the module docstring."""
    known_params, recovering_params = _gate_params(order, recovery_gate)
    order_values = insert_values(order, insert_fields(Order))
    if guard is not None and not guard_supported():
        raise ValueError("a guard needs one statement: PostgreSQL only (see guard_supported)")
    sql = _insert_sql(connection.vendor, guard.sql if guard is not None else None)
    if connection.vendor == "postgresql":
        audit_values = [
            v
            for f, v in zip(insert_fields(AuditEntry), _audit_values(audit), strict=True)
            if f.name != "target_id"
        ]
        guard_params = [] if guard is None else [*guard.params]
        expected = [] if guard is None else [guard.rows]
        params = [
            *guard_params,
            *known_params,
            *recovering_params,
            *order_values,
            *expected,
            *audit_values,
        ]
        (order_id, audit_id, known, recovering, found, refused), *_ = execute(sql, params)
        if order_id is None:
            return Inserted(
                False,
                bool(known),
                bool(recovering),
                refused=bool(refused),
                guard_incomplete=guard is not None and found != guard.rows,
            )
        order.pk, audit.pk = order_id, audit_id
        order._state.adding, audit._state.adding = False, False
        audit.target_id = str(order_id)
        return Inserted(True, True, False)
    rows = execute(sql, [*order_values, *known_params, *recovering_params])
    if not rows:
        return _why_not(order, recovery_gate)
    order.pk = rows[0][0]
    order._state.adding = False
    audit.target_id = str(order.pk)
    audit.save(force_insert=True)
    return Inserted(True, True, False)


def _audit_values(audit: AuditEntry) -> list:
    return insert_values(audit, insert_fields(AuditEntry))


def _why_not(order: Order, recovery_gate: bool) -> Inserted:
    """Why a guarded insert inserted nothing (a cold path: one read)."""
    known, recovering = _gate_sql()
    known_params, recovering_params = _gate_params(order, recovery_gate)
    ((k, r),) = execute(f"SELECT {known}, {recovering}", [*known_params, *recovering_params])
    return Inserted(False, bool(k), bool(r))


def order_insert_orm(order: Order, audit: AuditEntry, *, recovery_gate: bool = False) -> Inserted:
    """``order_insert`` through the ORM: the gate's reads, a savepointed insert, the audit
    row (up to 7 statements)."""
    instruments = Instrument.objects.filter(account_id=order.account_id)
    known = not instruments.exists() or instruments.filter(symbol=order.symbol).exists()
    recovering = (
        recovery_gate
        and ExchangeAccount.objects.filter(
            pk=order.account_id, recovery_started_at__isnull=False
        ).exists()
    )
    if not known or recovering:
        return Inserted(False, known, recovering)
    try:
        with transaction.atomic():
            order.save(force_insert=True)
    except IntegrityError:
        return Inserted(False, True, False)
    audit.target_id = str(order.pk)
    audit.save(force_insert=True)
    return Inserted(True, True, False)


@cache
def _read_sql(vendor: str) -> str:
    fields = Order._meta.concrete_fields
    return (
        f"SELECT {columns(fields)} FROM {qn(Order._meta.db_table)} "  # noqa: S608
        f"WHERE {qn('account_id')} = %s AND {qn('client_order_id')} = %s"
    )


def order_read(*, account_id: int, client_order_id: str) -> Order | None:
    """The account's order under ``client_order_id``, unlocked, or None: one prepared
    statement (bench line ``api endpoint=transition``; building the ORM's query for it cost
    more than running it)."""
    rows = fetch_all(_read_sql(connection.vendor), [account_id, client_order_id], binary=True)
    if not rows:
        return None
    return instance(Order, all_fields(Order), rows[0], binary=True)


def order_read_orm(*, account_id: int, client_order_id: str) -> Order | None:
    """``order_read`` through the ORM."""
    return Order.objects.filter(account_id=account_id, client_order_id=client_order_id).first()


@cache
def _update_sql(vendor: str, fields: tuple[str, ...], checked: bool = False) -> str:
    order_fields = [Order._meta.get_field(name) for name in fields]
    sets = ", ".join(f"{qn(f.column)} = {placeholder(f)}" for f in order_fields)
    where = f"{qn('id')} = %s" + (f" AND {qn('version')} = %s" if checked else "")
    update = f"UPDATE {qn(Order._meta.db_table)} SET {sets} WHERE {where}"  # noqa: S608
    if vendor != "postgresql":
        return update
    audit_fields = insert_fields(AuditEntry)
    return (
        f"WITH upd AS ({update} RETURNING {qn('id')}) "  # noqa: S608
        f"INSERT INTO {qn(AuditEntry._meta.db_table)} ({columns(audit_fields)}) "
        f"SELECT {', '.join(placeholder(f) for f in audit_fields)} FROM upd "
        f"RETURNING {qn('id')}"
    )


def order_update(
    order: Order, fields: tuple[str, ...], audit: AuditEntry, *, if_version: int | None = None
) -> bool:
    """Write ``fields`` of the saved ``order`` and insert ``audit``; ``auto_now`` columns
    among ``fields`` are set as ``save`` would set them.

    The order is locked by the caller, or ``if_version`` names the version it was read at:
    then the row is written only if it still has that version (compare-and-set, one
    statement on PostgreSQL, no lock held before it), and False says another change came
    first (nothing written)."""
    order_fields = [Order._meta.get_field(name) for name in fields]
    values = [f.get_db_prep_save(f.pre_save(order, False), connection) for f in order_fields]
    checked = if_version is not None
    sql = _update_sql(connection.vendor, tuple(fields), checked)
    where = [order.pk, if_version] if checked else [order.pk]
    if connection.vendor == "postgresql":
        rows = execute(sql, [*values, *where, *_audit_values(audit)])
        if not rows:
            if checked:
                return False
            raise Order.DoesNotExist(f"order {order.pk} is gone")
        audit.pk = rows[0][0]
        audit._state.adding = False
        return True
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, *where])
        if cursor.rowcount != 1 and checked:
            return False
    audit.save(force_insert=True)
    return True


def order_update_orm(order: Order, fields: tuple[str, ...], audit: AuditEntry) -> None:
    """``order_update`` through the ORM (two statements)."""
    order.save(update_fields=fields)
    audit.save(force_insert=True)
