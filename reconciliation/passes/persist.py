"""Step 3: write what the pass found in ONE short transaction: the run row, its
discrepancies, and (auto-repair) the repairs with their audit rows. The sync services lock
the rows they change and re-check each row's version, so a bot's update made while the
exchange was being asked is never overwritten (the repair is deferred instead).

A repair that builds on others of the pass (``RepairPlan.requires``: a fill of an order
the pass creates) is applied only when they were; else it is deferred with their reason
(:data:`REQUIREMENT_UNMET`), never applied on a state that does not exist. Each repair
has its own outcome: one finding, one Repair row, at most one audit entry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from reconciliation import diff as d
from reconciliation.alerts import alerts_account_stopped, alerts_after_pass
from reconciliation.locks import LeaseLost, account_pass_lease_confirm
from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.passes.context import PassContext, PassOutcome, reconciliation_actor
from reconciliation.passes.fetch import MarksFetch
from reconciliation.selectors import (
    discrepancies_open_before,
    discrepancy_counts_previous_run,
    run_of_account,
)
from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.db.rows import row_update, update_fields
from tradingstate.models import ExchangeAccount
from tradingstate.services import account_set_enabled
from tradingstate.services.bulk import (
    RowFactory,
    rows_bulk_create,
    rows_bulk_create_reserved,
    rows_bulk_insert,
    rows_ids_reserve,
)
from tradingstate.services.marks import mark_prices_record
from tradingstate.services.sync import SYNC_BY_KIND, SyncItem, SyncOutcome
from tradingstate.sync_kinds import REPAIR_ORDER, RepairKind

__all__ = ["LeaseLost", "persist_pass", "record_auth_failure", "record_run_end"]

REQUIREMENT_UNMET = "{type} {key} was not applied: {error}"
NO_REPAIR = "it has no repair in this pass"

new_discrepancy = RowFactory(Discrepancy)
new_repair = RowFactory(Repair)
# what a pass writes on a run row it did not insert (a queued run): all but who asked for
# it, how, and when (the ticker's or staff's), in one prepared UPDATE
RUN_WRITTEN = update_fields(
    ReconciliationRun, keep=("account", "trigger", "requested_by", "created_at")
)


def persist_pass(
    ctx: PassContext,
    *,
    snapshot: d.ExchangeSnapshot,
    local: d.LocalSnapshot,
    findings: list[d.Finding],
    retry_after: float | None,
    marks: MarksFetch | None = None,
    previous: dict[tuple[str, str], int] | None = None,
) -> PassOutcome:
    """``previous``: the previous pass's ``consecutive_runs`` by (type, key) when the pass
    read them already (else read here)."""
    with transaction.atomic():
        # raises LeaseLost; a new run's id comes with it (PostgreSQL), its row goes in last
        run_id = account_pass_lease_confirm(
            ctx.account.pk, next_id_of=ReconciliationRun if ctx.run_id is None else None
        )
        outcome = _persist(
            ctx,
            new_run_id=run_id,
            snapshot=snapshot,
            local=local,
            findings=findings,
            retry_after=retry_after,
            previous=previous,
        )
        if marks is not None and marks.supported and marks.asked:
            mark_prices_record(
                account=ctx.account,
                asked=marks.asked,
                prices=marks.prices,
                now=timezone.now(),
                error=marks.error,
            )
            outcome.marks_error = marks.error
        return outcome


def _persist(
    ctx, *, snapshot, local, findings, retry_after, previous=None, new_run_id=None
) -> PassOutcome:
    account = ctx.account
    run = _run_row(ctx, new_run_id)
    if previous is None:
        previous = discrepancy_counts_previous_run(account=account, before_id=run.pk)
    threshold = settings.TRADINGSTATE.persistent_desync_runs
    rows = []
    for f in findings:
        consecutive = previous.get((f.type, f.key), 0) + 1
        rows.append(
            new_discrepancy(
                run=run,
                account=account,
                type=f.type,
                entity=f.entity,
                key=f.key[:128],
                local_value=f.local,
                exchange_value=f.exchange,
                detail=f.detail,
                exchange_payload=jsonable(f.payload),
                proposed_repair=f.repair.as_json() if f.repair else None,
                consecutive_runs=consecutive,
                persistent=consecutive >= threshold,
                resolution_reason=f.note,
            )
        )
    # the rows' ids first where the database can give them before the insert (PostgreSQL):
    # then the repaired ones go in already repaired, instead of an UPDATE of each right after
    reserved = rows_ids_reserve(Discrepancy, rows)
    if not reserved:
        rows_bulk_create(Discrepancy, rows)
    outcome = PassOutcome(run=run, findings=findings)
    outcome.persistent = [r for r in rows if r.persistent]

    # a pause set by staff (after a manual correction) holds the repairs, not the diff
    repaired: list[Discrepancy] = []
    if account.auto_repair_active(timezone.now()) and not ctx.dry_run:
        outcome.applied, repaired = _apply_repairs(account, run, findings, rows)
    _mark_repaired(rows, repaired, reserved, reconciliation_actor(run.pk))
    _close_previous(account, run, findings, snapshot)

    now = timezone.now()
    counts = {d.ORDERS: 0, d.POSITIONS: 0, d.BALANCES: 0, d.FILLS: 0}
    for f in findings:
        if f.type != d.DiscrepancyType.FETCH_ERROR:
            counts[f.entity] += 1
    run.status = (
        ReconciliationRun.Status.INCOMPLETE
        if snapshot.errors
        else ReconciliationRun.Status.COMPLETED
    )
    run.finished_at = now
    run.duration_ms = ctx.elapsed_ms()
    run.orders_synced = len(d.venue_orders_unique(snapshot.orders or [])) + sum(
        1 for o in local.orders if o.status in transitions.ACTIVE
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
    run.fill_discrepancies = counts[d.FILLS]
    run.trades_synced = len(snapshot.trades or [])
    run.repairs_applied = sum(1 for _, o in outcome.applied if o.applied)
    run.repairs_deferred = sum(1 for _, o in outcome.applied if not o.applied)
    run.retry_after_seconds = int(retry_after) if retry_after else None
    run.error = "; ".join(f"{k}: {v}" for k, v in sorted(snapshot.errors.items()))
    # a reserved id: the row's one INSERT (the rows naming it were written first; their
    # foreign keys are checked at commit), else the UPDATE of the row inserted or read first
    if run._state.adding:
        run.save(force_insert=True)
    else:
        row_update(run, RUN_WRITTEN)
    updates = {"last_reconciled_at": now}
    if snapshot.trades_watermark is not None and not ctx.dry_run:
        updates["fills_watermark_at"] = fills_watermark(snapshot.trades_watermark, outcome)
    if (
        run.status == ReconciliationRun.Status.COMPLETED
        and account.recovery_started_at is not None
        and ctx.started >= account.recovery_started_at
    ):
        updates["recovery_started_at"] = None
    ExchangeAccount.objects.filter(pk=account.pk).update(**updates)
    alerts_after_pass(account=account, run=run, outcome=outcome)  # sent after commit
    return outcome


def fills_watermark(candidate, outcome: PassOutcome):
    """The trade watermark after this pass: never past a venue trade still missing locally
    (auto-repair off, a deferred repair), so the next pass reads it again."""
    repaired = {id(f) for f, result in outcome.applied if result.applied}
    for f in outcome.findings:
        if f.type != d.MISSING_FILL or id(f) in repaired or f.detail.get("inferred"):
            continue
        executed = datetime.fromisoformat((f.exchange or {})["executed_at"])
        candidate = min(candidate, executed)
    return candidate


def _run_row(ctx: PassContext, new_run_id: int | None = None) -> ReconciliationRun:
    """The pass's run row: the queued one (``ctx.run_id``), else a new one, inserted now,
    or, given an id reserved for it, built now and inserted when the pass ends."""
    if ctx.run_id is not None:
        run = run_of_account(ctx.run_id, ctx.account.pk)
        if run is not None:
            run.status = ReconciliationRun.Status.RUNNING
            run.started_at = ctx.started
            return run
    values = {
        "account": ctx.account,
        "trigger": ctx.trigger,
        "dry_run": ctx.dry_run,
        "status": ReconciliationRun.Status.RUNNING,
        "started_at": ctx.started,
        "requested_by": ctx.requested_by,
    }
    if new_run_id is not None:
        return ReconciliationRun(pk=new_run_id, **values)
    return ReconciliationRun.objects.create(**values)


def _mark_repaired(rows, repaired, reserved: bool, actor: Actor) -> None:
    """The repaired discrepancies' status: set on the rows before their insert (their ids
    were reserved), else one UPDATE of the inserted rows."""
    values = {
        "status": Discrepancy.Status.REPAIRED,
        "resolved_at": timezone.now(),
        "resolved_by": actor.name,
        "resolution_reason": "auto-repair",
    }
    if reserved:
        for row in repaired:
            for name, value in values.items():
                setattr(row, name, value)
        rows_bulk_create_reserved(Discrepancy, rows)
    elif repaired:
        Discrepancy.objects.filter(pk__any=[row.pk for row in repaired]).update(**values)


def _apply_repairs(
    account, run, findings, rows
) -> tuple[list[tuple[d.Finding, SyncOutcome]], list[Discrepancy]]:
    """(each repair's finding and outcome, the discrepancy rows repaired)."""
    actor = reconciliation_actor(run.pk)
    by_kind: dict[RepairKind, list[tuple[d.Finding, Discrepancy]]] = {}
    for f, row in zip(findings, rows, strict=True):
        if f.repair is not None:
            by_kind.setdefault(f.repair.kind, []).append((f, row))
    applied: list[tuple[d.Finding, SyncOutcome]] = []
    repairs: list[Repair] = []
    repaired: list[Discrepancy] = []
    moved: dict[str, tuple[int | None, int, int | None]] = {}  # positions the fills moved
    orders_moved: dict[int, tuple[int, int]] = {}  # order id -> (version seen, version left)
    done: dict[d.Requirement, SyncOutcome] = {}  # each repair's outcome, by (type, key)
    for kind in REPAIR_ORDER:
        pairs = by_kind.get(kind, [])
        if not pairs:
            continue
        results: list[SyncOutcome | None] = [
            requirement_unmet(f, row, done) for f, row in pairs
        ]  # a deferral where a prerequisite was not applied, else None (to apply now)
        ready = [n for n, result in enumerate(results) if result is None]
        items = [
            sync_item(pairs[n][0], pairs[n][1], reason=f"auto-repair: {pairs[n][0].type}")
            for n in ready
        ]
        if kind == RepairKind.POSITION_SET:
            chain_position_versions(items, moved)
        if kind == RepairKind.FILL_RECORD:
            chain_order_versions(items, orders_moved)
        outcomes = (
            SYNC_BY_KIND[kind](account=account, items=items, actor=actor, run_id=run.pk)
            if items
            else []
        )
        if kind in (RepairKind.FILL_RECORD, RepairKind.FILL_CORRECT):
            note_moved_positions(outcomes, moved)
        if kind == RepairKind.ORDER_STATE:
            for result in outcomes:
                if result.applied and result.before and result.after:
                    orders_moved[result.target_id] = (
                        result.before["version"],
                        result.after["version"],
                    )
        for n, result in zip(ready, outcomes, strict=True):
            results[n] = result
        for (f, row), result in zip(pairs, results, strict=True):
            assert result is not None
            applied.append((f, result))
            repairs.append(repair_row(row, run, kind, result, actor, reason="auto-repair"))
            if result.applied:
                repaired.append(row)
            earlier = done.get((f.type, f.key))
            if earlier is None or not earlier.applied:  # an applied one stays applied
                done[(f.type, f.key)] = result
    rows_bulk_insert(Repair, repairs)
    return applied, repaired


def requirement_unmet(
    f: d.Finding, row: Discrepancy, done: dict[d.Requirement, SyncOutcome]
) -> SyncOutcome | None:
    """The deferral of ``f``'s repair when a repair it requires was not applied in this pass
    (deferred, or never planned), with that repair's reason; None when it may go ahead."""
    for typ, key in f.repair.requires:
        prerequisite = done.get((typ, key))
        if prerequisite is not None and prerequisite.applied:
            continue
        error = prerequisite.error if prerequisite is not None else NO_REPAIR
        return SyncOutcome(
            f.key,
            False,
            error=REQUIREMENT_UNMET.format(type=typ, key=key, error=error),
            discrepancy_id=row.pk,
        )
    return None


def note_moved_positions(outcomes: list[SyncOutcome], moved: dict) -> None:
    """Record, per symbol, the position version this pass's fills found first and left last
    (and the row's id), so the pass's own ``position_mismatch`` repair is not mistaken for a
    concurrent change."""
    for result in outcomes:
        if not result.applied or "position_version" not in result.extra:
            continue
        symbol = result.extra["symbol"]
        first, last = result.extra["position_version"]
        pk = result.extra.get("position_id")
        if last is None:
            continue
        if symbol in moved:
            first = moved[symbol][0]
        moved[symbol] = (first, last, pk)


def chain_order_versions(items: list[SyncItem], moved: dict) -> None:
    """A fill repair expects its order's snapshot version; where this pass's own order
    repair moved the order from exactly that version, it expects the version it left."""
    for item in items:
        order_id = item.values.get("order_id")
        if order_id in moved and item.values.get("order_version") == moved[order_id][0]:
            item.values = {**item.values, "order_version": moved[order_id][1]}


def chain_position_versions(items: list[SyncItem], moved: dict) -> None:
    """A ``position_mismatch`` repair planned from the snapshot expects the version the
    snapshot saw. Where this pass's fills moved the row from exactly that version, it now
    expects the version they left (a bot's write in between still defers it)."""
    for item in items:
        symbol = item.values.get("symbol")
        if symbol not in moved:
            continue
        first, last, pk = moved[symbol]
        if item.target_id is None and first is None:
            item.target_id, item.expected_version = pk, last
        elif item.expected_version is not None and item.expected_version == first:
            item.expected_version = last


def sync_item(f: d.Finding, row: Discrepancy, *, reason: str) -> SyncItem:
    return SyncItem(
        key=f.key,
        values=f.repair.values,
        target_id=f.repair.target_id,
        expected_version=f.repair.expected_version,
        discrepancy_id=row.pk,
        reason=reason,
    )


def repair_row(row, run, kind, result: SyncOutcome, actor: Actor, reason: str) -> Repair:
    return new_repair(
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
    for pk, typ, key, entity in discrepancies_open_before(account=account, run_id=run.pk):
        if (typ, key) in seen:
            superseded.append(pk)
        elif typ != d.DiscrepancyType.FETCH_ERROR and entity in failed_entities:
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


def record_run_end(ctx: PassContext, status: str, error: str) -> ReconciliationRun:
    """A pass that persisted nothing (skipped, failed): its run row, finished."""
    now = timezone.now()
    values = {
        "status": status,
        "started_at": ctx.started,
        "finished_at": now,
        "duration_ms": int((now - ctx.started).total_seconds() * 1000),
        "error": error,
    }
    if ctx.run_id is not None and ReconciliationRun.objects.filter(pk=ctx.run_id).update(**values):
        return ReconciliationRun.objects.get(pk=ctx.run_id)
    return ReconciliationRun.objects.create(
        account=ctx.account,
        trigger=ctx.trigger,
        dry_run=ctx.dry_run,
        requested_by=ctx.requested_by,
        **values,
    )


def record_auth_failure(ctx: PassContext, exc: Exception) -> PassOutcome:
    """Stop the account's passes until staff re-enable it, and record the failed run."""
    reason = f"authentication failed: {exc}"
    with transaction.atomic():
        account_set_enabled(
            account=ctx.account,
            enabled=False,
            actor=Actor.system("reconciliation"),
            reason="passes stopped until staff re-enable the account",
            disabled_reason=reason,
        )
        run = record_run_end(ctx, ReconciliationRun.Status.FAILED, reason)
        alerts_account_stopped(account=ctx.account, reason=reason)
    return PassOutcome(run=run)


def jsonable(value):
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal | datetime):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value
