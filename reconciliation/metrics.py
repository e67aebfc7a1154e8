"""``/metrics`` in Prometheus text format, read from the database at scrape time.

Every process (several web hosts) answers the same figures, because they come from the
shared state of record rather than from per-process counters. Counters come from bounded
rollups plus the rows not yet folded (``reconciliation.rollups``): a scrape reads a handful
of small, indexed results whatever the history size, and pruning never lowers a counter.
"""

from __future__ import annotations

import platform
from importlib import metadata

import django
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)

from killswitch.models import KillSwitch
from reconciliation.models import Discrepancy, WorkerHeartbeat
from reconciliation.rollups import BUCKETS_MS, TIMED, totals
from tradingstate.models import ExchangeAccount


def _version() -> str:
    try:
        return metadata.version("tradingstate")
    except metadata.PackageNotFoundError:
        return "unknown"


class StateCollector:
    def collect(self):
        rows = list(
            ExchangeAccount.objects.values_list(
                "id", "name", "enabled", "last_reconciled_at", "recovery_started_at",
                "reconciliation_interval_seconds",
            )
        )  # fmt: skip
        accounts = {r[0]: r[1] for r in rows}
        sums = totals()
        yield from self._passes(accounts, sums["passes"])
        yield from self._discrepancies(accounts, sums["discrepancies"])
        yield from self._repairs(accounts, sums["repairs"])
        yield from self._accounts(rows, sums["passes"])
        yield from self._killswitch(accounts)
        yield from self._workers()
        yield self._build_info()

    def _passes(self, accounts, passes):
        hist = HistogramMetricFamily(
            "tradingstate_reconciliation_pass_duration_seconds",
            "Duration of finished reconciliation passes (completed or incomplete)",
            labels=["account"],
        )
        by_account: dict[int, dict] = {}
        for (account_id, status), p in passes.items():
            if status not in TIMED:
                continue
            acc = by_account.setdefault(account_id, {"n": 0, "ms": 0, **{b: 0 for b in BUCKETS_MS}})
            acc["n"] += p["n_timed"]
            acc["ms"] += p["total_ms"]
            for b in BUCKETS_MS:
                acc[b] += p[b]
        for account_id, acc in sorted(by_account.items()):
            buckets = [(str(b / 1000), acc[b]) for b in BUCKETS_MS]
            buckets.append(("+Inf", acc["n"]))
            hist.add_metric([accounts.get(account_id, "?")], buckets, acc["ms"] / 1000)
        yield hist
        runs = CounterMetricFamily(
            "tradingstate_reconciliation_passes", "Finished reconciliation passes by status",
            labels=["account", "status"],
        )  # fmt: skip
        for (account_id, status), p in sorted(passes.items()):
            runs.add_metric([accounts.get(account_id, "?"), status], p["n"])
        yield runs

    def _discrepancies(self, accounts, found):
        total = CounterMetricFamily(
            "tradingstate_discrepancies", "Discrepancies found, by type",
            labels=["account", "type"],
        )  # fmt: skip
        for (account_id, typ), n in sorted(found.items()):
            total.add_metric([accounts.get(account_id, "?"), typ], n)
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
            Discrepancy.objects.filter(status=Discrepancy.Status.OPEN)
            .values_list("account_id", "type")
            .annotate(n=Count("id"), n_persistent=Count("id", filter=Q(persistent=True)))
            .order_by()
        )
        seen = set()
        for account_id, typ, n_open, n_persistent in rows:
            labels = [accounts.get(account_id, "?"), typ]
            seen.add((account_id, typ))
            open_.add_metric(labels, n_open)
            persistent.add_metric(labels, n_persistent)
        for account_id, typ in found:  # known series stay, at 0, once resolved
            if (account_id, typ) not in seen:
                open_.add_metric([accounts.get(account_id, "?"), typ], 0)
                persistent.add_metric([accounts.get(account_id, "?"), typ], 0)
        yield from (total, open_, persistent)

    def _repairs(self, accounts, repairs):
        family = CounterMetricFamily(
            "tradingstate_repairs", "Repairs by outcome and actor type",
            labels=["account", "status", "actor_type"],
        )  # fmt: skip
        for (account_id, status, actor_type), n in sorted(repairs.items()):
            family.add_metric([accounts.get(account_id, "?"), status, actor_type], n)
        yield family

    def _accounts(self, rows, passes):
        last = GaugeMetricFamily(
            "tradingstate_last_pass_timestamp_seconds",
            "Unix time of the account's last finished pass (completed or incomplete)",
            labels=["account"],
        )
        completed = GaugeMetricFamily(
            "tradingstate_last_completed_pass_timestamp_seconds",
            "Unix time of the account's last completed pass", labels=["account"],
        )  # fmt: skip
        interval = GaugeMetricFamily(
            "tradingstate_account_reconciliation_interval_seconds",
            "The account's configured pass interval", labels=["account"],
        )  # fmt: skip
        enabled = GaugeMetricFamily(
            "tradingstate_account_enabled", "1 when the account's passes run (0: disabled, "
            "e.g. after an authentication failure)", labels=["account"],
        )  # fmt: skip
        gated = GaugeMetricFamily(
            "tradingstate_account_recovering", "1 while restart recovery refuses new orders",
            labels=["account"],
        )  # fmt: skip
        for account_id, name, is_enabled, last_at, recovering, seconds in rows:
            if last_at is not None:
                last.add_metric([name], last_at.timestamp())
            done = passes.get((account_id, "completed"), {}).get("last_at")
            if done is not None:
                completed.add_metric([name], done.timestamp())
            interval.add_metric([name], seconds)
            enabled.add_metric([name], 1 if is_enabled else 0)
            gated.add_metric([name], 1 if recovering else 0)
        yield from (last, completed, interval, enabled, gated)

    def _killswitch(self, accounts):
        state = GaugeMetricFamily(
            "tradingstate_killswitch_active", "1 while the kill switch is active: "
            'scope="global", or scope="account" with the account label',
            labels=["scope", "account"],
        )  # fmt: skip
        seen_global = False
        for account_id, active in KillSwitch.objects.values_list("account_id", "active"):
            if account_id is None:
                seen_global = True
                state.add_metric(["global", ""], 1 if active else 0)
            else:
                state.add_metric(["account", accounts.get(account_id, "?")], 1 if active else 0)
        if not seen_global:
            state.add_metric(["global", ""], 0)
        yield state

    def _workers(self):
        beat = GaugeMetricFamily(
            "tradingstate_worker_heartbeat_timestamp_seconds",
            "Unix time of the worker role's last heartbeat (the ticker beats every 5 s)",
            labels=["role"],
        )
        for role, beat_at in WorkerHeartbeat.objects.values_list("role", "beat_at"):
            beat.add_metric([role], beat_at.timestamp())
        yield beat

    def _build_info(self):
        info = GaugeMetricFamily(
            "tradingstate_build_info", "Always 1; the running versions as labels",
            labels=["version", "python", "django"],
        )  # fmt: skip
        info.add_metric([_version(), platform.python_version(), django.get_version()], 1)
        return info


def metrics_view(request: HttpRequest) -> HttpResponse:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


__all__ = ["metrics_view"]
