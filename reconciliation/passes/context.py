"""What one pass carries from step to step."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from reconciliation import diff as d
from reconciliation.models import Discrepancy, ReconciliationRun
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount
from tradingstate.services.sync import SyncOutcome


@dataclass
class PassContext:
    """One pass's identity: the account, why it runs, and when it started."""

    account: ExchangeAccount | None  # None until the pass reads it (given by id)
    trigger: str = ReconciliationRun.Trigger.MANUAL
    dry_run: bool = False
    run_id: int | None = None  # a queued run row to fill (API, admin), else a new row
    requested_by: str = ""
    started: datetime = field(default_factory=timezone.now)
    clock: float = field(default_factory=time.perf_counter)

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.clock) * 1000)


@dataclass
class PassOutcome:
    run: ReconciliationRun
    findings: list[d.Finding] = field(default_factory=list)
    applied: list[tuple[d.Finding, SyncOutcome]] = field(default_factory=list)
    persistent: list[Discrepancy] = field(default_factory=list)
    marks_error: str = ""  # why some mark prices were not refreshed (kept, marked stale)


def reconciliation_actor(run_id: object) -> Actor:
    return Actor.system("reconciliation", run_id)
