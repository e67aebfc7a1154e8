"""Hot reads: statements a bot's every request runs (its token check, the kill-switch state).

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

import psycopg
from django.db import connection


def fetch_all(sql: str, params: list | tuple = ()) -> list[tuple]:
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    started = time.monotonic()
    with connection.wrap_database_errors:
        connection.ensure_connection()
        connection.validate_no_broken_transaction()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": f"{sql} -- {list(params)!r}", "time": f"{time.monotonic() - started:.3f}"}
        )
    return rows
