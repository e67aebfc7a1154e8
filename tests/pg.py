import os
import threading

import psycopg
import pytest
from django.db import DatabaseError, connection, connections, transaction

ON_POSTGRES = (os.environ.get("DATABASE_URL") or "").startswith(("postgres://", "postgresql://"))
requires_postgres = pytest.mark.skipif(
    not ON_POSTGRES, reason="needs PostgreSQL: set DATABASE_URL (.ci/run does)"
)


def lockable_elsewhere(model, pk=None) -> bool:
    """Whether another connection can lock ``model``'s row ``pk`` (any of its rows when
    ``pk`` is None) right now, without waiting: ``FOR UPDATE NOWAIT`` from a new thread, so
    a new connection. False when a row is locked by another transaction."""
    answer: dict = {}

    def probe():
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                table = connection.ops.quote_name(model._meta.db_table)
                where, params = ("WHERE id = %s", [pk]) if pk is not None else ("", [])
                cursor.execute(f"SELECT id FROM {table} {where} FOR UPDATE NOWAIT", params)
                answer["rows"] = len(cursor.fetchall())
        except DatabaseError as exc:
            answer["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the NOWAIT probe waited"
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error.__cause__, psycopg.errors.LockNotAvailable), error
        return False
    assert answer["rows"] >= 1, "the probe found no row to lock"
    return True
