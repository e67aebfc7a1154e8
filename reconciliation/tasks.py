"""django-q2 tasks. They take ids, load, and call the service; safe to deliver twice.

Passes are enqueued by ``reconciliation.passes.triggers.enqueue_pass`` (the ticker and
``reconciliation_request``), naming ``reconcile_account_task`` by its dotted path.
"""

from __future__ import annotations

import logging

from reconciliation.models import ReconciliationRun
from reconciliation.passes import run_reconciliation
from reconciliation.priority import worker_priority_apply
from tradingstate.models import ExchangeAccount

log = logging.getLogger("reconciliation")


def reconcile_account_task(account_id: int, trigger: str, run_id: int | None = None) -> str:
    worker_priority_apply()  # passes yield the CPU to the bots' API (once per process)
    account = ExchangeAccount.objects.filter(pk=account_id).first()
    if account is None or not account.enabled:
        return "account missing or disabled"
    dry_run = False
    if run_id is not None:
        run = ReconciliationRun.objects.filter(pk=run_id).first()
        if run is not None and run.status in ReconciliationRun.FINISHED_STATUSES:
            return f"run {run_id} already {run.status}"  # a duplicate delivery
        dry_run = bool(run and run.dry_run)
    run = run_reconciliation(account, trigger, dry_run, run_id=run_id)
    return f"run {run.pk} {run.status}"


def alerts_check_task() -> str:
    """Every minute (django-q2 schedule): overdue passes, lost heartbeat, due notifications."""
    from reconciliation.alerts import alerts_check

    return str(alerts_check())


def prune_task(**_schedule_marker) -> str:
    """Daily (django-q2 schedule): ``manage.py prune`` with the configured retention."""
    from reconciliation.retention import prune

    return prune().summary()
