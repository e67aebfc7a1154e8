"""Django's PostgreSQL backend with a health check that costs no round trip when it can.

With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` on every request's first use of a
persistent connection: one round trip on every bot request, whose whole budget is a few
(bench line ``api endpoint=killswitch``). Here an idle connection is checked locally first:
psycopg's own state (closed, broken), the session's transaction status, and whether its
socket has anything to read. An idle session is owed nothing by the server, so bytes or an
EOF waiting on the socket mean the server has spoken or hung up (a restart, an
administrator's ``pg_terminate_backend``, an idle timeout): only then, or when the state
is not plainly idle, is Django's ``SELECT 1`` sent to decide. A server that vanished
without closing its socket is not caught by either check until a statement times out.

Prepared statements keep one plan: where psycopg prepares the hot statements
(``prepare_threshold`` set, ``database_prepared_statements`` in the config), each new
session is told ``plan_cache_mode = force_generic_plan``. Left to itself PostgreSQL planned
them again on every run: the token read's "no account named" (a NULL parameter) made a
custom plan look cheaper than the kept one, and planning cost a third of a kill-switch
read. Only statements bound server-side have parameters for a plan to depend on, and only
``tradingstate.db``'s hot statements are: the ORM's client-bound queries are unchanged.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from psycopg.pq import TransactionStatus

GENERIC_PLANS = "SET plan_cache_mode = force_generic_plan"


class DatabaseWrapper(PostgresDatabaseWrapper):
    def _configure_connection(self, connection) -> bool:
        commit = super()._configure_connection(connection)
        if self.settings_dict["OPTIONS"].get("prepare_threshold") is None:
            return commit
        with connection.cursor() as cursor:
            cursor.execute(GENERIC_PLANS)
        return True  # a SET outside autocommit is undone unless committed

    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != TransactionStatus.IDLE or _has_input(conn.fileno()):
            return super().is_usable()  # not plainly idle, or the server spoke: ask it
        return True


def _has_input(fd: int) -> bool:
    """Bytes (or an EOF) waiting on ``fd``, without blocking. ``poll``: no descriptor limit."""
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
