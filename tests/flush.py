"""Emptying tables on PostgreSQL past the audit table's TRUNCATE trigger (tests and bench)."""

from __future__ import annotations


def flush_past_the_audit_truncate_trigger() -> None:
    """Django's test flush empties every table with one TRUNCATE; the audit table refuses
    TRUNCATE (migration 0009). The test database's superuser flushes with
    ``session_replication_role = replica`` (superuser-only), under which ordinary triggers
    do not fire; the app's role cannot do that (README "Security model")."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.sql_flush
    if getattr(original, "past_audit_trigger", False):
        return

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        sql = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        return ["SET LOCAL session_replication_role = replica", *sql] if sql else sql

    sql_flush.past_audit_trigger = True
    DatabaseOperations.sql_flush = sql_flush
