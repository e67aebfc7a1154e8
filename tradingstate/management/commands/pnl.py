"""``pnl --account NAME [--since T]``: an account's P&L per position, as the API gives it.

Columns: symbol, qty, average entry, mark (with its time; ``STALE`` when older than
``mark_price_max_age_seconds`` or its last refresh failed), realized, unrealized, fees, net;
then the totals. A figure with no price is ``n/a``, never 0. Same figures as
``GET /api/v1/accounts/NAME/pnl/`` (both read ``selectors.pnl.pnl_report``).
"""

from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tradingstate.management.tables import STALE, amount, table_lines
from tradingstate.models import ExchangeAccount
from tradingstate.selectors.pnl import pnl_report

UNKNOWN_ACCOUNT = "unknown account {name!r}; known accounts: {known}"
BAD_SINCE = "--since: {value!r} is not an ISO 8601 time with a timezone (e.g. 2026-01-01T00:00:00Z)"
HEADER = (
    "symbol",
    "qty",
    "avg_entry",
    "mark",
    "mark_time",
    "",
    "realized",
    "unrealized",
    "fees",
    "net",
)
NUMBERS = (1, 2, 3, 6, 7, 8, 9)


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = parse_datetime(value)
    except ValueError:
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise CommandError(BAD_SINCE.format(value=value))
    return moment


def account_by_name(name: str) -> ExchangeAccount:
    account = ExchangeAccount.objects.filter(name=name).first()
    if account is None:
        known = ", ".join(ExchangeAccount.objects.values_list("name", flat=True)) or "(none)"
        raise CommandError(UNKNOWN_ACCOUNT.format(name=name, known=known))
    return account


def pnl_lines(report) -> list[str]:
    since = f", realized and fees since {report.since.isoformat()}" if report.since else ""
    lines = [
        f"P&L: account {report.account} in {report.valuation_currency} "
        f"as of {report.as_of.isoformat()}{since}"
    ]
    rows = [
        (
            p.symbol,
            amount(p.qty),
            amount(p.avg_entry_price),
            amount(p.mark_price),
            p.mark_time.isoformat() if p.mark_time else "-",
            STALE if p.mark_stale else "",
            amount(p.realized_pnl),
            amount(p.unrealized_pnl),
            amount(p.fees),
            amount(p.net_pnl),
        )
        for p in report.positions
    ]
    t = report.totals
    rows.append(("TOTAL", "", "", "", "", STALE if t.stale else "", amount(t.realized_pnl),
                 amount(t.unrealized_pnl), amount(t.fees), amount(t.net_pnl)))  # fmt: skip
    lines += table_lines(HEADER, rows, right=NUMBERS)
    if t.stale:
        lines.append(f"stale marks: {', '.join(t.stale)}")
    if t.incomplete:
        lines.append(f"no price (figures n/a): {', '.join(t.incomplete)}")
    return lines


class Command(BaseCommand):
    help = "Show an account's P&L per position: entry, mark, realized, unrealized, fees, net."

    def add_arguments(self, parser):
        parser.add_argument("--account", required=True, help="ExchangeAccount name")
        parser.add_argument("--since", help="realized P&L and fees of the fills since then")

    def handle(self, *args, account: str, since: str | None = None, **options):
        report = pnl_report(account_by_name(account), since=parse_since(since))
        for line in pnl_lines(report):
            self.stdout.write(line)
