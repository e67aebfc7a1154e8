"""Counter rollups: fold finished runs, discrepancies and repairs into MetricsRollup.

A watermark per table says which rows are folded (``id <= last_id``). ``/metrics`` adds the
rollup rows to an aggregate of the rows above the watermark (a primary-key range: the last
minutes of passes), and ``manage.py prune`` deletes only folded rows, so the Prometheus
counters never go down. ``metrics_fold`` runs before every prune and from the periodic checks.

Runs are folded once finished. The watermark stops below the oldest unfinished run younger
than a day (a queued pass not yet picked up); a run still unfinished after a day (its worker
died and the ticker marked nothing) is passed over and never counted.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.db import transaction
from django.db.models import Count, F, Max, Min, Q, Sum
from django.utils import timezone

from reconciliation.models import (
    Discrepancy,
    MetricsRollup,
    ReconciliationRun,
    Repair,
    RollupWatermark,
)

BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
TIMED = (ReconciliationRun.Status.COMPLETED, ReconciliationRun.Status.INCOMPLETE)
FINISHED = tuple(ReconciliationRun.FINISHED_STATUSES)
UNFINISHED_HORIZON = timedelta(days=1)
FOLD_CHUNK = 10_000  # ids per transaction (short: SQLite has one writer)


def run_aggregates(qs) -> list[dict]:
    """Per (account, status): count, duration sum and buckets (timed statuses), last finish."""
    buckets = {
        f"le_{b}": Count("id", filter=Q(duration_ms__lte=b, status__in=TIMED)) for b in BUCKETS_MS
    }
    return list(
        qs.filter(status__in=FINISHED)
        .values("account_id", "status")
        .annotate(
            n=Count("id"),
            n_timed=Count("id", filter=Q(status__in=TIMED)),
            total_ms=Sum("duration_ms", filter=Q(status__in=TIMED)),
            last_at=Max("finished_at"),
            **buckets,
        )
        .order_by()
    )


def discrepancy_aggregates(qs) -> list[dict]:
    return list(qs.values("account_id", "type").annotate(n=Count("id")).order_by())


def repair_aggregates(qs) -> list[dict]:
    return list(qs.values("account_id", "status", "actor_type").annotate(n=Count("id")).order_by())


def watermarks() -> dict[str, int]:
    return dict(RollupWatermark.objects.values_list("name", "last_id"))


def metrics_fold() -> dict[str, int]:
    """Fold everything foldable now; returns the new watermarks."""
    out = {}
    for name in ("runs", "discrepancies", "repairs"):
        while True:
            moved, last = _fold_chunk(name)
            out[name] = last
            if not moved:
                break
    return out


@transaction.atomic
def _fold_chunk(name: str) -> tuple[bool, int]:
    mark, _ = RollupWatermark.objects.get_or_create(name=name)
    mark = RollupWatermark.objects.select_for_update().get(pk=mark.pk)
    low = mark.last_id
    model = {"runs": ReconciliationRun, "discrepancies": Discrepancy, "repairs": Repair}[name]
    top = model.objects.filter(pk__gt=low).aggregate(m=Max("pk"))["m"]
    if top is None:
        return False, low
    high = min(top, low + FOLD_CHUNK)
    if name == "runs":
        waiting = (
            ReconciliationRun.objects.filter(pk__gt=low, pk__lte=high)
            .exclude(status__in=FINISHED)
            .filter(created_at__gte=timezone.now() - UNFINISHED_HORIZON)
            .aggregate(m=Min("pk"))["m"]
        )
        if waiting is not None:
            high = waiting - 1
        if high <= low:
            return False, low
        _add_runs(run_aggregates(ReconciliationRun.objects.filter(pk__gt=low, pk__lte=high)))
    elif name == "discrepancies":
        rows = discrepancy_aggregates(Discrepancy.objects.filter(pk__gt=low, pk__lte=high))
        _add(
            MetricsRollup.Kind.DISCREPANCY, [(r["account_id"], r["type"], "", r["n"]) for r in rows]
        )
    else:
        rows = repair_aggregates(Repair.objects.filter(pk__gt=low, pk__lte=high))
        _add(
            MetricsRollup.Kind.REPAIR,
            [(r["account_id"], r["status"], r["actor_type"], r["n"]) for r in rows],
        )
    mark.last_id = high
    mark.save(update_fields=["last_id", "updated_at"])
    return high < top, high


def _row(kind, account_id, label, label2) -> MetricsRollup:
    row, _ = MetricsRollup.objects.select_for_update().get_or_create(
        kind=kind, account_id=account_id, label=label, label2=label2
    )
    return row


def _add(kind, items) -> None:
    for account_id, label, label2, n in items:
        row = _row(kind, account_id, label, label2)
        MetricsRollup.objects.filter(pk=row.pk).update(count=F("count") + n)


def _add_runs(rows: list[dict]) -> None:
    for r in rows:
        row = _row(MetricsRollup.Kind.PASS, r["account_id"], r["status"], "")
        row.count += r["n"]
        row.duration_ms_sum += r["total_ms"] or 0
        buckets = dict(row.buckets or {})
        for b in BUCKETS_MS:
            buckets[str(b)] = buckets.get(str(b), 0) + r[f"le_{b}"]
        buckets["n_timed"] = buckets.get("n_timed", 0) + r["n_timed"]
        row.buckets = buckets
        if r["last_at"] and (row.last_at is None or r["last_at"] > row.last_at):
            row.last_at = r["last_at"]
        row.save()


def totals() -> dict:
    """Rollups plus the unfolded rows: what /metrics exports. A handful of statements."""
    marks = watermarks()
    passes: dict[tuple, dict] = defaultdict(
        lambda: {"n": 0, "n_timed": 0, "total_ms": 0, "last_at": None, **{b: 0 for b in BUCKETS_MS}}
    )
    discrepancies: dict[tuple, int] = defaultdict(int)
    repairs: dict[tuple, int] = defaultdict(int)
    for row in MetricsRollup.objects.all():
        if row.kind == MetricsRollup.Kind.PASS:
            p = passes[(row.account_id, row.label)]
            p["n"] += row.count
            p["n_timed"] += (row.buckets or {}).get("n_timed", 0)
            p["total_ms"] += row.duration_ms_sum
            p["last_at"] = _later(p["last_at"], row.last_at)
            for b in BUCKETS_MS:
                p[b] += (row.buckets or {}).get(str(b), 0)
        elif row.kind == MetricsRollup.Kind.DISCREPANCY:
            discrepancies[(row.account_id, row.label)] += row.count
        else:
            repairs[(row.account_id, row.label, row.label2)] += row.count
    live = ReconciliationRun.objects.filter(pk__gt=marks.get("runs", 0))
    for r in run_aggregates(live):
        p = passes[(r["account_id"], r["status"])]
        p["n"] += r["n"]
        p["n_timed"] += r["n_timed"]
        p["total_ms"] += r["total_ms"] or 0
        p["last_at"] = _later(p["last_at"], r["last_at"])
        for b in BUCKETS_MS:
            p[b] += r[f"le_{b}"]
    live_d = Discrepancy.objects.filter(pk__gt=marks.get("discrepancies", 0))
    for r in discrepancy_aggregates(live_d):
        discrepancies[(r["account_id"], r["type"])] += r["n"]
    for r in repair_aggregates(Repair.objects.filter(pk__gt=marks.get("repairs", 0))):
        repairs[(r["account_id"], r["status"], r["actor_type"])] += r["n"]
    return {"passes": passes, "discrepancies": discrepancies, "repairs": repairs}


def _later(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return max(a, b)
