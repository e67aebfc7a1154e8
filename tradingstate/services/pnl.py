"""The hourly P&L and exposure snapshots (issue 15 item 5), recorded by the worker.

``pnl_snapshot_record`` writes one PnlSnapshot per account and one for the desk (account
NULL) for the current hour, from the same selectors the API shows (``selectors.pnl``), and
deletes snapshots older than ``pnl_history_retention_days``. Idempotent: a second delivery in
the same hour writes nothing (django-q2 may deliver twice). Derived figures, not trading state:
not audited (listed as exempt in tests/integration/tradingstate/test_audit_trail.py).

``pnl_snapshot_schedule_ensure`` creates the hourly django-q2 schedule idempotently; the
ticker's leader calls it when it starts leading.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import localcontext

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tradingstate.models import ExchangeAccount, PnlSnapshot
from tradingstate.rules.money import CONTEXT, ZERO
from tradingstate.selectors.pnl import (
    account_exposure_totals,
    exposure_report,
    pnl_reports,
)

SCHEDULE_NAME = "pnl-snapshot-hourly"
SNAPSHOT_TASK = "tradingstate.tasks.pnl_snapshot_task"


@dataclass(frozen=True)
class SnapshotsRecorded:
    taken_at: datetime
    created: int
    deleted: int


def snapshot_hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _add(a, b):
    if a is None or b is None:
        return None
    with localcontext(CONTEXT):
        return a + b


@transaction.atomic
def pnl_snapshot_record(*, now: datetime | None = None) -> SnapshotsRecorded:
    now = now or timezone.now()
    hour = snapshot_hour(now)
    accounts = list(ExchangeAccount.objects.all())
    reports = pnl_reports(accounts, now=now)
    exposure = exposure_report(accounts, now=now)
    shares = account_exposure_totals(exposure)
    currency = settings.TRADINGSTATE.valuation_currency
    rows = []
    desk = {"realized_pnl": ZERO, "unrealized_pnl": ZERO, "fees": ZERO, "net_pnl": ZERO}
    desk_stale = bool(exposure.stale_assets)
    for account in accounts:
        totals = reports[account.name].totals
        net, gross, exposure_stale = shares.get(account.name, (ZERO, ZERO, False))
        figures = {
            "realized_pnl": totals.realized_pnl,
            "unrealized_pnl": totals.unrealized_pnl,
            "fees": totals.fees,
            "net_pnl": totals.net_pnl,
        }
        for key, value in figures.items():
            desk[key] = _add(desk[key], value)
        stale = bool(totals.stale) or exposure_stale
        desk_stale = desk_stale or stale
        rows.append(
            PnlSnapshot(
                account=account,
                taken_at=hour,
                recorded_at=now,
                valuation_currency=currency,
                net_notional=net,
                gross_notional=gross,
                stale=stale,
                **figures,
            )
        )
    rows.append(
        PnlSnapshot(
            account=None,
            taken_at=hour,
            recorded_at=now,
            valuation_currency=currency,
            net_notional=exposure.net_notional,
            gross_notional=exposure.gross_notional,
            stale=desk_stale,
            **desk,
        )
    )
    taken = set(PnlSnapshot.objects.filter(taken_at=hour).values_list("account_id", flat=True))
    new = [row for row in rows if row.account_id not in taken]
    PnlSnapshot.objects.bulk_create(new, ignore_conflicts=True)
    keep = timedelta(days=settings.TRADINGSTATE.pnl_history_retention_days)
    deleted, _ = PnlSnapshot.objects.filter(taken_at__lt=now - keep).delete()
    return SnapshotsRecorded(taken_at=hour, created=len(new), deleted=deleted)


def pnl_snapshot_schedule_ensure() -> None:
    """The hourly schedule of ``pnl_snapshot_task`` (created once; its next run kept)."""
    from django_q.models import Schedule  # django_q's models load only once apps are ready

    Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={"func": SNAPSHOT_TASK, "schedule_type": Schedule.HOURLY, "repeats": -1},
    )
