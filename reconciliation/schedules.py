"""django-q2 schedules for minute-level housekeeping, created idempotently.

The ticker creates them when it starts (``update_or_create`` by name, ``catch_up`` off in
Q_CLUSTER), so every deployment that runs a ticker has them; the qcluster runs them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

ALERTS_CHECK = "tradingstate-alerts-check"
PRUNE = "tradingstate-prune-daily"


def _next_daily(at: str, now: datetime) -> datetime:
    hour, minute = (int(p) for p in at.split(":"))
    local = timezone.localtime(now)
    when = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return when if when > local else when + timedelta(days=1)


def schedules_ensure() -> None:
    from django_q.models import Schedule

    now = timezone.now()
    Schedule.objects.update_or_create(
        name=ALERTS_CHECK,
        defaults={
            "func": "reconciliation.tasks.alerts_check_task",
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    daily_at = settings.TRADINGSTATE.retention.daily_at
    existing = Schedule.objects.filter(name=PRUNE).values_list("next_run", "kwargs").first()
    if existing is None or existing[1] != repr({"at": daily_at}):
        Schedule.objects.update_or_create(
            name=PRUNE,
            defaults={
                "func": "reconciliation.tasks.prune_task",
                "kwargs": repr({"at": daily_at}),  # changes when the configured time does
                "schedule_type": Schedule.DAILY,
                "repeats": -1,
                "next_run": _next_daily(daily_at, now),
            },
        )
