"""django-q2 tasks of the state of record. They take plain values and call one service;
safe to deliver twice."""

from __future__ import annotations

PAPER_WALK_TASK = "tradingstate.tasks.paper_walk_task"


def paper_walk_task(tick: int) -> str:
    """One step of the paper venue's random walk (``paper_marks_walk``): idempotent per
    tick, so a duplicate delivery moves nothing."""
    from tradingstate.services.paper import paper_marks_walk

    return f"tick {tick}: {paper_marks_walk(tick=tick)} marks moved"


def enqueue_paper_walk(tick: int) -> str:
    """Hand one walk step to the django-q2 cluster (the ticker calls this)."""
    from django_q.tasks import async_task

    return async_task(PAPER_WALK_TASK, tick, task_name=f"paper-walk-{tick}", group="paper")
