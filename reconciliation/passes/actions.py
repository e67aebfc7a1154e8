"""Staff actions on a pass's discrepancies: apply the proposed repair, or acknowledge it.
Both go through the same sync services as auto-repair, with the acting user and a reason.
A repair that builds on others of its pass (``requires``) waits for them as in the pass:
it is refused while their discrepancies are not repaired."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from reconciliation.locks import discrepancy_qs_select_for_update
from reconciliation.models import Discrepancy, Repair
from reconciliation.passes.log import log_repair_by_staff
from reconciliation.passes.persist import REQUIREMENT_UNMET, repair_row
from tradingstate.actors import Actor
from tradingstate.errors import Conflict
from tradingstate.services import require_reason
from tradingstate.services.audit import audit_snapshot
from tradingstate.services.events import discrepancy_acknowledged
from tradingstate.services.sync import SYNC_BY_KIND, SyncItem
from tradingstate.sync_kinds import RepairKind

NOT_REPAIRABLE = "Discrepancy {id} has no repair to apply (status {status})."
REPAIR_DEFERRED = "The repair was not applied: {error}. Reconcile again to refresh it."
ALREADY_CLOSED = "Discrepancy {id} is {status}, not open."
DISCREPANCY_AUDIT_FIELDS = ("type", "key", "status", "resolved_by", "resolution_reason")


@transaction.atomic
def repair_apply(*, discrepancy: Discrepancy, actor: Actor, reason: str) -> Repair:
    """Apply a discrepancy's proposed repair (auto-repair off, or a dry run) as staff."""
    reason = require_reason(reason)
    row = discrepancy_qs_select_for_update().get(pk=discrepancy.pk)
    if not row.repairable:
        raise Conflict(NOT_REPAIRABLE.format(id=row.pk, status=row.status))
    plan = row.proposed_repair
    unmet = _requirement_unmet(row, plan.get("requires") or ())
    if unmet:
        raise Conflict(REPAIR_DEFERRED.format(error=unmet))
    kind = RepairKind(plan["kind"])
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
    repair = repair_row(row, row.run, kind, result, actor, reason=reason)
    repair.save()
    row.status = Discrepancy.Status.REPAIRED
    row.resolved_at = timezone.now()
    row.resolved_by = actor.name[:150]
    row.resolution_reason = reason
    row.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_reason"])
    log_repair_by_staff(actor, row, result, reason)
    return repair


REQUIREMENT_STATUS = "its discrepancy is {status}"
REQUIREMENT_MISSING = "run {run_id} has no such discrepancy"


def _requirement_unmet(row: Discrepancy, requires) -> str:
    """Why a repair of ``row`` may not go ahead: the first of the repairs it builds on
    (its run's discrepancies named by ``requires``) not repaired, else ""."""
    for typ, key in requires:
        status = (
            Discrepancy.objects.filter(run_id=row.run_id, type=typ, key=key[:128])
            .values_list("status", flat=True)
            .first()
        )
        if status == Discrepancy.Status.REPAIRED:
            continue
        error = (
            REQUIREMENT_MISSING.format(run_id=row.run_id)
            if status is None
            else REQUIREMENT_STATUS.format(status=status)
        )
        return REQUIREMENT_UNMET.format(type=typ, key=key, error=error)
    return ""


@transaction.atomic
def discrepancy_acknowledge(*, discrepancy: Discrepancy, actor: Actor, reason: str) -> Discrepancy:
    """Staff accept a discrepancy as is (no local change); it leaves the open list."""
    reason = require_reason(reason)
    row = discrepancy_qs_select_for_update().get(pk=discrepancy.pk)
    if row.status != Discrepancy.Status.OPEN:
        raise Conflict(ALREADY_CLOSED.format(id=row.pk, status=row.status))
    before = audit_snapshot(row, DISCREPANCY_AUDIT_FIELDS)
    row.status = Discrepancy.Status.ACKNOWLEDGED
    row.resolved_at = timezone.now()
    row.resolved_by = actor.name[:150]
    row.resolution_reason = reason
    row.save(update_fields=["status", "resolved_at", "resolved_by", "resolution_reason"])
    discrepancy_acknowledged(
        discrepancy=row,
        before=before,
        after=audit_snapshot(row, DISCREPANCY_AUDIT_FIELDS),
        actor=actor,
        reason=reason,
    )
    return row
