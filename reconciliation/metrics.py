"""``/metrics`` in Prometheus text format, read from the database at scrape time.

Every process (several web hosts) answers the same figures, because they come from the
shared state of record rather than from per-process counters. Runs, discrepancies and repairs
are never deleted, so the totals only grow, as Prometheus counters must.
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from killswitch.models import KillSwitch
from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from tradingstate.models import ExchangeAccount

BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
FINISHED = [ReconciliationRun.Status.COMPLETED, ReconciliationRun.Status.INCOMPLETE]


class StateCollector:
    def collect(self):
        accounts = dict(ExchangeAccount.objects.values_list("id", "name"))
        yield from self._passes(accounts)
        yield from self._discrepancies(accounts)
        yield from self._repairs(accounts)
        yield from self._accounts(accounts)
        yield from self._killswitch(accounts)

    def _passes(self, accounts):
        aggregates = {f"le_{b}": Count("id", filter=Q(duration_ms__lte=b)) for b in BUCKETS_MS}
        rows = (
            ReconciliationRun.objects.filter(status__in=FINISHED)
            .values("account_id")
            .annotate(n=Count("id"), total_ms=Sum("duration_ms"), **aggregates)
        )
        hist = HistogramMetricFamily(
            "tradingstate_reconciliation_pass_duration_seconds",
            "Duration of finished reconciliation passes",
            labels=["account"],
        )
        for row in rows:
            buckets = [(str(b / 1000), row[f"le_{b}"]) for b in BUCKETS_MS]
            buckets.append(("+Inf", row["n"]))
            hist.add_metric(
                [accounts.get(row["account_id"], "?")], buckets, (row["total_ms"] or 0) / 1000
            )
        yield hist
        runs = CounterMetricFamily(
            "tradingstate_reconciliation_passes", "Reconciliation passes by status",
            labels=["account", "status"],
        )  # fmt: skip
        for account_id, status, n in (
            ReconciliationRun.objects.values_list("account_id", "status")
            .annotate(n=Count("id"))
            .order_by()
        ):
            runs.add_metric([accounts.get(account_id, "?"), status], n)
        yield runs

    def _discrepancies(self, accounts):
        total = CounterMetricFamily(
            "tradingstate_discrepancies", "Discrepancies found, by type",
            labels=["account", "type"],
        )  # fmt: skip
        open_ = GaugeMetricFamily(
            "tradingstate_discrepancies_open", "Open discrepancies, by type",
            labels=["account", "type"],
        )  # fmt: skip
        persistent = GaugeMetricFamily(
            "tradingstate_discrepancies_persistent_open",
            "Open discrepancies seen in 3+ consecutive passes (persistent desync)",
            labels=["account", "type"],
        )
        rows = (
            Discrepancy.objects.values_list("account_id", "type")
            .annotate(
                n=Count("id"),
                n_open=Count("id", filter=Q(status=Discrepancy.Status.OPEN)),
                n_persistent=Count("id", filter=Q(status=Discrepancy.Status.OPEN, persistent=True)),
            )
            .order_by()
        )
        for account_id, typ, n, n_open, n_persistent in rows:
            labels = [accounts.get(account_id, "?"), typ]
            total.add_metric(labels, n)
            open_.add_metric(labels, n_open)
            persistent.add_metric(labels, n_persistent)
        yield from (total, open_, persistent)

    def _repairs(self, accounts):
        repairs = CounterMetricFamily(
            "tradingstate_repairs", "Repairs by outcome and actor type",
            labels=["account", "status", "actor_type"],
        )  # fmt: skip
        for account_id, status, actor_type, n in (
            Repair.objects.values_list("account_id", "status", "actor_type")
            .annotate(n=Count("id"))
            .order_by()
        ):
            repairs.add_metric([accounts.get(account_id, "?"), status, actor_type], n)
        yield repairs

    def _accounts(self, accounts):
        now = timezone.now()
        age = GaugeMetricFamily(
            "tradingstate_last_pass_age_seconds", "Seconds since the last finished pass",
            labels=["account"],
        )  # fmt: skip
        enabled = GaugeMetricFamily(
            "tradingstate_account_enabled", "1 when the account's passes run (0: disabled, "
            "e.g. after an authentication failure)", labels=["account"],
        )  # fmt: skip
        gated = GaugeMetricFamily(
            "tradingstate_account_recovering", "1 while restart recovery refuses new orders",
            labels=["account"],
        )  # fmt: skip
        for name, is_enabled, last, recovering in ExchangeAccount.objects.values_list(
            "name", "enabled", "last_reconciled_at", "recovery_started_at"
        ):
            if last is not None:
                age.add_metric([name], (now - last).total_seconds())
            enabled.add_metric([name], 1 if is_enabled else 0)
            gated.add_metric([name], 1 if recovering else 0)
        yield from (age, enabled, gated)

    def _killswitch(self, accounts):
        state = GaugeMetricFamily(
            "tradingstate_killswitch_active", "1 while the kill switch (global or an account's "
            "halt) is active", labels=["scope"],
        )  # fmt: skip
        rows = KillSwitch.objects.values_list("account_id", "active")
        seen_global = False
        for account_id, active in rows:
            if account_id is None:
                seen_global = True
                state.add_metric(["global"], 1 if active else 0)
            else:
                state.add_metric([f"account:{accounts.get(account_id, '?')}"], 1 if active else 0)
        if not seen_global:
            state.add_metric(["global"], 0)
        yield state


def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


__all__ = ["metrics_view"]
