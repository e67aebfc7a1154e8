"""Reconciliation runs, the discrepancies they find and the repairs applied to them."""

from __future__ import annotations

from django.db import models

from reconciliation.diff import DiscrepancyType
from tradingstate.models import ExchangeAccount
from tradingstate.sync_kinds import RepairKind


class ReconciliationRun(models.Model):
    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", "Schedule"
        MANUAL = "manual", "Manual"
        STARTUP = "startup", "Startup"
        API = "api", "API"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        COMPLETED = "completed", "Completed"
        INCOMPLETE = "incomplete", "Incomplete (a fetch failed)"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped (another pass held the lock)"

    FINISHED_STATUSES = frozenset(
        {Status.COMPLETED, Status.INCOMPLETE, Status.FAILED, Status.SKIPPED}
    )

    account = models.ForeignKey(
        ExchangeAccount, on_delete=models.PROTECT, related_name="reconciliation_runs"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    dry_run = models.BooleanField(default=False)
    requested_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    orders_synced = models.PositiveIntegerField(default=0)
    positions_synced = models.PositiveIntegerField(default=0)
    balances_synced = models.PositiveIntegerField(default=0)
    discrepancies_found = models.PositiveIntegerField(default=0)
    order_discrepancies = models.PositiveIntegerField(default=0)
    position_discrepancies = models.PositiveIntegerField(default=0)
    balance_discrepancies = models.PositiveIntegerField(default=0)
    fill_discrepancies = models.PositiveIntegerField(default=0)
    trades_synced = models.PositiveIntegerField(
        default=0, help_text="Venue trades compared with the local fills."
    )
    repairs_applied = models.PositiveIntegerField(default=0)
    repairs_deferred = models.PositiveIntegerField(
        default=0, help_text="Repairs not applied because the local row changed meanwhile."
    )
    retry_after_seconds = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["account", "-id"], name="run_account_recent")]

    def __str__(self) -> str:
        return f"run {self.pk} {self.account_id} {self.status}"


class Discrepancy(models.Model):
    # the diff's DiscrepancyType, as model choices (one definition)
    Type = models.TextChoices("Type", [(t.name, (t.value, t.label)) for t in DiscrepancyType])

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REPAIRED = "repaired", "Repaired"
        ACKNOWLEDGED = "acknowledged", "Acknowledged"
        SUPERSEDED = "superseded", "Seen again in a later pass"
        RESOLVED = "resolved", "Gone (resolved without a repair)"

    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, related_name="discrepancies"
    )
    account = models.ForeignKey(  # indexed by the (account, ...) indexes below
        ExchangeAccount, on_delete=models.PROTECT, related_name="discrepancies", db_index=False
    )
    type = models.CharField(max_length=24, choices=Type.choices, db_index=True)
    entity = models.CharField(max_length=10)  # orders | positions | balances | fills
    key = models.CharField(max_length=128)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    local_value = models.JSONField(null=True, blank=True)
    exchange_value = models.JSONField(null=True, blank=True)
    detail = models.JSONField(default=dict, help_text="The structured log fields.")
    exchange_payload = models.JSONField(null=True, blank=True)
    proposed_repair = models.JSONField(null=True, blank=True)
    consecutive_runs = models.PositiveIntegerField(default=1)
    persistent = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.CharField(max_length=150, blank=True)
    resolution_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "discrepancies"
        indexes = [
            models.Index(fields=["account", "status"], name="discrepancy_account_status"),
            models.Index(fields=["account", "type", "key"], name="discrepancy_identity"),
            # the open ones (what /metrics and the console count), whatever the history size
            models.Index(
                fields=["account", "type"],
                condition=models.Q(status="open"),
                name="discrepancy_open",
            ),
        ]
        permissions = [
            ("apply_repair", "Can apply a repair to a discrepancy"),
            ("acknowledge_discrepancy", "Can acknowledge a discrepancy"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.key} [{self.status}]"

    @property
    def repairable(self) -> bool:
        return self.status == self.Status.OPEN and bool(self.proposed_repair)


class Repair(models.Model):
    class Status(models.TextChoices):
        APPLIED = "applied", "Applied"
        DEFERRED = "deferred", "Deferred (row changed since the snapshot)"
        REFUSED = "refused", "Refused"

    discrepancy = models.ForeignKey(Discrepancy, on_delete=models.PROTECT, related_name="repairs")
    run = models.ForeignKey(
        ReconciliationRun, on_delete=models.PROTECT, related_name="repairs", null=True
    )
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="+")
    action = models.CharField(max_length=32, choices=[(k.value, k.value) for k in RepairKind])
    status = models.CharField(max_length=10, choices=Status.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    actor_type = models.CharField(max_length=8)
    actor_name = models.CharField(max_length=150)
    reason = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.action} [{self.status}] by {self.actor_name}"


class WorkerHeartbeat(models.Model):
    """The ticker's leadership and liveness (one row per role)."""

    role = models.CharField(max_length=32, unique=True)
    holder = models.CharField(max_length=200)
    beat_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.role} {self.holder} {self.beat_at:%H:%M:%S}"


class MetricsRollup(models.Model):
    """Totals folded from runs, discrepancies and repairs (``reconciliation.rollups``).

    ``/metrics`` reads these small rows plus the rows not yet folded (above the watermark),
    so a scrape never aggregates history, and the counters keep their totals when
    ``manage.py prune`` deletes the folded rows.
    """

    class Kind(models.TextChoices):
        PASS = "pass", "Reconciliation passes"
        DISCREPANCY = "discrepancy", "Discrepancies"
        REPAIR = "repair", "Repairs"

    kind = models.CharField(max_length=12, choices=Kind.choices)
    account = models.ForeignKey(ExchangeAccount, on_delete=models.PROTECT, related_name="+")
    label = models.CharField(max_length=32)  # pass: status; discrepancy: type; repair: status
    label2 = models.CharField(max_length=16, blank=True)  # repair: actor type
    count = models.BigIntegerField(default=0)
    duration_ms_sum = models.BigIntegerField(default=0)
    buckets = models.JSONField(default=dict, blank=True)  # pass: {"<= ms": count}
    last_at = models.DateTimeField(null=True, blank=True)  # pass: latest finished_at

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "account", "label", "label2"], name="metrics_rollup_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.account_id} {self.label} {self.label2}: {self.count}"


class RollupWatermark(models.Model):
    """Rows with ``id <= last_id`` of table ``name`` are folded into MetricsRollup."""

    name = models.CharField(max_length=32, unique=True)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} <= {self.last_id}"
