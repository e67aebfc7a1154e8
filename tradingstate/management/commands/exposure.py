"""``exposure [--account NAME ...]``: net and gross exposure per asset, desk-wide, with the
per-account and per-venue breakdowns, as ``GET /api/v1/exposure/`` gives it (both read
``selectors.pnl.exposure_report``). Stale prices are marked ``STALE``; an asset with no
price shows ``n/a`` notionals and the totals are ``n/a``, never a partial sum."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tradingstate.management.commands.pnl import account_by_name
from tradingstate.management.tables import STALE, amount, table_lines
from tradingstate.models import ExchangeAccount
from tradingstate.selectors.pnl import exposure_report

HEADER = ("asset", "by", "net_qty", "net_notional", "gross_notional", "")


def exposure_lines(report) -> list[str]:
    lines = [
        f"Exposure in {report.valuation_currency} as of {report.as_of.isoformat()} "
        f"({len(report.accounts)} accounts)"
    ]
    rows = []
    for a in report.assets:
        flag = STALE if a.mark_stale else ""
        rows.append((a.asset, "all", amount(a.net_qty), amount(a.net_notional),
                     amount(a.gross_notional), flag))  # fmt: skip
        for kind, shares in (("account", a.by_account), ("venue", a.by_venue)):
            for name, s in shares.items():
                rows.append((f"  {a.asset}", f"{kind} {name}", amount(s.net_qty),
                             amount(s.net_notional), amount(s.gross_notional),
                             STALE if s.mark_stale else ""))  # fmt: skip
    rows.append(("TOTAL", "", "", amount(report.net_notional), amount(report.gross_notional),
                 STALE if report.stale_assets else ""))  # fmt: skip
    lines += table_lines(HEADER, rows, right=(2, 3, 4))
    if report.stale_assets:
        lines.append(f"stale marks: {', '.join(report.stale_assets)}")
    if report.excluded_assets:
        lines.append(f"no price (notional n/a): {', '.join(report.excluded_assets)}")
    return lines


class Command(BaseCommand):
    help = "Show net and gross exposure per asset, by account and venue, desk-wide."

    def add_arguments(self, parser):
        parser.add_argument(
            "--account", action="append", default=[], help="only these accounts (repeatable)"
        )

    def handle(self, *args, account: list[str], **options):
        accounts = (
            [account_by_name(name) for name in account]
            if account
            else list(ExchangeAccount.objects.all())
        )
        for line in exposure_lines(exposure_report(accounts)):
            self.stdout.write(line)
