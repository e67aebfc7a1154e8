"""The admin console dashboard: every account's reconciliation health on one page.

``console_rows`` reads everything in a fixed number of queries (independent of the number of
accounts); ``discrepancy_chart_svg`` is a pure function turning run points into a small
server-rendered SVG (no JavaScript, no CDN); ``console_feed`` lists the newest events. The
dashboard that shows them (``/admin/``) is ``tradingstate.web.console.dashboard``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from html import escape
from urllib.parse import urlencode

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe

from killswitch.models import KillSwitchEvent
from killswitch.selectors import KillSwitchStatus, killswitch_state
from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.selectors import (
    account_list_with_last_pass,
    discrepancy_open_counts,
    run_points_since,
)
from tradingstate.amounts import amount_display
from tradingstate.models import ExchangeAccount, Notification

CHART_HOURS = 24
CHART_BUCKETS = 96  # 15-minute columns over 24 hours
PASS_STATUSES = (
    ReconciliationRun.Status.COMPLETED,
    ReconciliationRun.Status.INCOMPLETE,
    ReconciliationRun.Status.FAILED,
)


# --- the chart (pure) ------------------------------------------------------------------
@dataclass(frozen=True)
class RunPoint:
    """One finished pass: when, how many discrepancies, and its status."""

    at: datetime
    discrepancies: int
    status: str = ReconciliationRun.Status.COMPLETED


@dataclass(frozen=True)
class Bucket:
    start: datetime
    passes: int = 0
    worst: int = 0  # the most discrepancies one pass in this bucket found
    failed: int = 0  # passes that failed or were incomplete


def chart_buckets(
    points: Iterable[RunPoint], *, now: datetime, hours: int = CHART_HOURS, buckets: int = 96
) -> list[Bucket]:
    """Group passes into ``buckets`` equal time columns over the last ``hours`` before ``now``.
    Points outside the window are ignored."""
    span = timedelta(hours=hours)
    start = now - span
    width = span / buckets
    passes = [0] * buckets
    worst = [0] * buckets
    failed = [0] * buckets
    for p in points:
        if p.at < start or p.at > now:
            continue
        i = min(int((p.at - start) / width), buckets - 1)
        passes[i] += 1
        worst[i] = max(worst[i], p.discrepancies)
        if p.status != ReconciliationRun.Status.COMPLETED:
            failed[i] += 1
    return [
        Bucket(start=start + width * i, passes=passes[i], worst=worst[i], failed=failed[i])
        for i in range(buckets)
    ]


def discrepancy_chart_svg(
    points: Iterable[RunPoint],
    *,
    now: datetime,
    hours: int = CHART_HOURS,
    buckets: int = CHART_BUCKETS,
    width: int = 480,
    height: int = 90,
    label: str = "Discrepancies per pass",
) -> str:
    """An SVG bar chart of discrepancies per pass over the last ``hours``.

    One column per time bucket: its height is the worst pass in the bucket (most
    discrepancies), red when any pass found some, green for clean passes (a thin bar), grey
    tick for failed/incomplete passes; no pass in a bucket leaves a gap. Every text is escaped.
    """
    cols = chart_buckets(points, now=now, hours=hours, buckets=buckets)
    top = max((b.worst for b in cols), default=0)
    scale_max = max(top, 1)
    left, bottom, pad_top = 28, 16, 6
    plot_w, plot_h = width - left - 4, height - bottom - pad_top
    col_w = plot_w / buckets
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="discrepancy-chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}, last {hours} hours, max {top}">',
        f"<title>{escape(label)} (last {hours} h)</title>",
        f'<rect x="{left}" y="{pad_top}" width="{plot_w}" height="{plot_h}" fill="#f8f8f8" '
        'stroke="#ddd"/>',
        f'<text x="{left - 4}" y="{pad_top + 8}" font-size="9" text-anchor="end" '
        f'fill="#666">{top}</text>',
        f'<text x="{left - 4}" y="{pad_top + plot_h}" font-size="9" text-anchor="end" '
        'fill="#666">0</text>',
    ]
    for i, b in enumerate(cols):
        if not b.passes:
            continue
        x = left + i * col_w
        if b.worst:
            h = max(plot_h * b.worst / scale_max, 2.0)
            colour = "#ba2121"
        else:
            h = 2.0
            colour = "#3c9a5f"
        y = pad_top + plot_h - h
        tip = (
            f"{timezone.localtime(b.start):%H:%M}: worst pass {b.worst} discrepancies "
            f"({b.passes} passes{f', {b.failed} failed/incomplete' if b.failed else ''})"
        )
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(col_w - 1, 1):.1f}" '
            f'height="{h:.1f}" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
        if b.failed:
            parts.append(
                f'<rect class="failed" x="{x:.1f}" y="{pad_top + plot_h + 1}" '
                f'width="{max(col_w - 1, 1):.1f}" height="3" fill="#999"/>'
            )
    axis_y = height - 3
    for frac, text in ((0, f"-{hours}h"), (0.5, f"-{hours // 2}h"), (1, "now")):
        anchor = "start" if frac == 0 else "end" if frac == 1 else "middle"
        parts.append(
            f'<text x="{left + plot_w * frac:.1f}" y="{axis_y}" font-size="9" '
            f'text-anchor="{anchor}" fill="#666">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the data (bounded queries) ------------------------------------------------------------
@dataclass
class TypeCount:
    type: str
    label: str
    count: int
    url: str


@dataclass
class AccountRow:
    account: ExchangeAccount
    last_run_id: int | None
    last_run_status: str | None
    last_run_at: datetime | None
    age_seconds: int | None
    open_total: int = 0
    persistent: int = 0
    by_type: list[TypeCount] = field(default_factory=list)
    halted: bool = False
    halt_reason: str = ""
    chart: str = ""
    links: dict[str, str] = field(default_factory=dict)
    # the effective trading state: global halt, then the account's halt, then the recovery
    # gate (orders refused until the first pass after a restart); "trading" only if none
    trading_state: str = "trading"
    trading_label: str = "trading"
    trading_detail: str = ""
    auto_repair_paused: bool = False

    @property
    def last_run_status_label(self) -> str:
        if self.last_run_status is None:
            return "never"
        return ReconciliationRun.Status(self.last_run_status).label

    @property
    def can_trade(self) -> bool:
        return self.trading_state == "trading"

    @property
    def overdue(self) -> bool:
        """No pass for three intervals: the worker may be down."""
        interval = self.account.reconciliation_interval_seconds
        return self.account.enabled and (
            self.age_seconds is None or self.age_seconds > 3 * interval
        )


@dataclass
class Console:
    rows: list[AccountRow]
    killswitch: KillSwitchStatus
    now: datetime
    totals: dict[str, int]


def effective_trading_state(
    *, account: ExchangeAccount, state: KillSwitchStatus, halted: dict
) -> tuple[str, str, str]:
    """(code, label, detail) of what the order guard answers for ``account`` now: the global
    kill switch first, then the account's own halt, then the restart-recovery gate."""
    if state.active:
        detail = f"global: {state.reason}"
        if account.name in halted:
            detail += f"; account: {halted[account.name].reason}"
        return "halted", "HALTED (global kill switch)", detail
    if account.name in halted:
        return "halted", "HALTED", halted[account.name].reason
    if account.recovery_started_at is not None:
        return (
            "recovering",
            "RECOVERING",
            "new orders refused (503) until the first pass after the restart completes",
        )
    return "trading", "trading", ""


