"""What the reconciler tells operators: alert states, through the core's notifications.

- after each pass, in its transaction: persistent desyncs opened/closed, repairs failed/applied;
- when a pass stops an account (authentication error, missing credentials);
- periodically (``alerts_check``: the ticker every 30 s, and a django-q2 schedule every
  minute): accounts with no completed pass in ``[alerts] overdue_intervals`` intervals, the
  ticker's heartbeat lost, and the sweep that sends due and retried notifications.

Each alert is a state per key; ``notification_emit`` sends only state changes.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone

from reconciliation.models import ReconciliationRun, WorkerHeartbeat
from reconciliation.rollups import metrics_fold
from tradingstate.db import fetch_all
from tradingstate.db.compiled import CompiledRead
from tradingstate.models import ExchangeAccount, NotificationState
from tradingstate.services.notifications import (
    Change,
    notification_emit,
    notifications_emit,
    notifications_send_due,
)

log = logging.getLogger("reconciliation")

DESYNC = "desync.persistent"
REPAIR_FAILED = "repair.failed"
ACCOUNT_STOPPED = "account.stopped"
PASS_OVERDUE = "pass.overdue"  # noqa: S105 (an event name)
WORKER_LOST = "worker.lost"
RUNBOOK = "docs/runbooks/desync.md"


def _alerting_keys(account: ExchangeAccount) -> dict[str, set[str]]:
    """This account's desyncs notified open and repairs notified failed (one statement,
    compiled once on PostgreSQL)."""
    out: dict[str, set[str]] = {DESYNC: set(), REPAIR_FAILED: set()}
    if connection.vendor == "postgresql":
        rows = fetch_all(*_ALERTING.statement(account.name), binary=True)
    else:
        rows = _ALERTING.queryset(account.name)
    for event, key in rows:
        out[event].add(key)
    return out


_ALERTING = CompiledRead(
    lambda name: NotificationState.objects.filter(
        Q(event=DESYNC, state="open") | Q(event=REPAIR_FAILED, state="failed"),
        key__startswith=f"{name}:",
    ).values_list("event", "key"),
    prefixes=(0,),
)


def alerts_after_pass(*, account: ExchangeAccount, run: ReconciliationRun, outcome) -> None:
    """In the pass's transaction: desync and repair alert states from this pass's findings."""
    prefix = f"{account.name}:"
    opened = [
        Change(
            key=f"{prefix}{row.type}:{row.key}",
            state="open",
            title=f"tradingstate: persistent desync on {account.name}: {row.type} {row.key}",
            body=(
                f"{row.type} {row.key} on account {account.name} was found in "
                f"{row.consecutive_runs} consecutive passes (run {run.pk}).\n"
                f"local: {row.local_value}\nexchange: {row.exchange_value}\n"
                f"See {RUNBOOK}, 'Persistent desync'."
            ),
        )
        for row in outcome.persistent
    ]
    notifications_emit(event=DESYNC, changes=opened)
    alerting = _alerting_keys(account)
    if run.status == ReconciliationRun.Status.COMPLETED:
        seen = {f"{prefix}{f.type}:{f.key}" for f in outcome.findings}
        closed = [
            Change(
                key=key,
                state="closed",
                title=f"tradingstate: desync closed on {account.name}: {key[len(prefix) :]}",
                body=f"{key[len(prefix) :]} was not found in run {run.pk}: the desync is over.",
            )
            for key in sorted(alerting[DESYNC])
            if key not in seen
        ]
        notifications_emit(event=DESYNC, changes=closed)

    failed, applied = [], set()
    for finding, result in outcome.applied:
        key = f"{prefix}{finding.type}:{finding.key}"
        if result.applied:
            applied.add(key)
        else:
            failed.append(
                Change(
                    key=key,
                    state="failed",
                    title=f"tradingstate: repair failed on {account.name}: "
                    f"{finding.type} {finding.key}",
                    body=f"The repair of {finding.type} {finding.key} (run {run.pk}) was not "
                    f"applied: {result.error or 'refused'}. The next pass tries again; "
                    "staff can apply or acknowledge it in the admin.",
                )
            )
    notifications_emit(event=REPAIR_FAILED, changes=failed)
    if applied:
        done = [
            Change(
                key=k,
                state="ok",
                title=f"tradingstate: repair applied: {k}",
                body=f"{k}: the repair that had failed is now applied.",
            )
            for k in sorted(alerting[REPAIR_FAILED])
            if k in applied
        ]
        notifications_emit(event=REPAIR_FAILED, changes=done)


def alerts_account_stopped(*, account: ExchangeAccount, reason: str) -> None:
    notification_emit(
        event=ACCOUNT_STOPPED,
        key=account.name,
        state="stopped",
        title=f"tradingstate: reconciliation stopped for {account.name}",
        body=f"Passes of account {account.name} stopped: {reason}.\n"
        "Fix the credentials, then re-enable the account in the admin.",
    )


def alerts_check(*, now=None) -> dict:
    """Overdue passes, lost heartbeat, and due notifications. Idempotent; cheap."""
    now = now or timezone.now()
    cfg = settings.TRADINGSTATE.alerts
    overdue = _check_overdue(now, cfg.overdue_intervals)
    lost = _check_heartbeat(now, cfg.heartbeat_lost_seconds)
    sent = notifications_send_due()
    folded = metrics_fold()  # keeps the rows /metrics aggregates to the last minute or so
    return {
        "overdue": overdue,
        "heartbeat_lost": lost,
        "notifications_queued": sent,
        "rollup_watermarks": folded,
    }


def _check_overdue(now, intervals: int) -> list[str]:
    accounts = list(
        ExchangeAccount.objects.filter(enabled=True).values_list(
            "pk", "name", "reconciliation_interval_seconds", "created_at"
        )
    )
    last = dict(
        ReconciliationRun.objects.filter(
            account_id__in=[a[0] for a in accounts], status=ReconciliationRun.Status.COMPLETED
        )
        .values_list("account_id")
        .annotate(at=Max("finished_at"))
        .order_by()
    )
    late, ok = [], []
    for pk, name, interval, created in accounts:
        since = last.get(pk) or created
        limit = timedelta(seconds=interval * intervals)
        if now - since > limit:
            age = int((now - since).total_seconds())
            late.append(
                Change(
                    key=name,
                    state="overdue",
                    title=f"tradingstate: no completed pass for {name} in {age}s",
                    body=f"Account {name}: no completed reconciliation pass for {age}s "
                    f"({intervals} intervals of {interval}s). Check the worker "
                    f"(`run_paper.py`/`run_live.py`, `docker compose ps`) and {RUNBOOK}.",
                )
            )
        else:
            ok.append(
                Change(
                    key=name,
                    state="ok",
                    title=f"tradingstate: passes resumed for {name}",
                    body=f"Account {name} completed a pass again.",
                )
            )
    notifications_emit(event=PASS_OVERDUE, changes=late)
    notifications_emit(event=PASS_OVERDUE, changes=ok, quiet_if_new=True)
    return [c.key for c in late]


def _check_heartbeat(now, lost_after: int) -> list[str]:
    lost = []
    for role, holder, beat_at in WorkerHeartbeat.objects.values_list("role", "holder", "beat_at"):
        age = int((now - beat_at).total_seconds())
        if age > lost_after:
            lost.append(role)
            notification_emit(
                event=WORKER_LOST,
                key=role,
                state="lost",
                title=f"tradingstate: worker heartbeat lost ({role})",
                body=f"The {role} ({holder}) last beat {age}s ago. Passes are not being "
                f"scheduled: restart the trading process ({RUNBOOK}, 'Restart').",
            )
        else:
            notification_emit(
                event=WORKER_LOST, key=role, state="ok", quiet_if_new=True,
                title=f"tradingstate: worker heartbeat back ({role})",
                body=f"The {role} beats again ({holder}).",
            )  # fmt: skip
    return lost
