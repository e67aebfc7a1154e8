"""Many passes in one worker at once (issue 17 point 5).

A django-q2 worker process runs one task at a time, and a pass mostly waits on the venue.
The ticker therefore hands a worker a batch of due passes (up to ``[worker]
passes_per_worker``) in one task, ``reconcile_accounts_task``, which runs them here on one
thread each. Every pass is still itself: it takes its account's lease (two passes of one
account never overlap, whichever worker or batch holds them), records its own run, and a
pass that fails or raises does not stop the others. Each thread closes its database
connection when its pass ends (the session's advisory locks go with it). A duplicate
delivery of a batch is harmless: a finished run is not run again, and a running one's
account lease is held.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from django.db import connection

from reconciliation.models import ReconciliationRun
from reconciliation.passes.run import run_reconciliation
from tradingstate.models import ExchangeAccount

log = logging.getLogger("reconciliation")

MISSING_OR_DISABLED = "account missing or disabled"


def pass_run_queued(account_id: int, trigger: str, run_id: int | None = None) -> str:
    """One queued pass: skip a missing or disabled account and a run that already finished
    (a duplicate delivery), else run it. The line says what happened."""
    account = ExchangeAccount.objects.filter(pk=account_id).first()
    if account is None or not account.enabled:
        return MISSING_OR_DISABLED
    dry_run = False
    if run_id is not None:
        run = ReconciliationRun.objects.filter(pk=run_id).first()
        if run is not None and run.status in ReconciliationRun.FINISHED_STATUSES:
            return f"run {run_id} already {run.status}"  # a duplicate delivery
        dry_run = bool(run and run.dry_run)
    run = run_reconciliation(account, trigger, dry_run, run_id=run_id)
    return f"run {run.pk} {run.status}"


def passes_run_batch(passes: list) -> list[str]:
    """Run ``[(account_id, trigger, run_id), ...]`` at once, one thread each; one line per
    pass in the same order. A pass that raises is logged and reported, the others go on."""
    items = [tuple(p) for p in passes]
    if len(items) <= 1:
        return [_one(*item, close=False) for item in items]
    with ThreadPoolExecutor(len(items), thread_name_prefix="reconcile-pass") as pool:
        return list(pool.map(lambda item: _one(*item, close=True), items))


def _one(account_id: int, trigger: str, run_id: int | None = None, *, close: bool) -> str:
    try:
        return pass_run_queued(account_id, trigger, run_id)
    except Exception as exc:  # reported in the task's result; the batch goes on
        log.exception("Reconciliation pass of account %s raised", account_id)
        return f"account {account_id} raised {type(exc).__name__}: {exc}"
    finally:
        if close:
            connection.close()  # this thread's connection: not kept past its pass
