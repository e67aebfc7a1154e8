"""django-q2 tasks of the state of record. They take ids and call a service; safe to deliver
twice."""

from __future__ import annotations

from tradingstate.services.notifications import notification_send
from tradingstate.services.pnl import pnl_snapshot_record


def notification_send_task(notification_id: int) -> str:
    return notification_send(notification_id=notification_id)


def pnl_snapshot_task() -> str:
    """The hourly P&L and exposure snapshot (idempotent within the hour)."""
    result = pnl_snapshot_record()
    return (
        f"snapshots {result.taken_at:%Y-%m-%d %H:00}: {result.created} new, {result.deleted} pruned"
    )
