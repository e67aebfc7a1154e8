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
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper
from psycopg.pq import TransactionStatus


class DatabaseWrapper(PostgresDatabaseWrapper):
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
