"""The reconciliation pass, and the staff actions on its discrepancies.

``run_reconciliation(account, trigger, dry_run=False)``: take the account's lock, fetch the
exchange's truth entity by entity, read the local snapshot, diff (pure), then persist the
run, its discrepancies, and (auto-repair) the repairs with their audit rows in one
transaction. Local state changes only through ``tradingstate.services.sync``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from reconciliation import diff as d
from reconciliation.alerts import alerts_account_stopped, alerts_after_pass
from reconciliation.locks import account_pass_lock
from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.selectors import (
    amount_steps,
    discrepancy_counts_previous_run,
    local_books,
    local_snapshot,
)
from tradingstate.actors import Actor
from tradingstate.errors import Conflict
from tradingstate.exchanges import base as ex
from tradingstate.models import ExchangeAccount
from tradingstate.services import account_set_enabled, require_reason
from tradingstate.services.audit import audit_build, audit_snapshot
from tradingstate.services.bulk import rows_bulk_create, rows_bulk_insert
from tradingstate.services.sync import SYNC_BY_KIND, SyncItem, SyncOutcome

log = logging.getLogger("reconciliation")

ENTITY_OF_KIND = {
    "order_create": d.ORDERS,
    "order_state": d.ORDERS,
    "position_set": d.POSITIONS,
    "balance_set": d.BALANCES,
}
NOT_REPAIRABLE = "Discrepancy {id} has no repair to apply (status {status})."
REPAIR_DEFERRED = "The repair was not applied: {error}. Reconcile again to refresh it."
ALREADY_CLOSED = "Discrepancy {id} is {status}, not open."
DEFAULT_LOOKUP_BUDGET = 100


@dataclass
class PassOutcome:
    run: ReconciliationRun
    findings: list[d.Finding] = field(default_factory=list)
    applied: list[tuple[d.Finding, SyncOutcome]] = field(default_factory=list)
    persistent: list[Discrepancy] = field(default_factory=list)


def reconciliation_actor(run_id: object) -> Actor:
    return Actor.system("reconciliation", run_id)


# --- entry points -------------------------------------------------------------------------
def reconciliation_request(
    *, account: ExchangeAccount, trigger: str, actor: Actor, dry_run: bool = False
) -> ReconciliationRun:
    """Record a queued run and hand it to the worker once this transaction commits."""
    from reconciliation.tasks import enqueue_pass

    run = ReconciliationRun.objects.create(
        account=account, trigger=trigger, dry_run=dry_run, requested_by=actor.name[:150]
    )
    transaction.on_commit(lambda: enqueue_pass(account.pk, trigger, run_id=run.pk))
    return run


def reconciliation_run_now(
    *,
    account: ExchangeAccount,
    trigger: str,
    actor: Actor,
    wait_seconds: float,
    dry_run: bool = False,
) -> ReconciliationRun:
    """Run a pass now, in this process, waiting at most ``wait_seconds`` for it.

    The pass runs on its own thread (and database connection) so the caller's time limit
    holds even when the exchange is slow; past the limit the caller gets the run as it is
    (queued) and the pass finishes on its own. No worker is needed.
    """
    run = ReconciliationRun.objects.create(
        account=account, trigger=trigger, dry_run=dry_run, requested_by=actor.name[:150]
    )
    done = threading.Event()

    def work() -> None:
        try:
            run_reconciliation(account.pk, trigger, dry_run, run_id=run.pk,
                               requested_by=actor.name[:150])  # fmt: skip
        finally:
            connection.close()
            done.set()

    threading.Thread(target=work, name=f"reconcile-{account.name}", daemon=True).start()
    done.wait(wait_seconds)
    run.refresh_from_db()
    return run


def run_reconciliation(
    account: ExchangeAccount | int,
    trigger: str = ReconciliationRun.Trigger.MANUAL,
    dry_run: bool = False,
    *,
    run_id: int | None = None,
    adapter: ex.ExchangeAdapter | None = None,
    requested_by: str = "",
) -> ReconciliationRun:
    """One reconciliation pass for one account. Never raises for exchange trouble: the run
    records it (``incomplete`` for transient errors, ``failed`` for authentication)."""
    if not isinstance(account, ExchangeAccount):
        account = ExchangeAccount.objects.get(pk=account)
    started = timezone.now()
    clock = time.perf_counter()
    outcome: PassOutcome | None = None
    error: Exception | None = None
    with account_pass_lock(account.pk) as acquired:
        if acquired:
            try:
                outcome = _locked_pass(
                    account, trigger, dry_run, run_id, adapter, started, clock, requested_by
                )
            except Exception as exc:  # recorded below, outside the rolled-back transaction
                error = exc
                if _in_outer_transaction():
                    transaction.set_rollback(True)
    if not acquired:
        run = _finish_standalone(
            account,
            trigger,
            dry_run,
            run_id,
            started,
            ReconciliationRun.Status.SKIPPED,
            "another pass of this account holds the lock",
            requested_by,
        )
        log.info("Reconciliation skipped for %s: another pass holds the lock", account.name)
        return run
    if error is not None:
        run = _finish_standalone(
            account,
            trigger,
            dry_run,
            run_id,
            started,
            ReconciliationRun.Status.FAILED,
            f"{type(error).__name__}: {error}",
            requested_by,
        )
        log.exception("Reconciliation failed for %s", account.name, exc_info=error)
        return run
    assert outcome is not None
    _emit_logs(account, outcome)
    return outcome.run


def _in_outer_transaction() -> bool:
    return connection.in_atomic_block


def _finish_standalone(account, trigger, dry_run, run_id, started, status, error, requested_by):
    now = timezone.now()
    values = {
        "status": status,
        "started_at": started,
        "finished_at": now,
        "duration_ms": int((now - started).total_seconds() * 1000),
        "error": error,
    }
    if run_id is not None and ReconciliationRun.objects.filter(pk=run_id).update(**values):
        return ReconciliationRun.objects.get(pk=run_id)
    return ReconciliationRun.objects.create(
        account=account, trigger=trigger, dry_run=dry_run, requested_by=requested_by, **values
    )


# --- the pass ---------------------------------------------------------------------------------
def _locked_pass(account, trigger, dry_run, run_id, adapter, started, clock, requested_by):
    from tradingstate.exchanges import adapter_for

    account = ExchangeAccount.objects.get(pk=account.pk)  # fresh, under the lock
    own_adapter = adapter is None
    if own_adapter:
        try:
            adapter = adapter_for(account)
        except ex.AuthenticationFailed as exc:  # e.g. a credential variable is not set
            return _auth_failed(account, trigger, dry_run, run_id, started, exc, requested_by)
    try:
        books = local_books(account=account)  # before the exchange's snapshot: see local_books
        snapshot, retry_after, auth_error = _fetch(account, adapter)
        if auth_error is not None:
            return _auth_failed(
                account, trigger, dry_run, run_id, started, auth_error, requested_by
            )
        local = local_snapshot(account=account, exchange_orders=snapshot.orders, books=books)
        cfg = d.DiffConfig(
            now=timezone.now(),
            grace_seconds=account.stale_order_grace_seconds,
            balance_tolerance=account.balance_tolerance,
            balance_tolerances={
                k: Decimal(str(v)) for k, v in (account.balance_tolerances or {}).items()
            },
            amount_steps=amount_steps(account=account),
            check_positions=account.is_derivative,
        )
        lookups, lookup_auth_error = _lookups(adapter, d.stale_candidates(local, snapshot, cfg))
        if lookup_auth_error is not None:
            return _auth_failed(
                account, trigger, dry_run, run_id, started, lookup_auth_error, requested_by
            )
    finally:
        if own_adapter:
            adapter.close()
    findings = d.diff(local, snapshot, cfg, lookups)
    # no savepoint: on PostgreSQL this runs inside the lock's transaction, and a failure
    # rolls that whole transaction back anyway (run_reconciliation marks it for rollback)
    with transaction.atomic(savepoint=False):
        return _persist(
            account=account,
            trigger=trigger,
            dry_run=dry_run,
            run_id=run_id,
            started=started,
            clock=clock,
            snapshot=snapshot,
            local=local,
            findings=findings,
            retry_after=retry_after,
            requested_by=requested_by,
        )


def _fetch(account, adapter) -> tuple[d.ExchangeSnapshot, float | None, Exception | None]:
    snapshot = d.ExchangeSnapshot()
    retry_after: float | None = None
    calls = [(d.ORDERS, adapter.fetch_open_orders), (d.BALANCES, adapter.fetch_balances)]
    if account.is_derivative:
        calls.insert(1, (d.POSITIONS, adapter.fetch_positions))
    for entity, call in calls:
        try:
            result = call()
        except ex.AuthenticationFailed as exc:
            return snapshot, None, exc
        except ex.ExchangeError as exc:
            snapshot.errors[entity] = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ex.TransientExchangeError) and exc.retry_after:
                retry_after = max(retry_after or 0, exc.retry_after)
            continue
        if not result.complete:
            snapshot.errors[entity] = f"incomplete: {result.note or 'pages missing'}"
            continue
        setattr(snapshot, entity, list(result.items))
    if not account.is_derivative:
        snapshot.positions = []
    return snapshot, retry_after, None


def _lookups(adapter, candidates):
    budget = getattr(adapter, "max_order_lookups_per_pass", DEFAULT_LOOKUP_BUDGET)
    lookups: dict[str, ex.ExchangeOrder | str] = {}
    for order in candidates if budget is None else candidates[:budget]:
        try:
            lookups[order.client_order_id] = adapter.fetch_order(
                order.client_order_id, order.exchange_order_id, order.symbol
            )
        except ex.OrderNotFound:
            lookups[order.client_order_id] = d.NOT_FOUND
        except ex.AuthenticationFailed as exc:
            return lookups, exc
        except ex.ExchangeError as exc:
            lookups[order.client_order_id] = f"{type(exc).__name__}: {exc}"
    return lookups, None


def _auth_failed(account, trigger, dry_run, run_id, started, exc, requested_by):
    reason = f"authentication failed: {exc}"
    with transaction.atomic():
        account_set_enabled(
            account=account,
            enabled=False,
            actor=Actor.system("reconciliation"),
            reason="passes stopped until staff re-enable the account",
            disabled_reason=reason,
        )
        run = _finish_standalone(
            account,
            trigger,
            dry_run,
            run_id,
            started,
            ReconciliationRun.Status.FAILED,
            reason,
            requested_by,
        )
        alerts_account_stopped(account=account, reason=reason)
    log.error(
        "ALERT reconciliation stopped for account %s: %s (re-enable the account to resume)",
        account.name,
        reason,
    )
    return PassOutcome(run=run)


def _persist(
    *,
    account,
    trigger,
    dry_run,
    run_id,
    started,
    clock,
    snapshot,
    local,
    findings,
    retry_after,
    requested_by,
) -> PassOutcome:
    run = _run_row(account, trigger, dry_run, run_id, started, requested_by)
    previous = discrepancy_counts_previous_run(account=account, before_id=run.pk)
    threshold = _persistent_threshold()
    rows = []
    for f in findings:
        consecutive = previous.get((f.type, f.key), 0) + 1
        rows.append(
            Discrepancy(
                run=run,
                account=account,
                type=f.type,
                entity=f.entity,
                key=f.key[:128],
                local_value=f.local,
                exchange_value=f.exchange,
                detail=f.detail,
                exchange_payload=_jsonable(f.payload),
                proposed_repair=f.repair.as_json() if f.repair else None,
                consecutive_runs=consecutive,
                persistent=consecutive >= threshold,
                resolution_reason=f.note,
            )
        )
    rows_bulk_create(Discrepancy, rows)
    outcome = PassOutcome(run=run, findings=findings)
    outcome.persistent = [r for r in rows if r.persistent]

    if account.auto_repair and not dry_run:
        outcome.applied = _apply_repairs(account, run, findings, rows)
    _close_previous(account, run, findings, snapshot)

    now = timezone.now()
    counts = {d.ORDERS: 0, d.POSITIONS: 0, d.BALANCES: 0}
    for f in findings:
        if f.type != d.FETCH_ERROR:
            counts[f.entity] += 1
    run.status = (
        ReconciliationRun.Status.INCOMPLETE
        if snapshot.errors
        else ReconciliationRun.Status.COMPLETED
    )
    run.finished_at = now
    run.duration_ms = int((time.perf_counter() - clock) * 1000)
    run.orders_synced = len(snapshot.orders or []) + sum(
        1 for o in local.orders if o.status in d.t.ACTIVE
    )
    run.positions_synced = (
        len({p.symbol for p in snapshot.positions or []} | {p.symbol for p in local.positions})
        if snapshot.positions is not None
        else 0
    )
    run.balances_synced = (
        len({b.currency for b in snapshot.balances or []} | {b.currency for b in local.balances})
        if snapshot.balances is not None
        else 0
    )
    run.discrepancies_found = len(findings)
    run.order_discrepancies = counts[d.ORDERS]
    run.position_discrepancies = counts[d.POSITIONS]
    run.balance_discrepancies = counts[d.BALANCES]
    run.repairs_applied = sum(1 for _, o in outcome.applied if o.applied)
    run.repairs_deferred = sum(1 for _, o in outcome.applied if not o.applied)
    run.retry_after_seconds = int(retry_after) if retry_after else None
    run.error = "; ".join(f"{k}: {v}" for k, v in sorted(snapshot.errors.items()))
    run.save()
    updates = {"last_reconciled_at": now}
    if (
        run.status == ReconciliationRun.Status.COMPLETED
        and account.recovery_started_at is not None
        and started >= account.recovery_started_at
    ):
        updates["recovery_started_at"] = None
    ExchangeAccount.objects.filter(pk=account.pk).update(**updates)
    alerts_after_pass(account=account, run=run, outcome=outcome)  # sent after commit
    return outcome


def _run_row(account, trigger, dry_run, run_id, started, requested_by) -> ReconciliationRun:
    if run_id is not None:
        run = ReconciliationRun.objects.filter(pk=run_id, account=account).first()
        if run is not None:
            run.status = ReconciliationRun.Status.RUNNING
            run.started_at = started
            return run
    return ReconciliationRun.objects.create(
        account=account,
        trigger=trigger,
        dry_run=dry_run,
        status=ReconciliationRun.Status.RUNNING,
        started_at=started,
        requested_by=requested_by,
    )


def _persistent_threshold() -> int:
    from django.conf import settings

    return settings.TRADINGSTATE.persistent_desync_runs


def _apply_repairs(account, run, findings, rows) -> list[tuple[d.Finding, SyncOutcome]]:
    actor = reconciliation_actor(run.pk)
    by_kind: dict[str, list[tuple[d.Finding, Discrepancy]]] = {}
    for f, row in zip(findings, rows, strict=True):
        if f.repair is not None:
            by_kind.setdefault(f.repair.kind, []).append((f, row))
    applied: list[tuple[d.Finding, SyncOutcome]] = []
    repairs: list[Repair] = []
    repaired_ids: list[int] = []
    for kind in ("order_create", "order_state", "position_set", "balance_set"):
        pairs = by_kind.get(kind, [])
        if not pairs:
            continue
        items = [_sync_item(f, row, reason=f"auto-repair: {f.type}") for f, row in pairs]
        outcomes = SYNC_BY_KIND[kind](account=account, items=items, actor=actor, run_id=run.pk)
        for (f, row), result in zip(pairs, outcomes, strict=True):
            applied.append((f, result))
            repairs.append(_repair_row(row, run, kind, result, actor, reason="auto-repair"))
            if result.applied:
                repaired_ids.append(row.pk)
    rows_bulk_insert(Repair, repairs)
    if repaired_ids:
        Discrepancy.objects.filter(pk__any=repaired_ids).update(
            status=Discrepancy.Status.REPAIRED,
            resolved_at=timezone.now(),
            resolved_by=actor.name,
            resolution_reason="auto-repair",
        )
    return applied


def _sync_item(f: d.Finding, row: Discrepancy, *, reason: str) -> SyncItem:
    return SyncItem(
        key=f.key,
        values=f.repair.values,
        target_id=f.repair.target_id,
        expected_version=f.repair.expected_version,
        discrepancy_id=row.pk,
        reason=reason,
    )


def _repair_row(row, run, kind, result: SyncOutcome, actor: Actor, reason: str) -> Repair:
    return Repair(
        discrepancy=row,
        run=run,
        account_id=row.account_id,
        action=kind,
        status=Repair.Status.APPLIED if result.applied else Repair.Status.DEFERRED,
        before=result.before,
        after=result.after,
        actor_type=actor.type,
        actor_name=actor.name[:150],
        reason=reason,
        error=result.error,
    )


def _close_previous(account, run, findings, snapshot) -> None:
    """Earlier open discrepancies: seen again -> superseded by this run's row; gone (and
    their entity fetched cleanly) -> resolved."""
    seen = {(f.type, f.key) for f in findings}
    failed_entities = set(snapshot.errors)
    superseded, resolved = [], []
    for pk, typ, key, entity in (
        Discrepancy.objects.filter(account=account, status=Discrepancy.Status.OPEN)
        .exclude(run=run)
        .values_list("pk", "type", "key", "entity")
    ):
        if (typ, key) in seen:
            superseded.append(pk)
        elif typ != d.FETCH_ERROR and entity in failed_entities:
            continue
        else:
            resolved.append(pk)
    now = timezone.now()
    if superseded:
        Discrepancy.objects.filter(pk__any=superseded).update(
            status=Discrepancy.Status.SUPERSEDED, resolved_at=now
        )
    if resolved:
        Discrepancy.objects.filter(pk__any=resolved).update(
            status=Discrepancy.Status.RESOLVED,
            resolved_at=now,
            resolved_by="system:reconciliation",
            resolution_reason=f"not seen in run {run.pk}",
        )


def _jsonable(value):
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


# --- logs (the runbook greps these) -------------------------------------------------------------
def _emit_logs(account: ExchangeAccount, outcome: PassOutcome) -> None:
    run = outcome.run
    if run.status == ReconciliationRun.Status.FAILED:
        return
    context = {"account": account.name, "run_id": run.pk}
    if not outcome.findings:
        # no `repairs_applied` key: the runbook's `grep "Auto-repair\|repairs_applied" | tail`
        # must keep showing the last real repairs, not the latest clean passes
        log.info(
            "Reconciliation clean (account=%s run=%s)",
            account.name,
            run.pk,
            extra={"structured": context, "with_message": True},
        )
        return
    summary = (
        f"Reconciliation found {run.discrepancies_found} discrepancies "
        f"(orders={run.order_discrepancies} positions={run.position_discrepancies} "
        f"balances={run.balance_discrepancies} repairs={run.repairs_applied})"
    )
    repaired = {"repairs_applied": run.repairs_applied} if run.repairs_applied else {}
    log.warning(summary, extra={"structured": {**context, **repaired}, "with_message": True})
    for f in outcome.findings:
        log.warning(json.dumps(f.detail), extra={"structured": {**f.detail, **context}})
    for f, result in outcome.applied:
        if result.applied:
            log.info(
                "Auto-repair applied: %s %s %s",
                f.type,
                f.key,
                _change_text(f, result),
                extra={
                    "structured": {**context, "repair": f.type, "key": f.key},
                    "with_message": True,
                },
            )
        else:
            log.warning(
                "Auto-repair deferred: %s %s: %s",
                f.type,
                f.key,
                result.error,
                extra={"structured": context, "with_message": True},
            )
    for row in outcome.persistent:
        log.warning(
            "Persistent desync: %s %s seen in %d consecutive passes",
            row.type,
            row.key,
            row.consecutive_runs,
            extra={
                "structured": {**context, "type": row.type, "key": row.key},
                "with_message": True,
            },
        )


def _change_text(f: d.Finding, result: SyncOutcome) -> str:
    before, after = result.before or {}, result.after or {}
    if f.entity == d.ORDERS:
        return f"{before.get('status', 'none')} -> {after.get('status')}"
    if f.entity == d.POSITIONS:
        return f"{before.get('qty', '0')} -> {after.get('qty')}"
    return f"{before.get('total', '0')} -> {after.get('total')}"


# --- staff actions -------------------------------------------------------------------------------
@transaction.atomic
def repair_apply(*, discrepancy: Discrepancy, actor: Actor, reason: str) -> Repair:
    """Apply a discrepancy's proposed repair (auto-repair off, or a dry run) as staff."""
    reason = require_reason(reason)
    row = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
    if not row.repairable:
        raise Conflict(NOT_REPAIRABLE.format(id=row.pk, status=row.status))
    plan = row.proposed_repair
    kind = plan["kind"]
    item = SyncItem(
        key=row.key,
        values=plan["values"],
        target_id=plan["target_id"],
        expected_version=plan["expected_version"],
        discrepancy_id=row.pk,
        reason=reason,
    )
    [result] = SYNC_BY_KIND[kind](account=row.account, items=[item], actor=actor, run_id=row.run_id)
    if not result.applied:
        raise Conflict(REPAIR_DEFERRED.format(error=result.error))
    repair = _repair_row(row, row.run, kind, result, actor, reason=reason)
    repair.save()
    row.status = Discrepancy.Status.REPAIRED
    row.resolved_at = timezone.now()
    row.resolved_by = actor.name[:150]
    row.resolution_reason = reason
    row.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_reason"])
    log.info(
        "Repair applied by %s: %s %s %s (reason: %s)",
        actor.name,
        row.type,
        row.key,
        _change_text_from(row, result),
        reason,
    )
    return repair


