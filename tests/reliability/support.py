"""Helpers for the reliability suite: drifted paper accounts, table dumps, invariants."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

from django.apps import apps
from django.utils import timezone

from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from tradingstate.actors import Actor
from tradingstate.models import (
    AuditEntry,
    ExchangeAccount,
    Instrument,
    Order,
    PaperBalance,
    PaperOrder,
    PaperPosition,
)
from tradingstate.services import balance_set, order_register, order_transition, position_set
from tradingstate.services.accounts import account_upsert

LONG_AGO = timedelta(minutes=5)
DRIFTS_PER_ACCOUNT = 4  # position, balance, stale local order, missing local order
_venue_ids = count(1)


def paper_account(name: str, *, market_type: str = "swap", **values) -> ExchangeAccount:
    account = account_upsert(
        name=name,
        values={"exchange": "paper", "market_type": market_type, "enabled": True, **values},
        actor=Actor.system("tests"),
        reason="reliability",
    )
    Instrument.objects.update_or_create(
        account=account,
        symbol="BTC/USDT",
        defaults={
            "base": "BTC",
            "quote": "USDT",
            "settle": "USDT",
            "market_type": market_type,
            "amount_step": Decimal("0.001"),
        },
    )
    return account


def stage_drift(name: str) -> ExchangeAccount:
    """A paper swap account with four drifts (the runbook's three plus a balance), each
    past the grace window: every one must be repaired exactly once."""
    actor = Actor.system("tests")
    account = paper_account(name)
    order_register(
        account=account,
        client_order_id="abc123",
        symbol="BTC/USDT",
        side="buy",
        quantity="0.01",
        price="60000",
        actor=actor,
    )
    order_transition(
        account=account,
        client_order_id="abc123",
        to_status="submitted",
        exchange_order_id=f"PAPER-L{account.pk}",
        actor=actor,
    )
    # the submit placed it on the paper venue; the venue then cancelled it behind the bot's
    # back (stale_local_order: the venue's answer proves the end state in one pass; one it
    # does not know at all waits stale_not_found_passes passes, issue 14)
    PaperOrder.objects.filter(account=account, client_order_id="abc123").update(
        status=PaperOrder.Status.CANCELED
    )
    position_set(account=account, symbol="BTC/USDT", qty="0.05", entry_price="60000", actor=actor)
    balance_set(account=account, currency="USDT", free="9000", used="0", actor=actor)
    PaperPosition.objects.create(account=account, symbol="BTC/USDT", qty=Decimal("0.08"))
    PaperBalance.objects.create(
        account=account, currency="USDT", free=Decimal(10000), used=0, total=Decimal(10000)
    )
    venue_order(account, "def456")
    past = timezone.now() - LONG_AGO
    Order.objects.filter(account=account).update(updated_at=past)
    return account


def venue_order(account, client_order_id: str, *, amount="0.02") -> PaperOrder:
    """An order open on the venue, unknown locally, placed long ago (missing_local_order)."""
    row = PaperOrder.objects.create(
        account=account,
        exchange_order_id=f"PAPER-V{next(_venue_ids)}-{account.pk}",
        client_order_id=client_order_id,
        symbol="BTC/USDT",
        side="sell",
        amount=Decimal(amount),
        price=Decimal(65000),
    )
    past = timezone.now() - LONG_AGO
    PaperOrder.objects.filter(pk=row.pk).update(created_at=past, updated_at=past)
    return row


def repairs_consistent(account=None) -> dict:
    """Per finished run: repairs_applied == applied Repair rows == repair audit rows; no run
    left RUNNING; every repaired discrepancy has exactly one applied Repair."""
    runs = ReconciliationRun.objects.all()
    repairs = Repair.objects.filter(status=Repair.Status.APPLIED)
    audits = AuditEntry.objects.filter(action="repair.apply")
    if account is not None:
        runs, repairs, audits = (
            runs.filter(account=account),
            repairs.filter(account_id=account.pk),
            audits.filter(account=account),
        )
    stuck = runs.filter(status=ReconciliationRun.Status.RUNNING).count()
    assert stuck == 0, f"{stuck} runs stuck RUNNING"
    for run in runs.exclude(repairs_applied=0):
        n_repairs = repairs.filter(run=run).count()
        n_audits = audits.filter(run_id=run.pk).count()
        assert run.repairs_applied == n_repairs == n_audits, (
            run.pk,
            run.repairs_applied,
            n_repairs,
            n_audits,
        )
    assert repairs.filter(run__isnull=True).count() == 0
    orphans = audits.exclude(run_id__in=runs.values("pk")).count()
    assert orphans == 0, f"{orphans} repair audit rows without a run"
    repaired = Discrepancy.objects.filter(status=Discrepancy.Status.REPAIRED)
    if account is not None:
        repaired = repaired.filter(account=account)
    for disc in repaired:
        assert disc.repairs.filter(status=Repair.Status.APPLIED).count() == 1, disc.pk
    return {"repairs": repairs.count(), "audits": audits.count(), "runs": runs.count()}


def dump_tables() -> dict:
    """Every row of every project table (and auth users), for before/after comparisons."""
    labels = ("tradingstate", "killswitch", "reconciliation", "auth", "knox", "axes")
    # the rate limit's request counts (every request counts, as in the cache table they
    # lived in before, which this comparison never saw): bookkeeping, not state
    bookkeeping = {"tradingstate.RateCounter"}
    out = {}
    for model in apps.get_models():
        if model._meta.app_label not in labels or model._meta.label in bookkeeping:
            continue
        key = model._meta.label
        out[key] = sorted(
            (tuple(sorted((k, str(v)) for k, v in row.items())) for row in model.objects.values()),
        )
    return out
