"""django-q2 tasks of the state of record. They call a service; safe to deliver twice."""

from __future__ import annotations

from tradingstate.services.pnl import pnl_snapshot_record


def pnl_snapshot_task() -> str:
    """The hourly P&L and exposure snapshot (idempotent within the hour)."""
    result = pnl_snapshot_record()
    return (
        f"snapshots {result.taken_at:%Y-%m-%d %H:00}: {result.created} new, {result.deleted} pruned"
    )
