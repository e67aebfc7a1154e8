"""django-q2 tasks of the state of record. They take plain values (ids, a tick) and call a
service; safe to deliver twice."""

from __future__ import annotations

from tradingstate.services.notifications import notification_send
from tradingstate.services.paper import paper_marks_walk
from tradingstate.services.pnl import pnl_snapshot_record

PAPER_WALK_TASK = "tradingstate.tasks.paper_walk_task"


def notification_send_task(notification_id: int) -> str:
    return notification_send(notification_id=notification_id)


def pnl_snapshot_task() -> str:
    """The hourly P&L and exposure snapshot (idempotent within the hour)."""
    result = pnl_snapshot_record()
    return (
        f"snapshots {result.taken_at:%Y-%m-%d %H:00}: {result.created} new, {result.deleted} pruned"
    )


def paper_walk_task(tick: int) -> str:
    """One step of the paper venue's random walk (``paper_marks_walk``): idempotent per
    tick, so a duplicate delivery moves nothing."""
    return f"tick {tick}: {paper_marks_walk(tick=tick)} marks moved"


def enqueue_paper_walk(tick: int) -> str:
    """Hand one walk step to the django-q2 cluster (the ticker calls this)."""
    from django_q.tasks import async_task

    return async_task(PAPER_WALK_TASK, tick, task_name=f"paper-walk-{tick}", group="paper")
