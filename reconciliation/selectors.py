"""Reads for reconciliation: the local snapshot of an account, runs and discrepancies, the
console's and the health check's figures."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Count, F, Max, OuterRef, Q, Subquery
from django_q.models import Success

from reconciliation.diff import (
    LocalBalance,
    LocalFill,
    LocalOrder,
    LocalPosition,
    LocalSnapshot,
)
from reconciliation.models import Discrepancy, ReconciliationRun, WorkerHeartbeat
from tradingstate import db
from tradingstate.db.compiled import CompiledRead
from tradingstate.db.rows import all_fields, instance
from tradingstate.exchanges.base import ExchangeOrder, ExchangeTrade
from tradingstate.models import Balance, ExchangeAccount, Fill, Instrument, Order, Position
from tradingstate.selectors.orders import order_rows_named

ORDER_FIELDS = (
    "id",
    "client_order_id",
    "exchange_order_id",
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "filled_qty",
    "avg_fill_price",
    "status",
    "updated_at",
    "version",
    "fills_qty",
    "created_at",
)
IN_CHUNK = 5000

# The pass's fixed-shape reads, compiled once per database (tradingstate.db.compiled): in no
# particular order (the models' default ``-id`` ordering made PostgreSQL walk the primary
# key backwards, filtering every row).
ACCOUNT_FIELDS = all_fields(ExchangeAccount)  # with its attnames and converters, worked out once
_ACCOUNT = CompiledRead(
    lambda pk: (
        ExchangeAccount.objects.filter(pk=pk)
        .order_by()
        .values_list(*(f.attname for f in ACCOUNT_FIELDS))
    )
)
_POSITIONS = CompiledRead(
    lambda account_id: (
        Position.objects.filter(account_id=account_id)
        .order_by()
        .values_list("id", "symbol", "qty", "entry_price", "version")
    )
)
_BALANCES = CompiledRead(
    lambda account_id: (
        Balance.objects.filter(account_id=account_id)
        .order_by()
        .values_list("id", "currency", "free", "used", "total", "version")
    )
)
_ACTIVE_ORDERS = CompiledRead(
    lambda account_id: (
        Order.objects.filter(account_id=account_id, status__in=Order.ACTIVE_STATUSES)
        .order_by()
        .values_list(*ORDER_FIELDS)
    )
)
_INSTRUMENTS = CompiledRead(
    lambda account_id: (
        Instrument.objects.filter(account_id=account_id)
        .order_by("symbol")
        .values_list("symbol", "amount_step", "base", "quote", "settle")
    )
)


RUN_FIELDS = all_fields(ReconciliationRun)
_RUN = CompiledRead(
    lambda pk, account_id: (
        ReconciliationRun.objects.filter(pk=pk, account_id=account_id)
        .order_by()
        .values_list(*(f.attname for f in RUN_FIELDS))
    ),
    2,
)
_RUN_QUEUED = CompiledRead(
    lambda pk: (
        ReconciliationRun.objects.filter(pk=pk)
        .order_by()
        .values_list("status", "dry_run", "account_id", "account__enabled")
    )
)
_ACCOUNT_ENABLED = CompiledRead(
    lambda pk: ExchangeAccount.objects.filter(pk=pk).order_by().values_list("enabled")
)


def run_of_account(pk: int, account_id: int) -> ReconciliationRun | None:
    """The run ``pk`` if it is the account's, as the ORM reads it, its statement compiled
    once (a pass's queued run)."""
    if connection.vendor != "postgresql":
        return ReconciliationRun.objects.filter(pk=pk, account_id=account_id).first()
    rows = db.fetch_all(*_RUN.statement(pk, account_id))  # text results: the converters
    return instance(ReconciliationRun, RUN_FIELDS, rows[0]) if rows else None


def run_queued_state(pk: int) -> tuple[str, bool, int, bool] | None:
    """(status, dry_run, account id, the account's ``enabled``) of a queued run, or None."""
    rows = _RUN_QUEUED.rows(pk)
    return tuple(rows[0]) if rows else None


def account_enabled(pk: int) -> bool | None:
    """The account's ``enabled``; None if there is no such account."""
    rows = _ACCOUNT_ENABLED.rows(pk)
    return bool(rows[0][0]) if rows else None


def account_for_pass(pk: int) -> ExchangeAccount:
    """The account row as ``ExchangeAccount.objects.get(pk=pk)`` reads it (DoesNotExist if
    there is none), its statement compiled once."""
    if connection.vendor != "postgresql":
        return ExchangeAccount.objects.get(pk=pk)
    rows = db.fetch_all(*_ACCOUNT.statement(pk))  # text results: the fields' converters
    if not rows:
        raise ExchangeAccount.DoesNotExist("ExchangeAccount matching query does not exist.")
    return instance(ExchangeAccount, ACCOUNT_FIELDS, rows[0])


def local_books(*, account: ExchangeAccount) -> tuple[list[LocalPosition], list[LocalBalance]]:
    """The account's positions and balances with their versions.

    A pass reads them BEFORE it asks the exchange: a fill recorded while the exchange's
    (older) snapshot is in flight then bumps the version, and the repair planned from that
    snapshot is deferred instead of overwriting the fill.
    """
    positions = [LocalPosition(*row) for row in _POSITIONS.rows(account.pk)]
    balances = [LocalBalance(*row) for row in _BALANCES.rows(account.pk)]
    return positions, balances


def local_snapshot(
    *,
    account: ExchangeAccount,
    exchange_orders: list[ExchangeOrder] | None,
    books: tuple[list[LocalPosition], list[LocalBalance]] | None = None,
) -> LocalSnapshot:
    """Active local orders, plus any local order the exchange lists as open (whatever its
    local status), positions and balances. A fixed number of statements for any size."""
    orders = {o.id: o for o in map(LocalOrder._make, _ACTIVE_ORDERS.rows(account.pk))}
    if exchange_orders:
        known_coids = {o.client_order_id for o in orders.values()}
        known_exids = {o.exchange_order_id for o in orders.values() if o.exchange_order_id}
        coids = [o.client_order_id for o in exchange_orders if o.client_order_id not in known_coids]
        exids = [
            o.exchange_order_id for o in exchange_orders if o.exchange_order_id not in known_exids
        ]
        # PostgreSQL takes the whole list in one statement; SQLite caps its parameters
        chunk = max(len(coids), len(exids), 1) if connection.vendor == "postgresql" else IN_CHUNK
        for start in range(0, max(len(coids), len(exids)), chunk):
            rows = order_rows_named(
                account_id=account.pk,
                client_order_ids=coids[start : start + chunk],
                exchange_order_ids=exids[start : start + chunk],
                fields=ORDER_FIELDS,
            )
            for o in _local_order_rows(rows):
                orders.setdefault(o.id, o)
    if books is None:
        books = local_books(account=account)
    positions, balances = books
    return LocalSnapshot(orders=list(orders.values()), positions=positions, balances=balances)


def _local_order_rows(rows) -> list[LocalOrder]:
    """Rows of a ``values_list(*ORDER_FIELDS)`` (a union too) as LocalOrder, in no
    particular order (the model's default ``-id`` ordering made PostgreSQL walk the primary
    key backwards, filtering every row: build it with ``order_by()``). On PostgreSQL the
    statement runs with binary results (``tradingstate.db.fetch_all``): psycopg's C loaders
    return Decimal and aware datetimes as the ORM would, without Django's per-value
    converters or its pure-Python ``timestamptz`` text loader (most of the cost of reading
    ten thousand orders). SQLite needs the converters (its amounts are stored as encoded
    text)."""
    if connection.vendor != "postgresql":
        return [LocalOrder._make(row) for row in rows.iterator(chunk_size=5000)]
    sql, params = rows.query.sql_with_params()
    return list(map(LocalOrder._make, db.fetch_all(sql, params, binary=True)))


def _chunks(values: list, size: int | None = None):
    """The whole list on PostgreSQL (one array parameter); SQLite caps its parameters."""
    values = list(values)
    if not values:
        return
    chunk = len(values) if connection.vendor == "postgresql" else (size or IN_CHUNK)
    for start in range(0, len(values), chunk):
        yield values[start : start + chunk]


def local_fills(
    *, account: ExchangeAccount, trades: list[ExchangeTrade] | None
) -> dict[tuple[str, str], LocalFill]:
    """The recorded fills the venue's trades name, by (symbol, trade_id): one statement."""
    if not trades:
        return {}
    wanted = {(t.symbol, t.trade_id) for t in trades}
    out = {}
    for ids in _chunks(sorted({t.trade_id for t in trades})):
        for row in Fill.objects.filter(account=account, trade_id__any=ids).values_list(
            "id",
            "symbol",
            "trade_id",
            "order_id",
            "quantity",
            "price",
            "fee",
            "fee_currency",
            "inferred",
        ):
            fill = LocalFill(*row)
            if (fill.symbol, fill.trade_id) in wanted:
                out[(fill.symbol, fill.trade_id)] = fill
    return out


def local_fill_orders(
    *, account: ExchangeAccount, trades: list[ExchangeTrade] | None, known: set[int]
) -> list[LocalOrder]:
    """Orders a fills pass needs beyond the active ones: those whose filled quantity is not
    the sum of their fills (any status), and those the venue's trades name. One statement:
    a union, each part through its own index (the first is a partial index: few rows,
    however long the account's history; an OR of the three made PostgreSQL scan every
    order of the account, as it cannot estimate the first)."""
    exids = sorted({t.exchange_order_id for t in trades or [] if t.exchange_order_id})
    coids = sorted({t.client_order_id for t in trades or [] if t.client_order_id})
    lists = [values for values in (exids, coids) if values]
    read = _FILL_ORDERS[(bool(exids), bool(coids))]
    if connection.vendor != "postgresql":
        rows = read.queryset(account.pk, *lists).iterator(chunk_size=5000)
    else:
        rows = db.fetch_all(*read.statement(account.pk, *lists), binary=True)
    return [o for o in map(LocalOrder._make, rows) if o.id not in known]


def _fill_orders(exids: bool, coids: bool) -> CompiledRead:
    """``local_fill_orders``'s union for an account (and the trades' exchange and client
    order ids, where there are some)."""

    def build(account_id, *lists):
        orders = Order.objects.filter(account_id=account_id)
        parts = [orders.filter(~Q(filled_qty=F("fills_qty")))]
        values = iter(lists)
        if exids:
            parts.append(orders.filter(exchange_order_id__any=next(values)))
        if coids:
            parts.append(orders.filter(client_order_id__any=next(values)))
        rows = [q.order_by().values_list(*ORDER_FIELDS) for q in parts]
        return rows[0].union(*rows[1:]) if len(rows) > 1 else rows[0]

    arity = 1 + exids + coids
    return CompiledRead(build, arity, lists=tuple(range(1, arity)))


_FILL_ORDERS = {(e, c): _fill_orders(e, c) for e in (False, True) for c in (False, True)}


def previous_run_findings(*, account: ExchangeAccount) -> dict[tuple[str, str], tuple[int, dict]]:
    """The account's previous finished pass's discrepancies: (type, key) -> (consecutive_runs,
    exchange_value). One query, read before the pass's diff (the pass holds the account's
    lease, so no other pass finishes meanwhile)."""
    if connection.vendor == "postgresql":  # binary results: jsonb loaded by psycopg
        rows = db.fetch_all(*_PREVIOUS_FINDINGS.statement(account.pk), binary=True)
    else:
        rows = _PREVIOUS_FINDINGS.queryset(account.pk)
    return {(t, k): (n, seen) for t, k, n, seen in rows}


_PREVIOUS_FINDINGS = CompiledRead(
    lambda account_id: Discrepancy.objects.filter(
        run_id=Subquery(_runs_before(account=account_id, before_id=None).values("id")[:1])
    ).values_list("type", "key", "consecutive_runs", "exchange_value")
)


def discrepancies_open_before(*, account: ExchangeAccount, run_id: int) -> list[tuple]:
    """(pk, type, key, entity) of the account's open discrepancies of other runs than
    ``run_id`` (one statement, compiled once)."""
    return _OPEN_ELSEWHERE.rows(account.pk, run_id)


_OPEN_ELSEWHERE = CompiledRead(
    lambda account_id, run_id: (
        Discrepancy.objects.filter(account_id=account_id, status=Discrepancy.Status.OPEN)
        .exclude(run_id=run_id)
        .values_list("pk", "type", "key", "entity")
    ),
    arity=2,
)


def stale_not_found_counts(previous: dict) -> dict[str, tuple[int, datetime]]:
    """Per stale order (client order id), how many consecutive passes the venue answered
    "not found" and when it last did: the previous pass's ``stale_local_order`` rows (their
    ``exchange_value``); a pass that did not see it again starts over."""
    out = {}
    for (typ, key), (_n, seen) in previous.items():
        if typ != "stale_local_order" or not isinstance(seen, dict):
            continue
        passes, at = seen.get("not_found_passes"), seen.get("not_found_at")
        if passes and at:
            out[key] = (int(passes), datetime.fromisoformat(at))
    return out


def amount_steps(*, account: ExchangeAccount) -> dict[str, Decimal]:
    return dict(Instrument.objects.filter(account=account).values_list("symbol", "amount_step"))


def instrument_terms(*, account: ExchangeAccount) -> dict[str, tuple[Decimal, str, str, str]]:
    """symbol -> (amount step, base, quote, settle) of the account's instruments (one query)."""
    return {
        symbol: (step, base, quote, settle)
        for symbol, step, base, quote, settle in _INSTRUMENTS.rows(account.pk)
    }


def _runs_before(*, account: ExchangeAccount | int, before_id: int | None):
    qs = ReconciliationRun.objects.filter(
        account=account,
        status__in=[ReconciliationRun.Status.COMPLETED, ReconciliationRun.Status.INCOMPLETE],
    )
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    return qs.order_by("-id")


def discrepancy_counts_previous_run(
    *, account: ExchangeAccount, before_id: int | None
) -> dict[tuple[str, str], int]:
    """``consecutive_runs`` by (type, key) in the account's previous finished pass (one query)."""
    previous = _runs_before(account=account, before_id=before_id).values("id")[:1]
    return {
        (t, k): n
        for t, k, n in Discrepancy.objects.filter(run_id=Subquery(previous)).values_list(
            "type", "key", "consecutive_runs"
        )
    }


# --- runs and discrepancies, for the API, the admin and the console -----------------------
def run_list(*, account: ExchangeAccount):
    return ReconciliationRun.objects.filter(account=account).select_related("account")


def discrepancy_list(*, account: ExchangeAccount):
    return Discrepancy.objects.filter(account=account)


def discrepancy_list_by_run(*, run_ids: list[int]) -> dict[int, list[Discrepancy]]:
    """The runs' discrepancies, oldest first, grouped by run (one query)."""
    rows: dict[int, list[Discrepancy]] = {}
    for d in Discrepancy.objects.filter(run_id__in=run_ids).order_by("id"):
        rows.setdefault(d.run_id, []).append(d)
    return rows


def last_exchange_value(*, account_id: int, type: str, key: str) -> dict | None:
    """The exchange's value in the newest discrepancy of this type and key (for the
    correction forms), or None when reconciliation never reported one."""
    return (
        Discrepancy.objects.filter(account_id=account_id, type=type, key=key)
        .order_by("-id")
        .values("exchange_value", "created_at", "run_id")
        .first()
    )


def account_list_with_last_pass():
    """Every account with its newest finished run's id, status and end (one query)."""
    last = ReconciliationRun.objects.filter(
        account=OuterRef("pk"), status__in=ReconciliationRun.FINISHED_STATUSES
    ).order_by("-id")
    return ExchangeAccount.objects.annotate(
        last_run_id=Subquery(last.values("id")[:1]),
        last_run_status=Subquery(last.values("status")[:1]),
        last_run_at=Subquery(last.values("finished_at")[:1]),
    ).order_by("name")


def discrepancy_open_counts() -> dict[int, dict[str, tuple[int, int]]]:
    """Open discrepancies per account and type: (count, of them persistent). One query."""
    counts: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for account_id, typ, n, persistent in (
        Discrepancy.objects.filter(status=Discrepancy.Status.OPEN)
        .values("account_id", "type")
        .annotate(n=Count("id"), p=Count("id", filter=Q(persistent=True)))
        .values_list("account_id", "type", "n", "p")
        .order_by()
    ):
        counts[account_id][typ] = (n, persistent)
    return counts


def run_points_since(*, since: datetime, statuses) -> Iterator[tuple[int, datetime, int, str]]:
    """(account_id, created_at, discrepancies_found, status) of the runs since ``since``."""
    return (
        ReconciliationRun.objects.filter(created_at__gte=since, status__in=statuses)
        .values_list("account_id", "created_at", "discrepancies_found", "status")
        .order_by()
        .iterator(chunk_size=5000)
    )


# --- worker and pass liveness, for /api/v1/health/ ------------------------------------------
def worker_last_seen() -> tuple[datetime | None, str]:
    """The newest sign of life from the worker: the ticker's heartbeat, a successful
    django-q2 task, or a finished reconciliation pass."""
    candidates = [
        (WorkerHeartbeat.objects.aggregate(t=Max("beat_at"))["t"], "heartbeat"),
        (Success.objects.aggregate(t=Max("stopped"))["t"], "task"),
        (ReconciliationRun.objects.aggregate(t=Max("finished_at"))["t"], "reconciliation_run"),
    ]
    seen = [(moment, source) for moment, source in candidates if moment is not None]
    return max(seen, key=lambda c: c[0]) if seen else (None, "")


def account_intervals_enabled() -> list[int]:
    """The reconciliation intervals (seconds) of the enabled accounts."""
    return list(
        ExchangeAccount.objects.filter(enabled=True).values_list(
            "reconciliation_interval_seconds", flat=True
        )
    )


def accounts_with_last_run_at(accounts):
    """``accounts`` (a queryset) with ``last_run_at``: their newest run's end, by name."""
    return accounts.annotate(last_run_at=Max("reconciliation_runs__finished_at")).order_by("name")