def _change_text_from(row: Discrepancy, result: SyncOutcome) -> str:
    f = d.Finding(type=row.type, entity=row.entity, key=row.key, detail={})
    return _change_text(f, result)


DISCREPANCY_AUDIT_FIELDS = ("type", "key", "status", "resolved_by", "resolution_reason")


@transaction.atomic
def discrepancy_acknowledge(*, discrepancy: Discrepancy, actor: Actor, reason: str) -> Discrepancy:
    """Staff accept a discrepancy as is (no local change); it leaves the open list."""
    reason = require_reason(reason)
    row = Discrepancy.objects.select_for_update().get(pk=discrepancy.pk)
    if row.status != Discrepancy.Status.OPEN:
        raise Conflict(ALREADY_CLOSED.format(id=row.pk, status=row.status))
    before = audit_snapshot(row, DISCREPANCY_AUDIT_FIELDS)
    row.status = Discrepancy.Status.ACKNOWLEDGED
    row.resolved_at = timezone.now()
    row.resolved_by = actor.name[:150]
    row.resolution_reason = reason
    row.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_reason"])
    audit_build(
        actor=actor,
        action="discrepancy.acknowledge",
        target=row,
        account=row.account,
        before=before,
        after=audit_snapshot(row, DISCREPANCY_AUDIT_FIELDS),
        reason=reason,
        run_id=row.run_id,
        discrepancy_id=row.pk,
    ).save(force_insert=True)
    return row
