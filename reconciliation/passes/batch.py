"""Many passes in one worker at once (issue 17 point 5).

A django-q2 worker process runs one task at a time, and a pass mostly waits on the venue.
The ticker therefore hands a worker a batch of due passes (up to ``[worker]
passes_per_worker``) in one task, ``reconcile_accounts_task``, which starts them on this
process's pass threads: ``passes_per_worker`` of them, so the process runs that many
passes at once. The task returns once its last pass has a thread (it blocks while all are
busy: the next batch waits in the queue, where the ticker sees it; past half the task
timeout the passes still without a thread are recorded failed and left to the next slot),
not when its passes end: one slow pass (a first pass reading months of trades, a venue
timing out) holds one thread, never the whole worker. A worker process that exits
(django-q2 recycles them) first lets its running passes finish (its threads are joined).

Every pass is still itself: it takes its account's lease (two passes of one account never
overlap, whichever worker or batch holds them), records its own run, and a pass that fails
or raises does not stop the others. A thread keeps its database connection between passes
as a request thread would (``CONN_MAX_AGE``; a broken one is closed). A duplicate delivery
of a batch is harmless: a finished run is not run again, and a running one's account lease
is held.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from reconciliation.models import ReconciliationRun
from reconciliation.passes.run import run_reconciliation
from reconciliation.priority import worker_priority_apply
from reconciliation.selectors import account_enabled, run_queued_state

log = logging.getLogger("reconciliation")

MISSING_OR_DISABLED = "account missing or disabled"
NO_FREE_THREAD = "no pass thread of the worker was free within {seconds:g} s"


def pass_run_queued(account_id: int, trigger: str, run_id: int | None = None) -> str:
    """One queued pass: skip a missing or disabled account and a run that already finished
    (a duplicate delivery), else run it. The line says what happened. The account itself is
    read by the pass, under its lease."""
    dry_run = False
    enabled = None
    if run_id is not None:  # the run and its account's state in one read
        state = run_queued_state(run_id)
        if state is not None:
            status, dry_run, run_account_id, run_account_enabled = state
            if status in ReconciliationRun.FINISHED_STATUSES:
                return f"run {run_id} already {status}"  # a duplicate delivery
            if run_account_id == account_id:
                enabled = run_account_enabled
    if enabled is None:
        enabled = account_enabled(account_id)
    if not enabled:
        return MISSING_OR_DISABLED
    run = run_reconciliation(account_id, trigger, bool(dry_run), run_id=run_id)
    return f"run {run.pk} {run.status}"


_lock = threading.Lock()
_threads: ThreadPoolExecutor | None = None
_free: threading.Semaphore | None = None
_running: set[Future] = set()


def _pass_threads() -> tuple[ThreadPoolExecutor, threading.Semaphore]:
    global _threads, _free
    with _lock:
        if _threads is None:
            size = settings.TRADINGSTATE.worker.passes_per_worker
            _free = threading.Semaphore(size)
            _threads = ThreadPoolExecutor(size, thread_name_prefix="reconcile-pass")
        assert _free is not None
        return _threads, _free


def passes_start(passes: list) -> list[Future]:
    """Start ``[(account_id, trigger, run_id), ...]`` on this process's pass threads, each
    as soon as a thread is free (blocks until the last has one). Futures of their lines."""
    threads, free = _pass_threads()
    # within django-q2's task timeout (past it the worker process would be killed with its
    # running passes): what finds no thread by half of it, counted from the batch's start
    # (not per pass: a batch waits once), is left to the ticker's next slot
    patience = settings.TRADINGSTATE.worker.task_timeout_seconds / 2
    deadline = time.monotonic() + patience
    futures = []
    for k, item in enumerate(passes):
        if not free.acquire(timeout=max(0.0, deadline - time.monotonic())):
            _not_started(passes[k:], NO_FREE_THREAD.format(seconds=patience))
            break
        future = threads.submit(_one, *item)
        with _lock:
            _running.add(future)
        future.add_done_callback(lambda f, free=free: _done(f, free))
        futures.append(future)
    return futures


def _not_started(passes: list, reason: str) -> None:
    run_ids = [p[2] for p in passes if len(p) > 2 and p[2] is not None]
    ReconciliationRun.objects.filter(pk__in=run_ids, status=ReconciliationRun.Status.QUEUED).update(
        status=ReconciliationRun.Status.FAILED, error=reason, finished_at=timezone.now()
    )
    log.warning("%s passes not started: %s", len(passes), reason)


def _done(future: Future, free: threading.Semaphore) -> None:
    with _lock:
        _running.discard(future)
    free.release()


def passes_run_batch(passes: list) -> list[str]:
    """Start a batch and wait for it: one line per pass, in the same order."""
    return [f.result() for f in passes_start(passes)]


def passes_drain(timeout: float | None = None) -> bool:
    """Wait for every pass this process is running (tests; a clean stop)."""
    with _lock:
        running = list(_running)
    return not wait(running, timeout).not_done


def pass_threads_close() -> None:
    """Let the running passes finish, then stop the pass threads; the next batch starts
    ``passes_per_worker`` new ones (tests that change it; a clean stop)."""
    global _threads, _free
    passes_drain()
    with _lock:
        threads, _threads, _free = _threads, None, None
    if threads is not None:
        threads.shutdown(wait=True)


def _one(account_id: int, trigger: str, run_id: int | None = None) -> str:
    worker_priority_apply()  # already so when the thread was started by a niced one
    close_old_connections()  # a connection broken or past CONN_MAX_AGE is not reused
    try:
        return pass_run_queued(account_id, trigger, run_id)
    except Exception as exc:  # reported in the line; the other passes go on
        log.exception("Reconciliation pass of account %s raised", account_id)
        return f"account {account_id} raised {type(exc).__name__}: {exc}"
    finally:
        close_old_connections()
