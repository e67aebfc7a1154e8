"""Retention: ``manage.py prune`` (and the daily django-q2 schedule) delete old bookkeeping.

Per table (``[retention]``, days; 0 keeps forever):
- ``runs_days``: finished runs that no kept discrepancy or repair refers to (clean passes are
  most of them; a run that found something stays as long as its discrepancies do);
- ``discrepancies_days``: closed discrepancies (repaired, acknowledged, superseded, resolved)
  that were never persistent and have no kept repair;
- ``repairs_days``: repair records;
- ``heartbeats_days``: worker heartbeats of roles that stopped beating;
- ``notifications_days``: notification records that are sent or given up.

Never touched: the audit trail (``AuditEntry``), fills, orders, positions, balances, open or
persistent discrepancies, unfinished runs. Counters that ``/metrics`` exports are folded into
rollups first (``reconciliation.rollups``) and only folded rows are deleted, so Prometheus
totals survive. Deletes go in batches of ``batch_size`` ids, each its own short transaction,
with ``pause_ms`` between batches: a pass running meanwhile is never locked out for longer
than one batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from reconciliation.models import Discrepancy, ReconciliationRun, Repair, WorkerHeartbeat
from reconciliation.rollups import metrics_fold
from tradingstate.services.notifications import notifications_prune_queryset

log = logging.getLogger("reconciliation")

CLOSED = [
    Discrepancy.Status.REPAIRED,
    Discrepancy.Status.ACKNOWLEDGED,
    Discrepancy.Status.SUPERSEDED,
    Discrepancy.Status.RESOLVED,
]


@dataclass
class PruneResult:
    deleted: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    slowest_batch_ms: float = 0.0
    seconds: float = 0.0

    def summary(self) -> str:
        parts = " ".join(f"{k}={v}" for k, v in self.deleted.items())
        return (
            f"Pruned {parts} in {self.seconds:.1f}s "
            f"({self.batches} batches, slowest {self.slowest_batch_ms:.0f} ms)"
        )


def prune_plan(now=None, retention=None) -> list[tuple[str, type, object]]:
    """(name, model, queryset of deletable rows) in dependency order."""
    now = now or timezone.now()
    cfg = retention or settings.TRADINGSTATE.retention
    marks = metrics_fold()

    def cutoff(days: int):
        return now - timedelta(days=days)

    plan = []
    if cfg.repairs_days:
        plan.append((
            "repairs", Repair,
            Repair.objects.filter(created_at__lt=cutoff(cfg.repairs_days),
                                  pk__lte=marks.get("repairs", 0)),
        ))  # fmt: skip
    if cfg.discrepancies_days:
        plan.append((
            "discrepancies", Discrepancy,
            Discrepancy.objects.filter(
                created_at__lt=cutoff(cfg.discrepancies_days), status__in=CLOSED,
                persistent=False, pk__lte=marks.get("discrepancies", 0),
            ).exclude(Exists(Repair.objects.filter(discrepancy=OuterRef("pk")))),
        ))  # fmt: skip
    if cfg.runs_days:
        plan.append((
            "runs", ReconciliationRun,
            ReconciliationRun.objects.filter(
                created_at__lt=cutoff(cfg.runs_days),
                status__in=list(ReconciliationRun.FINISHED_STATUSES),
                pk__lte=marks.get("runs", 0),
            )
            .exclude(Exists(Discrepancy.objects.filter(run=OuterRef("pk"))))
            .exclude(Exists(Repair.objects.filter(run=OuterRef("pk")))),
        ))  # fmt: skip
    if cfg.heartbeats_days:
        plan.append((
            "heartbeats", WorkerHeartbeat,
            WorkerHeartbeat.objects.filter(beat_at__lt=cutoff(cfg.heartbeats_days)),
        ))  # fmt: skip
    if cfg.notifications_days:
        plan.append(
            ("notifications", *notifications_prune_queryset(cutoff(cfg.notifications_days)))
        )
    return plan


def prune(
    *, now=None, retention=None, on_batch: Callable[[str, int, float], None] | None = None
) -> PruneResult:
    cfg = retention or settings.TRADINGSTATE.retention
    result = PruneResult()
    started = time.perf_counter()
    for name, model, qs in prune_plan(now, cfg):
        total = 0
        while True:
            t0 = time.perf_counter()
            with transaction.atomic():
                ids = list(qs.order_by("pk").values_list("pk", flat=True)[: cfg.batch_size])
                if ids:
                    _delete_ids(model, ids)
            ms = (time.perf_counter() - t0) * 1000
            if not ids:
                break
            total += len(ids)
            result.batches += 1
            result.slowest_batch_ms = max(result.slowest_batch_ms, ms)
            if on_batch:
                on_batch(name, len(ids), ms)
            if len(ids) < cfg.batch_size:
                break
            time.sleep(cfg.pause_ms / 1000)
        result.deleted[name] = total
    result.seconds = time.perf_counter() - started
    log.info(result.summary(), extra={"structured": result.deleted, "with_message": True})
    return result


def _delete_ids(model, ids: list[int]) -> None:
    """One DELETE by primary key (no ORM collector: the rows were chosen unreferenced)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"DELETE FROM {table} WHERE id = ANY(%s)", [ids])  # noqa: S608
        else:
            marks = ",".join(["%s"] * len(ids))
            cur.execute(f"DELETE FROM {table} WHERE id IN ({marks})", ids)  # noqa: S608
