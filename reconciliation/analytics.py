"""Selectors: discrepancy analytics over a window of days (issue 18 item 8), the figures of
``GET /api/v1/discrepancies/stats/`` and of the console's analytics page.

- time to repair per type (p50, p95, nearest rank): from the pass that first saw the
  discrepancy to its repair (a desync seen over several passes counts from its first);
- recurrence: occurrences (a discrepancy first seen, ``consecutive_runs = 1``) by type, by
  symbol (positions) or currency (balances), and by venue;
- persistent-desync trend: per day, how many discrepancies became persistent;
- false-stale rate: of the orders found stale (``stale_local_order``), the share later seen
  alive: the discrepancy went away without a repair, or the same order turned up again as
  ``missing_local_order`` / ``order_state_mismatch``.

A fixed number of statements (seven) whatever the history size; the work is in the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import TruncDate
from django.utils import timezone

from reconciliation.models import Discrepancy

T = Discrepancy.Type
ALIVE_TYPES = (T.MISSING_LOCAL_ORDER, T.ORDER_STATE_MISMATCH)
KEYED_BY_SYMBOL = (T.POSITION_MISMATCH, T.ENTRY_PRICE_MISMATCH, T.BALANCE_MISMATCH)
TOP = 10


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class RepairTime:
    type: str
    repaired: int
    p50_seconds: float | None
    p95_seconds: float | None


@dataclass
class DiscrepancyStats:
    since: datetime
    until: datetime
    days: int
    accounts: list[str]
    time_to_repair: list[RepairTime] = field(default_factory=list)
    recurrence_by_type: list[dict] = field(default_factory=list)
    recurrence_by_symbol: list[dict] = field(default_factory=list)
    recurrence_by_venue: list[dict] = field(default_factory=list)
    persistent_trend: list[dict] = field(default_factory=list)
    stale_orders: int = 0
    stale_later_seen_alive: int = 0

    @property
    def false_stale_rate(self) -> float | None:
        if not self.stale_orders:
            return None
        return round(self.stale_later_seen_alive / self.stale_orders, 4)


def discrepancy_stats(*, accounts, days: int = 30, now: datetime | None = None) -> DiscrepancyStats:
    """The analytics of ``accounts`` (a queryset or list) over the last ``days``."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    accounts = list(accounts)
    ids = [a.pk for a in accounts]
    stats = DiscrepancyStats(
        since=since, until=now, days=days, accounts=sorted(a.name for a in accounts)
    )
    window = Discrepancy.objects.filter(account_id__in=ids, created_at__gte=since)
    first_seen = Discrepancy.objects.filter(
        account_id=OuterRef("account_id"),
        type=OuterRef("type"),
        key=OuterRef("key"),
        consecutive_runs=1,
        id__lte=OuterRef("id"),
    ).order_by("-id")

    # time to repair, from the first pass that saw it
    times: dict[str, list[float]] = {}
    for typ, seen, created, resolved in (
        window.filter(status=Discrepancy.Status.REPAIRED, resolved_at__isnull=False)
        .annotate(seen=Subquery(first_seen.values("created_at")[:1]))
        .values_list("type", "seen", "created_at", "resolved_at")
    ):
        start = seen or created
        times.setdefault(typ, []).append(max(0.0, (resolved - start).total_seconds()))
    stats.time_to_repair = [
        RepairTime(
            type=typ,
            repaired=len(values),
            p50_seconds=_round(percentile(values, 50)),
            p95_seconds=_round(percentile(values, 95)),
        )
        for typ, values in sorted(times.items())
    ]

    # recurrence: occurrences (first seen in the window)
    occurrences = window.filter(consecutive_runs=1).order_by()
    stats.recurrence_by_type = [
        {"type": typ, "occurrences": n}
        for typ, n in occurrences.values("type")
        .annotate(n=Count("id"))
        .order_by("-n", "type")
        .values_list("type", "n")
    ]
    stats.recurrence_by_symbol = [
        {"type": typ, "symbol": key, "occurrences": n}
        for typ, key, n in occurrences.filter(type__in=KEYED_BY_SYMBOL)
        .values("type", "key")
        .annotate(n=Count("id"))
        .order_by("-n", "type", "key")
        .values_list("type", "key", "n")[:TOP]
    ]
    stats.recurrence_by_venue = [
        {"venue": venue, "occurrences": n}
        for venue, n in occurrences.values("account__exchange")
        .annotate(n=Count("id"))
        .order_by("-n", "account__exchange")
        .values_list("account__exchange", "n")
    ]

    # persistent trend: the pass where each one became persistent, per day
    threshold = settings.TRADINGSTATE.persistent_desync_runs
    stats.persistent_trend = [
        {"day": day.isoformat(), "became_persistent": n}
        for day, n in window.filter(persistent=True, consecutive_runs=threshold)
        .annotate(day=TruncDate("created_at"))
        .order_by()
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
        .values_list("day", "n")
    ]

    # false-stale: stale orders later seen alive
    later_alive = Discrepancy.objects.filter(
        account_id=OuterRef("account_id"),
        key=OuterRef("key"),
        type__in=ALIVE_TYPES,
        id__gt=OuterRef("id"),
    )
    stale = (
        window.filter(type=T.STALE_LOCAL_ORDER, consecutive_runs=1)
        .order_by()
        .aggregate(
            n=Count("id"),
            alive=Count(
                "id",
                filter=Q(status=Discrepancy.Status.RESOLVED) | Q(Exists(later_alive)),
            ),
        )
    )
    stats.stale_orders = stale["n"] or 0
    stats.stale_later_seen_alive = stale["alive"] or 0
    return stats


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


__all__ = ["DiscrepancyStats", "RepairTime", "discrepancy_stats", "percentile"]
