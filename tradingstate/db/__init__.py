"""Hot-path SQL in one place: the statements a bot's every request runs, and the helpers
that run them.

Each module holds its raw statements beside the ORM expression each replaces (a function
named ``*_orm`` doing the same through the ORM), and names the ``make bench`` line that
justifies it (``BENCH = "..."``);
``tests/integration/tradingstate/test_db_equivalence.py`` runs both forms on the same rows
and asserts they give the same result:

- ``auth``: the token, its user, bot profile, and the account named in the URL (one read).
- ``throttle``: the bot rate limit's counter row (one upsert).
- ``orders``: registration (guard-free insert + audit) and a transition's write + audit.
- ``fills``: a fill's read and its compare-and-set write (the locked pair as fallback).

The helpers below (``fetch_all``, ``execute``) run a statement through psycopg directly on
PostgreSQL and through Django's cursor elsewhere; either way the statement is recorded
where Django records queries (so ``CaptureQueriesContext`` counts it).

Hot reads (their token check, the kill-switch state):

On PostgreSQL they run through a server-binding psycopg cursor, so psycopg prepares each on
a connection after a few runs and PostgreSQL stops planning it every time (planning was
about 40 % of these reads' time). Prepared statements follow the connection's
``prepare_threshold`` (``database_prepared_statements`` in the config; Django's default
is off, for transaction-pooling PgBouncer): off, the statements still run, unprepared.
Elsewhere (SQLite) Django's cursor runs them. Either way the statement is recorded where
Django records queries, and database errors come out as Django's.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import lru_cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import BooleanField, DateTimeField
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg import _queries


class _HotQuery(_queries.PostgresQuery):
    """psycopg's query, its ``%s`` -> ``$n`` conversion cached for every statement here.

    psycopg caches the conversion only for statements under 4 KB with at most 50
    parameters (it guards against an ORM's endless one-off ``VALUES`` lists); the hot
    statements are a few fixed texts, some longer (a fill's write has 60 parameters), and
    parsing them again on every run cost more than the rest of psycopg's work together."""

    def convert(self, query, vars) -> None:
        if (
            vars is None
            or not isinstance(query, str | bytes)
            or len(query) > CACHED_LENGTH
            or len(vars) > CACHED_PARAMS
        ):
            super().convert(query, vars)  # one-off texts (an ORM's long IN lists): as psycopg
            return
        parts = _convert(self._ensure_bytes(query), self._tx.encoding)
        self.query, self._want_formats, self._order, self._parts = parts
        self.dump(vars)


_convert = lru_cache(maxsize=256)(_queries._query2pg_nocache)
CACHED_LENGTH = 16_384  # the hot statements are a few KB; an ORM's IN list can be far longer
CACHED_PARAMS = 200


class _HotCursor(psycopg.Cursor):
    _query_cls = _HotQuery


def fetch_all(sql: str, params: list | tuple = (), *, binary: bool = False) -> list[tuple]:
    """The statement's rows. ``binary``: PostgreSQL sends the results in binary, loaded by
    psycopg's C loaders (numeric as Decimal, timestamptz as an aware datetime in the
    session's time zone, UTC): much cheaper than the text loaders for many rows."""
    return _run(sql, params, binary)


def execute(sql: str, params: dict | list | tuple = (), *, binary: bool = False) -> list[tuple]:
    """A statement that may write (``INSERT ... RETURNING``, a CTE): its rows, if any.

    Named (``%(name)s``) or positional parameters. Runs in the caller's transaction.
    ``binary`` as for ``fetch_all``."""
    return _run(sql, params, binary)


def _run(sql: str, params, binary: bool) -> list[tuple]:
    # the wrapper itself, looked up once: each attribute read through Django's ``connection``
    # proxy resolves the thread's connection again (a few per statement added up)
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor != "postgresql":
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    started = time.monotonic()
    with conn.wrap_database_errors:
        conn.ensure_connection()
        conn.validate_no_broken_transaction()
        with _HotCursor(conn.connection) as cursor:
            if _carries_list(params):  # see _carries_list: planned with its values
                text = _inline(conn.connection, sql, params)
                cursor.execute(text, None, binary=binary, prepare=False)
            else:
                cursor.execute(sql, params, binary=binary)
            # the result's status, not ``description``: that builds a Column per column
            result = cursor.pgresult
            rows = cursor.fetchall() if result is not None and result.status == _TUPLES else []
    if conn.queries_logged:  # the text only when it is kept (a repr of 60 parameters is not free)
        shown = params if isinstance(params, dict) else list(params)
        record_query(conn, f"{sql} -- {shown!r}", started)
    return rows


_TUPLES = psycopg.pq.ExecStatus.TUPLES_OK


def _carries_list(params) -> bool:
    """Whether a statement carries a list (an array parameter, as ``field__any`` sends one).

    Such a statement runs with its values written into its text (``_inline``), so
    PostgreSQL plans it knowing them, and it is never prepared. Bound as a parameter, a list
    gets the generic plan (the sessions here are set to ``force_generic_plan`` where
    statements are prepared, and that applies to every bound statement): a list of unknown
    length and no known account. For a pass's read of the orders the venue lists but the
    account does not hold as active, that plan expected 63 orders, read all 97,607 of a
    long-history account's and compared each with every element of both 10,000-element
    lists (an array parameter is never hashed): 2.8 s a pass (issue 17,
    register-under-passes). With its values the lists are hashed or looked up through
    their indexes; planning is nothing beside reading thousands of ids."""
    values = params.values() if isinstance(params, dict) else params
    return any(isinstance(v, list) for v in values)


def _inline(raw, sql: str, params) -> str:
    """``sql`` with ``params`` written in as literals, quoted by psycopg as Django's own
    client-side binding quotes every ORM query's values."""
    with psycopg.ClientCursor(raw) as cursor:
        return cursor.mogrify(sql, params)


def record_query(conn, sql: str, started: float) -> None:
    """Log a statement run outside Django's cursor where Django logs its own, so query
    counts (CaptureQueriesContext, DEBUG's connection.queries) still see it."""
    if conn.queries_logged:
        conn.queries_log.append({"sql": sql, "time": f"{time.monotonic() - started:.3f}"})


def aware(value: datetime | str | None) -> datetime | None:
    """A raw timestamp column as the ORM returns it: SQLite hands back naive UTC datetimes
    (or text); PostgreSQL's are aware already."""
    if value is None:
        return None
    if isinstance(value, str):
        value = parse_datetime(value)
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


def python_values(fields, values) -> list:
    """Raw column values of ``fields`` as the ORM's converters would make them (times,
    SQLite's 0/1 booleans); other types come back from the driver as they are wanted."""
    out = []
    for f, value in zip(fields, values, strict=True):
        if isinstance(f, DateTimeField):
            value = aware(value)
        elif value is not None and isinstance(f, BooleanField):
            value = bool(value)
        out.append(value)
    return out
