"""One reconciliation pass per account at a time, across processes and hosts: the pass's
lease, held with NO database transaction open, so a slow exchange never holds a transaction
(or its locks) that bots wait on.

PostgreSQL: a session advisory lock (``pg_try_advisory_lock``) on the pass's connection,
released when the pass ends, or by the server when the connection dies (a killed worker can
never leave it held). The persist transaction confirms it (``account_pass_lease_confirm``).
Behind a transaction-mode pooler the pass needs a session-mode connection, as the ticker's
leadership does. SQLite (a single host by definition): an exclusive ``flock`` on a file per
account, released by the kernel when the process exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError, connection

from reconciliation.models import Discrepancy

LOCK_NAMESPACE = "tradingstate.reconciliation"


def database_identity() -> str:
    """What makes a lock name unique to this database, not just to this server.

    Advisory locks are server-wide and lock files live in the data directory, but one
    PostgreSQL server (or one data directory) may hold several tradingstate databases —
    staging beside production, or the test suite's per-worker databases. Keyed by name only,
    a pass on one would skip the same account id's pass on the other. An in-memory SQLite
    database belongs to its process alone.
    """
    name = str(connection.settings_dict.get("NAME") or "")
    if connection.vendor == "sqlite" and (not name or "mode=memory" in name or name == ":memory:"):
        return f"memory:{os.getpid()}"
    return f"{connection.vendor}:{name}"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock on this database."""
    text = f"{LOCK_NAMESPACE}:{database_identity()}:{name}"
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class LeaseLost(Exception):
    """Another session holds the account's pass lease: this pass must not persist."""


@contextlib.contextmanager
def account_pass_lease(account_id: int) -> Iterator[bool]:
    """Yield True if this process now holds the account's pass lease, False if another does.

    Opens no transaction: the body fetches from the exchange and persists in its own short
    transaction.
    """
    if connection.vendor == "postgresql":
        key = lock_key(f"account:{account_id}")
        with connection.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(%s)", [key])
            acquired = bool(cur.fetchone()[0])
        try:
            yield acquired
        finally:
            if acquired:
                try:
                    with connection.cursor() as cur:
                        cur.execute("SELECT pg_advisory_unlock(%s)", [key])
                except DatabaseError:  # the connection died: the lease died with it
                    pass
        return
    with file_lock(f"account-{account_id}") as acquired:
        yield acquired


def account_pass_lease_confirm(account_id: int, *, next_id_of=None) -> int | None:
    """Inside the persist transaction: raise LeaseLost unless this session still holds the
    lease (an advisory lock is re-entrant for its holder; after a lost connection another
    pass may hold it).

    ``next_id_of`` (a model): also take the next id of its table's sequence in the same
    statement and return it (PostgreSQL; None elsewhere), for a row the pass inserts last
    but names first."""
    if connection.vendor != "postgresql":
        return None
    key = lock_key(f"account:{account_id}")
    with connection.cursor() as cur:
        if next_id_of is None:
            cur.execute("SELECT pg_try_advisory_xact_lock(%s), NULL", [key])
        else:
            meta = next_id_of._meta
            # the lock first: a pass that lost its lease takes no id
            cur.execute(
                "SELECT held, CASE WHEN held THEN nextval(pg_get_serial_sequence(%s, %s)) END "
                "FROM (SELECT pg_try_advisory_xact_lock(%s) AS held) AS lease",
                [meta.db_table, meta.pk.column, key],
            )
        held, next_id = cur.fetchone()
        if not held:
            raise LeaseLost(account_id)
        return next_id


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[bool]:
    directory = settings.DATA_DIR / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    database = hashlib.blake2b(database_identity().encode(), digest_size=6).hexdigest()
    fd = os.open(directory / f"{database}-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def discrepancy_qs_select_for_update():
    return Discrepancy.objects.select_for_update().order_by("pk")