def _changelist(model: str, **params) -> str:
    url = reverse(f"admin:reconciliation_{model}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def console_rows(*, now: datetime | None = None, charts: bool = True) -> Console:
    """Every account's reconciliation health, in four queries (three without ``charts``)
    whatever the number of accounts."""
    now = now or timezone.now()
    accounts = list(account_list_with_last_pass())
    counts = discrepancy_open_counts()
    points: dict[int, list[RunPoint]] = defaultdict(list)
    since = now - timedelta(hours=CHART_HOURS)
    runs = run_points_since(since=since, statuses=PASS_STATUSES) if charts else ()
    for account_id, at, found, status in runs:
        points[account_id].append(RunPoint(at=at, discrepancies=found, status=status))
    state = killswitch_state()
    halted = {h.account: h for h in state.halted_accounts}
    labels = dict(Discrepancy.Type.choices)
    rows = []
    totals = {"open": 0, "persistent": 0, "halted": len(halted), "disabled": 0}
    for account in accounts:
        mine = counts.get(account.pk, {})
        row = AccountRow(
            account=account,
            last_run_id=account.last_run_id,
            last_run_status=account.last_run_status,
            last_run_at=account.last_run_at,
            age_seconds=int((now - account.last_run_at).total_seconds())
            if account.last_run_at
            else None,
            open_total=sum(n for n, _ in mine.values()),
            persistent=sum(p for _, p in mine.values()),
            halted=account.name in halted,
            halt_reason=halted[account.name].reason if account.name in halted else "",
            auto_repair_paused=account.auto_repair_paused(now),
            chart=mark_safe(  # noqa: S308 -- built by discrepancy_chart_svg, every text escaped
                discrepancy_chart_svg(points.get(account.pk, []), now=now)
            )
            if charts
            else "",
        )
        row.trading_state, row.trading_label, row.trading_detail = effective_trading_state(
            account=account, state=state, halted=halted
        )
        base = {"account__id__exact": account.pk}
        open_filter = {**base, "status__exact": Discrepancy.Status.OPEN}
        row.by_type = [
            TypeCount(
                type=typ,
                label=labels.get(typ, typ),
                count=n,
                url=_changelist("discrepancy", **open_filter, type__exact=typ),
            )
            for typ, (n, _) in sorted(mine.items())
        ]
        row.links = {
            "open": _changelist("discrepancy", **open_filter),
            "persistent": _changelist("discrepancy", **open_filter, persistent__exact=1),
            "runs": _changelist("reconciliationrun", **base),
            "run": reverse("admin:reconciliation_reconciliationrun_change", args=[row.last_run_id])
            if row.last_run_id
            else "",
            "account": reverse("admin:tradingstate_exchangeaccount_change", args=[account.pk]),
            "audit": reverse("admin:tradingstate_auditentry_changelist")
            + f"?account__id__exact={account.pk}",
        }
        totals["open"] += row.open_total
        totals["persistent"] += row.persistent
        totals["disabled"] += 0 if account.enabled else 1
        rows.append(row)
    return Console(rows=rows, killswitch=state, now=now, totals=totals)


# --- the feed: the latest discrepancies, repairs, halts and notifications ------------------
@dataclass(frozen=True)
class FeedItem:
    at: datetime
    kind: str  # discrepancy | repair | halt | notification
    account: str
    text: str
    url: str
    level: str = "info"  # info | alert | ok


def _feed_value(detail: dict) -> str:
    for local, exchange in (
        ("local_qty", "exchange_qty"),
        ("local_total", "exchange_total"),
        ("local_status", "exchange_status"),
    ):
        if local in detail or exchange in detail:
            return f" {_display(detail.get(local))} → {_display(detail.get(exchange))}"
    return ""


def _display(value) -> str:
    if value is None:
        return "—"
    try:
        return amount_display(Decimal(str(value))) or "—"
    except (InvalidOperation, ValueError):
        return str(value)


def console_feed(*, limit: int = 20) -> list[FeedItem]:
    """The newest ``limit`` events, newest first, each linked to its page: discrepancies
    when first seen, repairs (by the reconciler or staff), kill switch events and
    notifications. Four statements whatever the history size."""
    items: list[FeedItem] = []
    for d in (
        Discrepancy.objects.filter(consecutive_runs=1)
        .select_related("account")
        .order_by("-id")[:limit]
    ):
        items.append(
            FeedItem(
                at=d.created_at,
                kind="discrepancy",
                account=d.account.name,
                text=f"{d.type} {d.key}{_feed_value(d.detail or {})} [{d.status}]",
                url=reverse("admin:reconciliation_discrepancy_change", args=[d.pk]),
                level="alert" if d.status == Discrepancy.Status.OPEN else "info",
            )
        )
    for r in Repair.objects.select_related("account", "discrepancy").order_by("-id")[:limit]:
        items.append(
            FeedItem(
                at=r.created_at,
                kind="repair",
                account=r.account.name,
                text=f"repair {r.action} {r.discrepancy.type} {r.discrepancy.key}"
                f"{_feed_value(r.discrepancy.detail or {})} {r.status} by {r.actor_name}",
                url=reverse("admin:reconciliation_repair_change", args=[r.pk]),
                level="ok" if r.status == Repair.Status.APPLIED else "alert",
            )
        )
    for e in KillSwitchEvent.objects.select_related("account").order_by("-id")[:limit]:
        scope = "global" if e.account_id is None else e.account.name
        items.append(
            FeedItem(
                at=e.created_at,
                kind="halt",
                account=scope,
                text=f"kill switch {e.get_action_display().lower()} ({scope}) by "
                f"{e.actor_name}: {e.reason}",
                url=reverse("admin:killswitch_killswitchevent_change", args=[e.pk]),
                level="alert" if e.action == KillSwitchEvent.Action.ACTIVATE else "info",
            )
        )
    for n in Notification.objects.order_by("-id")[:limit]:
        items.append(
            FeedItem(
                at=n.created_at,
                kind="notification",
                account=n.key,
                text=f"{n.title} → {n.channel} [{n.outcome}]",
                url=reverse("admin:tradingstate_notification_change", args=[n.pk]),
                level="alert" if n.outcome == Notification.Outcome.FAILED else "info",
            )
        )
    items.sort(key=lambda i: i.at, reverse=True)
    return items[:limit]
