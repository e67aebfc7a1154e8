"""Console pages beside the dashboard: an account's state as of any moment (with a scrubber)
and the discrepancy analytics. Both read selectors only (``reconciliation.asof``,
``reconciliation.analytics``); the same figures are served by the API."""

from __future__ import annotations

from datetime import UTC, datetime

from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.safestring import mark_safe

from reconciliation.analytics import discrepancy_stats
from reconciliation.asof import account_state_with_exchange_at
from tradingstate.models import ExchangeAccount
from tradingstate.selectors.asof import account_history_span
from tradingstate.web.console.charts import bar_chart_svg, column_chart_svg

AT_INVALID = "at: must be a date and time, e.g. 2026-12-06T14:03:12Z"
DAYS_CHOICES = (1, 7, 30, 90)


def parse_moment(raw: str | None, *, now: datetime) -> tuple[datetime, str]:
    """``?at=`` (ISO 8601; naive means UTC) or ``?t=`` (Unix seconds, the scrubber) -> (moment,
    error). A missing value means now; a bad one is reported and now is used."""
    if raw in (None, ""):
        return now, ""
    raw = raw.strip()
    try:
        if raw.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(raw), tz=UTC), ""
        moment = parse_datetime(raw)
    except (ValueError, OverflowError, OSError):
        moment = None
    if moment is None:
        return now, AT_INVALID
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    try:
        moment.astimezone(UTC)  # 9999-12-31T23:59-05:00 is past the last moment Python has
    except OverflowError:
        return now, AT_INVALID
    return moment, ""


def _state_context(request, account: ExchangeAccount) -> dict:
    now = timezone.now()
    raw = request.GET.get("t") or request.GET.get("at")
    at, error = parse_moment(raw, now=now)
    lo, _ = account_history_span(account=account)
    state = account_state_with_exchange_at(account=account, at=at)
    return {
        "account": account,
        "at": at,
        "at_epoch": int(at.timestamp()),
        "error": error,
        "state": state,
        "span_lo": int(lo.timestamp()) if lo else int(now.timestamp()),
        "span_hi": int(now.timestamp()),
        "panel_url": reverse("admin:console-state-panel", args=[account.name]),
        "api_url": reverse("api:account-state", args=[account.name]),
        "audit_url": reverse("admin:tradingstate_auditentry_changelist")
        + f"?account__id__exact={account.pk}",
        "run_url": reverse(
            "admin:reconciliation_reconciliationrun_change", args=[state.exchange.run_id]
        )
        if state.exchange
        else "",
        "now": now,
    }


def state_view(request, account: str, *, site, partial: bool = False):
    """GET /admin/console/state/<account>/?at=T: what we held at T and what the exchange
    reported at the pass nearest T, with a scrubber over the account's history."""
    obj = get_object_or_404(ExchangeAccount, name=account)
    context = _state_context(request, obj)
    request.current_app = site.name
    if partial:
        return TemplateResponse(request, "admin/console/_state_at.html", context)
    context = {**site.each_context(request), **context, "title": f"{obj.name}: state as of…"}
    return TemplateResponse(request, "admin/console/state.html", context)


def analytics_context(*, days: int) -> dict:
    stats = discrepancy_stats(accounts=ExchangeAccount.objects.all(), days=days)
    charts = {
        "p50": bar_chart_svg(
            [(r.type, r.p50_seconds) for r in stats.time_to_repair],
            title="Time to repair, p50 (s)",
            unit="s",
        ),
        "p95": bar_chart_svg(
            [(r.type, r.p95_seconds) for r in stats.time_to_repair],
            title="Time to repair, p95 (s)",
            unit="s",
        ),
        "by_type": bar_chart_svg(
            [(r["type"], r["occurrences"]) for r in stats.recurrence_by_type],
            title="Occurrences by type",
        ),
        "by_symbol": bar_chart_svg(
            [
                (f"{r['symbol']} ({r['type']})", r["occurrences"])
                for r in stats.recurrence_by_symbol
            ],
            title="Occurrences by symbol / currency",
        ),
        "by_venue": bar_chart_svg(
            [(r["venue"], r["occurrences"]) for r in stats.recurrence_by_venue],
            title="Occurrences by venue",
        ),
        "persistent": column_chart_svg(
            [(r["day"], r["became_persistent"]) for r in stats.persistent_trend],
            title="Became persistent, per day",
        ),
    }
    return {
        "stats": stats,
        # built by the chart functions, every text escaped
        "charts": {k: mark_safe(v) for k, v in charts.items()},  # noqa: S308
        "days": days,
        "days_choices": DAYS_CHOICES,
    }


def analytics_view(request, *, site):
    """GET /admin/console/analytics/?days=30."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = min(max(days, 1), 365)
    context = {
        **site.each_context(request),
        **analytics_context(days=days),
        "title": "Discrepancy analytics",
        "api_url": reverse("api:discrepancy-stats") + f"?days={days}",
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/console/analytics.html", context)
