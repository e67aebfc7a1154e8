"""One reconciliation pass per account at a time, across processes and hosts.

PostgreSQL: ``pg_try_advisory_xact_lock`` inside a transaction that spans the pass, so the
lock dies with the transaction (a killed worker can never leave it held). SQLite (a single
host by definition): an exclusive ``flock`` on a file per account, released by the kernel
when the process exits.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator

from django.conf import settings
from django.db import connection, transaction

from reconciliation.models import Discrepancy

LOCK_NAMESPACE = "tradingstate.reconciliation"


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for an advisory lock."""
    digest = hashlib.blake2b(f"{LOCK_NAMESPACE}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextlib.contextmanager
def account_pass_lock(account_id: int) -> Iterator[bool]:
    """Yield True if this process now holds the account's pass lock, False if another does.

    On PostgreSQL the body runs inside the locking transaction.
    """
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT pg_try_advisory_xact_lock(%s)", [lock_key(f"account:{account_id}")]
                )
                acquired = bool(cur.fetchone()[0])
            yield acquired
        return
    with file_lock(f"account-{account_id}") as acquired:
        yield acquired


@contextlib.contextmanager
def file_lock(name: str) -> Iterator[bool]:
    directory = settings.DATA_DIR / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
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
