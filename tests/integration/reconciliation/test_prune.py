"""Retention: prune deletes old bookkeeping, never history that matters, and the counters
Prometheus reads keep their totals."""

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule
from prometheus_client.parser import text_string_to_metric_families

from reconciliation.models import Discrepancy, ReconciliationRun, Repair, WorkerHeartbeat
from reconciliation.schedules import ALERTS_CHECK, PRUNE, schedules_ensure
from reconciliation.services import run_reconciliation
from tradingstate.models import AuditEntry, ExchangeAccount, Fill, Notification

pytestmark = pytest.mark.django_db


def counters(client) -> dict:
    text = client.get("/metrics").content.decode()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.type in ("counter", "histogram"):
            for s in family.samples:
                if not s.name.endswith("_created"):
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prune_keeps_audit_fills_open_and_persistent_and_the_counters(client):
    # given: the demo desync left open long enough to be persistent, then repaired
    call_command("demo")
    account = ExchangeAccount.objects.get(name="paper-demo")
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=False)
    for _ in range(3):
        run_reconciliation(account)
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=True)
    run_reconciliation(account)  # repairs
    for _ in range(5):
        run_reconciliation(account)  # clean
    # an open, non-persistent discrepancy and closed old ones
    call_command("demo", "--reset")
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=False)
    run_reconciliation(account)
    old = timezone.now() - timedelta(days=400)
    ReconciliationRun.objects.update(created_at=old)
    Discrepancy.objects.update(created_at=old)
    Repair.objects.update(created_at=old)
    WorkerHeartbeat.objects.create(role="gone", holder="h:1", beat_at=old)
    WorkerHeartbeat.objects.create(role="ticker", holder="h:2", beat_at=timezone.now())
    for outcome in ("sent", "failed", "retrying"):
        Notification.objects.create(event="killswitch", key="global", state="active",
                                    channel="c", title="t", body="b", outcome=outcome)  # fmt: skip
    Notification.objects.update(created_at=old)
    before = counters(client)
    audit = list(AuditEntry.objects.order_by("pk").values_list("pk", "action"))
    fills = Fill.objects.count()
    keep_open = set(Discrepancy.objects.filter(status="open").values_list("pk", flat=True))
    keep_persistent = set(Discrepancy.objects.filter(persistent=True).values_list("pk", flat=True))
    runs_before = ReconciliationRun.objects.count()
    assert keep_open and keep_persistent and runs_before == 10

    # when
    call_command("prune", "--batch-size", "100")

    # then: the old clean runs, closed discrepancies, repairs, heartbeat, notifications went
    assert ReconciliationRun.objects.count() < runs_before
    assert WorkerHeartbeat.objects.filter(role="gone").count() == 0
    assert WorkerHeartbeat.objects.filter(role="ticker").count() == 1
    assert list(Notification.objects.values_list("outcome", flat=True)) == ["retrying"]
    assert Repair.objects.count() == 0
    # never: the audit trail, fills, open or persistent discrepancies (and their runs)
    assert list(AuditEntry.objects.order_by("pk").values_list("pk", "action")) == audit
    assert Fill.objects.count() == fills
    remaining = set(Discrepancy.objects.values_list("pk", flat=True))
    assert keep_open <= remaining and keep_persistent <= remaining
    assert not Discrepancy.objects.exclude(pk__in=keep_open | keep_persistent).exists()
    # and every counter Prometheus reads has the same total
    after = counters(client)
    assert after == before
    assert any(k[0] == "tradingstate_reconciliation_passes_total" for k in after)


def test_scrape_statements_do_not_grow_with_history(client, django_assert_max_num_queries):
    call_command("demo")
    account = ExchangeAccount.objects.get(name="paper-demo")
    for _ in range(3):
        run_reconciliation(account)
    with django_assert_max_num_queries(12) as few:
        client.get("/metrics")
    ReconciliationRun.objects.bulk_create(
        ReconciliationRun(account=account, trigger="schedule", status="completed",
                          duration_ms=20, finished_at=timezone.now())
        for _ in range(500)
    )  # fmt: skip
    call_command("prune", "--runs-days", "0")  # folds, deletes nothing (keep forever)
    with django_assert_max_num_queries(len(few.captured_queries)):
        text = client.get("/metrics").content.decode()
    assert (
        'tradingstate_reconciliation_passes_total{account="paper-demo",status="completed"} 503.0'
        in text
    )


def test_prune_refuses_bad_options_naming_them():
    with pytest.raises(
        CommandError, match="--runs-days: Input should be greater than or equal to 0"
    ):
        call_command("prune", "--runs-days", "-1")


def test_schedules_are_created_once():
    schedules_ensure()
    schedules_ensure()
    assert Schedule.objects.filter(name=PRUNE).count() == 1
    assert Schedule.objects.filter(name=ALERTS_CHECK).count() == 1
    daily = Schedule.objects.get(name=PRUNE)
    assert daily.func == "reconciliation.tasks.prune_task" and daily.schedule_type == "D"
    assert daily.next_run > timezone.now()
