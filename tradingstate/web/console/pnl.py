"""The console's money (issue 15 item 8): per account, positions with entry, mark, realized
and unrealized P&L and fees; the desk's exposure; equity/P&L curves.

For the dashboard (branch ``console`` wires them in), each panel is a context function plus
a partial template that renders only that context:

- :func:`console_pnl_accounts` -> ``templates/admin/console/_pnl_account.html`` (one panel per
  account: ``{% include "admin/console/_pnl_account.html" with panel=panel %}``);
- :func:`console_exposure_desk` -> ``templates/admin/console/_exposure_desk.html``
  (``{% include ... with desk=desk %}``).

The figures are the API's: the panels read ``tradingstate.selectors.pnl`` (the same functions
as ``/api/v1/.../pnl/`` and ``/api/v1/exposure/``) and print amounts with the ``amount``
filter (``amount_str``, as the API's strings; ``n/a`` for a figure with no price, never 0).
Stale prices carry a ``STALE`` badge.

The curves are server-rendered SVG (:func:`pnl_curve_svg`), like the discrepancy chart: no
JavaScript, no CDN, nothing to load in an air-gapped console; they draw the hourly snapshots.
The standalone page is ``/admin/console/pnl/`` (:func:`register_pnl_console`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape

from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.safestring import mark_safe

from tradingstate.amounts import CONTEXT, amount_str
from tradingstate.models import ExchangeAccount, PnlSnapshot
from tradingstate.selectors.pnl import ExposureReport, PnlReport, exposure_report, pnl_reports

CURVE_DAYS = 7


# --- the curve (pure) -----------------------------------------------------------------------
@dataclass(frozen=True)
class CurvePoint:
    at: datetime
    value: Decimal | None  # None: not valued that hour (no price): a gap, never 0
    stale: bool = False


def pnl_curve_svg(
    points: Iterable[CurvePoint],
    *,
    now: datetime,
    days: int = CURVE_DAYS,
    width: int = 480,
    height: int = 110,
    label: str = "Net P&L",
) -> str:
    """An SVG line of ``value`` over the last ``days`` (hourly snapshots): a zero line, the
    min and max labelled, gaps where a point is None, stale points as hollow circles. Every
    text is escaped; the value labels are the API's amount strings."""
    start = now - timedelta(days=days)
    pts = sorted((p for p in points if start <= p.at <= now), key=lambda p: p.at)
    values = [p.value for p in pts if p.value is not None]
    left, right, top, bottom = 70, 6, 8, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    lo = min([*values, Decimal(0)])
    hi = max([*values, Decimal(0)])
    span = (hi - lo) or Decimal(1)
    last = next((p.value for p in reversed(pts) if p.value is not None), None)
    summary = f"{label}, last {days} days" + (
        f", now {amount_str(last)}" if last is not None else ""
    )

    def x(at: datetime) -> float:
        return left + plot_w * ((at - start) / (now - start))

    def y(value: Decimal) -> float:
        return top + plot_h * float(CONTEXT.divide(CONTEXT.subtract(hi, value), span))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pnl-curve" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(summary)}">',
        f"<title>{escape(summary)}</title>",
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f8f8f8" '
        'stroke="#ddd"/>',
        f'<line class="zero" x1="{left}" x2="{left + plot_w}" y1="{y(Decimal(0)):.1f}" '
        f'y2="{y(Decimal(0)):.1f}" stroke="#bbb" stroke-dasharray="3,3"/>',
        f'<text x="{left - 4}" y="{top + 8}" font-size="9" text-anchor="end" fill="#666">'
        f"{escape(amount_str(hi))}</text>",
        f'<text x="{left - 4}" y="{top + plot_h}" font-size="9" text-anchor="end" fill="#666">'
        f"{escape(amount_str(lo))}</text>",
    ]
    segment: list[str] = []
    segments: list[list[str]] = []
    for p in pts:
        if p.value is None:
            if segment:
                segments.append(segment)
            segment = []
            continue
        segment.append(f"{x(p.at):.1f},{y(p.value):.1f}")
    if segment:
        segments.append(segment)
    for seg in segments:
        parts.append(
            f'<polyline class="line" fill="none" stroke="#417690" stroke-width="1.5" '
            f'points="{" ".join(seg)}"/>'
        )
    for p in pts:
        if p.value is None:
            continue
        tip = f"{timezone.localtime(p.at):%Y-%m-%d %H:%M}: {amount_str(p.value)}"
        if p.stale:
            tip += " (stale marks)"
        fill = "#fff" if p.stale else "#417690"
        parts.append(
            f'<circle class="{"point stale" if p.stale else "point"}" cx="{x(p.at):.1f}" '
            f'cy="{y(p.value):.1f}" r="2" fill="{fill}" stroke="#417690">'
            f"<title>{escape(tip)}</title></circle>"
        )
    for frac, text in ((0, f"-{days}d"), (1, "now")):
        anchor = "start" if frac == 0 else "end"
        parts.append(
            f'<text x="{left + plot_w * frac:.1f}" y="{height - 3}" font-size="9" '
            f'text-anchor="{anchor}" fill="#666">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- panels (bounded queries) ------------------------------------------------------------
@dataclass
class PnlPanel:
    """One account's P&L panel: ``report`` (the API's figures) and its net P&L curve."""

    account: ExchangeAccount
    report: PnlReport
    curve: str


@dataclass
class ExposurePanel:
    """The desk's exposure (the API's ``/exposure/`` over ``accounts``) and its curve."""

    report: ExposureReport
    curve: str


def _curves(account_ids: list[int] | None, *, now: datetime, desk: bool = False):
    """Hourly net P&L points per account id (``None`` key: the desk): one statement."""
    qs = PnlSnapshot.objects.filter(taken_at__gte=now - timedelta(days=CURVE_DAYS))
    qs = qs.filter(account__isnull=True) if desk else qs.filter(account_id__in=account_ids)
    points: dict[int | None, list[CurvePoint]] = defaultdict(list)
    for account_id, at, net, stale in qs.values_list("account_id", "taken_at", "net_pnl", "stale"):
        points[account_id].append(CurvePoint(at=at, value=net, stale=stale))
    return points


def console_pnl_accounts(
    accounts: Iterable[ExchangeAccount] | None = None, *, now: datetime | None = None
) -> list[PnlPanel]:
    """Per account (all when None): positions with entry, mark, realized and unrealized P&L
    and fees, totals, and the net P&L curve. Five statements for any number of accounts."""
    now = now or timezone.now()
    accounts = list(ExchangeAccount.objects.all() if accounts is None else accounts)
    reports = pnl_reports(accounts, now=now)
    curves = _curves([a.pk for a in accounts], now=now)
    return [
        PnlPanel(
            account=a,
            report=reports[a.name],
            curve=mark_safe(  # noqa: S308 -- built by pnl_curve_svg, every text escaped
                pnl_curve_svg(curves.get(a.pk, []), now=now, label=f"{a.name} net P&L")
            ),
        )
        for a in accounts
    ]


def console_exposure_desk(
    accounts: Iterable[ExchangeAccount] | None = None, *, now: datetime | None = None
) -> ExposurePanel:
    """The desk's exposure per asset with per-account and per-venue breakdowns, and the
    desk's net P&L curve. Six statements for any number of accounts."""
    now = now or timezone.now()
    accounts = list(ExchangeAccount.objects.all() if accounts is None else accounts)
    curve = _curves(None, now=now, desk=True).get(None, [])
    return ExposurePanel(
        report=exposure_report(accounts, now=now),
        curve=mark_safe(  # noqa: S308 -- built by pnl_curve_svg, every text escaped
            pnl_curve_svg(curve, now=now, label="Desk net P&L")
        ),
    )


# --- the standalone page ---------------------------------------------------------------------
def pnl_console_view(request, *, site, account: str | None = None):
    """GET /admin/console/pnl/ (and ``.../pnl/<account>/``): staff only (``admin_view``)."""
    accounts = ExchangeAccount.objects.all()
    if account is not None:
        accounts = accounts.filter(name=account)
    accounts = list(accounts)
    now = timezone.now()
    context = {
        **site.each_context(request),
        "title": "P&L and exposure",
        "panels": console_pnl_accounts(accounts, now=now),
        "desk": console_exposure_desk(None if account is None else accounts, now=now),
        "now": now,
    }
    request.current_app = site.name
    return TemplateResponse(request, "admin/console/pnl.html", context)


def register_pnl_console(site) -> None:
    """Add ``console/pnl/`` (name ``admin:console-pnl``) to ``site``'s URLs."""
    if getattr(site, "pnl_console_registered", False):
        return

    def view(request, account=None):
        return pnl_console_view(request, site=site, account=account)

    original = site.get_urls

    def get_urls():
        return [
            path("console/pnl/", site.admin_view(view), name="console-pnl"),
            path("console/pnl/<str:account>/", site.admin_view(view), name="console-pnl-account"),
            *original(),
        ]

    site.get_urls = get_urls
    site.pnl_console_registered = True
