"""Asking for a pass: ONE trigger path, ``reconciliation_request``.

It records the run row (``queued``, with who asked) and then either hands the pass to the
django-q2 cluster once the caller's transaction commits, or, when the caller waits
(``?wait=true`` on the API), runs it on this process's small pass executor and waits for it
at most ``wait_seconds``. Past that the caller gets the run as it stands (still queued or
running) and the pass finishes on its own; no worker is needed either way.

Why an executor rather than enqueue-and-poll: ``?wait=true`` promises a pass even where no
worker runs (a console-only host, the paper quick start), so the pass must run in this
process; and a bounded pool (``INLINE_PASS_THREADS``) rather than a thread per request keeps
a burst of waiting callers from starting a burst of passes: extra requests queue, get 202
after their wait, and their passes run in turn. The ticker enqueues scheduled passes with
``enqueue_passes``, a batch per task (their run rows are written by the ticker).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import connection, transaction

from reconciliation.models import ReconciliationRun
from reconciliation.passes.run import run_reconciliation
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount

log = logging.getLogger("reconciliation")

TASK = "reconciliation.tasks.reconcile_account_task"
BATCH_TASK = "reconciliation.tasks.reconcile_accounts_task"
INLINE_PASS_THREADS = 2

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def enqueue_pass(account_id: int, trigger: str, run_id: int | None = None) -> str:
    """Hand a pass to the django-q2 cluster (call outside transactions or via on_commit)."""
    from django_q.tasks import async_task  # django_q imports its models: only once apps load

    return async_task(
        TASK,
        account_id,
        trigger,
        run_id,
        task_name=f"reconcile-{account_id}-{trigger}",
        group="reconciliation",
    )


def enqueue_passes(passes: list[tuple[int, str, int | None]]) -> str:
    """Hand a batch of passes to one worker, which runs them at once (``passes.batch``)."""
    from django_q.tasks import async_task

    first = passes[0][0] if passes else 0
    return async_task(
        BATCH_TASK,
        [list(p) for p in passes],
        task_name=f"reconcile-batch-{first}-{len(passes)}",
        group="reconciliation",
    )


def wait_budget(requested: float | None) -> float:
    """How long a request that waits for its pass holds on: what it asked for, never more
    than the operator's ``api.reconcile_wait_seconds``."""
    ceiling = float(settings.TRADINGSTATE.api.reconcile_wait_seconds)
    return ceiling if requested is None else min(requested, ceiling)


def reconciliation_request(
    *,
    account: ExchangeAccount,
    trigger: str,
    actor: Actor,
    dry_run: bool = False,
    wait_seconds: float | None = None,
) -> ReconciliationRun:
    """Record a queued run; without ``wait_seconds`` hand it to the worker once this
    transaction commits, with it run it here and wait at most that long for it."""
    requested_by = actor.name[:150]
    run = ReconciliationRun.objects.create(
        account=account, trigger=trigger, dry_run=dry_run, requested_by=requested_by
    )
    if wait_seconds is None:
        transaction.on_commit(lambda: enqueue_pass(account.pk, trigger, run_id=run.pk))
        return run
    future = _pass_executor().submit(
        _run_here, account.pk, trigger, dry_run, run_id=run.pk, requested_by=requested_by
    )
    with contextlib.suppress(FutureTimeout):  # past it the pass goes on; the caller gets
        future.result(timeout=wait_seconds)  # the run as it stands
    run.refresh_from_db()
    return run


def _pass_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(
                max_workers=INLINE_PASS_THREADS, thread_name_prefix="reconcile-inline"
            )
        return _executor


def _run_here(account_id: int, trigger: str, dry_run: bool, **kwargs) -> None:
    try:
        run_reconciliation(account_id, trigger, dry_run, **kwargs)
    except Exception:  # the run row records what it can; never kill the pool's thread
        log.exception("Reconciliation request failed for account %s", account_id)
    finally:
        connection.close()  # this thread's connection: not kept between passes
