"""django-q2 tasks. They take ids, load, and call the service; safe to deliver twice.

Passes are enqueued by ``reconciliation.passes.triggers``: one pass by ``enqueue_pass``
(``reconciliation_request``), a batch of due passes by ``enqueue_passes`` (the ticker),
naming ``reconcile_account_task`` / ``reconcile_accounts_task`` by their dotted paths.
"""

from __future__ import annotations

import logging

from reconciliation.passes.batch import pass_run_queued, passes_start
from reconciliation.priority import worker_priority_apply

log = logging.getLogger("reconciliation")


def reconcile_account_task(account_id: int, trigger: str, run_id: int | None = None) -> str:
    worker_priority_apply()  # passes yield the CPU to the bots' API (reconciliation.priority)
    return pass_run_queued(account_id, trigger, run_id)


def reconcile_accounts_task(passes: list) -> str:
    """A batch ``[[account_id, trigger, run_id], ...]``: each pass started on one of this
    worker's pass threads (``passes.batch``); returns once the last has started."""
    # before the pass threads start: a new thread takes its creator's niceness (Linux)
    worker_priority_apply()
    return f"started {len(passes_start(passes))} passes"


def alerts_check_task() -> str:
    """Every minute (django-q2 schedule): overdue passes, lost heartbeat, due notifications."""
    from reconciliation.alerts import alerts_check

    return str(alerts_check())


def prune_task(**_schedule_marker) -> str:
    """Daily (django-q2 schedule): ``manage.py prune`` with the configured retention."""
    from reconciliation.retention import prune

    return prune().summary()
