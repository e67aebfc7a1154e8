"""``manage.py demo``: the paper account ``paper-demo`` staged with the runbook's desync.

- local BTC/USDT position 0.05, the venue holds 0.08 (``position_mismatch``);
- local order ``abc123`` submitted five minutes ago, gone from the venue (``stale_local_order``);
- venue order ``def456`` open, unknown locally (``missing_local_order``);
- balances agree (USDT 10,000).

Local writes go through the audited services (actor ``system:demo``); the venue side is the
simulated exchange's own tables. Running it again leaves an existing demo alone unless
``--reset`` is given, which clears the demo account's local and venue rows and stages it anew.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from tradingstate.actors import Actor
from tradingstate.models import (
    Balance,
    ExchangeAccount,
    Fill,
    Instrument,
    Order,
    PaperBalance,
    PaperOrder,
    PaperPosition,
    Position,
)
from tradingstate.services import balance_set, order_register, order_transition, position_set
from tradingstate.services.accounts import account_upsert

DEMO = "paper-demo"
STAGED_AGO = timedelta(minutes=5)


class Command(BaseCommand):
    help = "Create the paper-demo account with the runbook's desync (local vs venue)."

    def add_arguments(self, parser):
        parser.add_argument("--reset", action="store_true", help="stage the desync again")

    def handle(self, *args, reset: bool = False, **options):
        existing = ExchangeAccount.objects.filter(name=DEMO).first()
        if existing and Order.objects.filter(account=existing).exists() and not reset:
            self.stdout.write(
                f"Demo account {DEMO!r} exists; `manage.py demo --reset` restages it."
            )
            return
        with transaction.atomic():
            account = stage(reset=reset)
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo account {DEMO!r} staged: local BTC/USDT 0.05 vs venue 0.08, local order "
                "abc123 submitted but gone from the venue, venue order def456 unknown locally.\n"
                f"Next: python manage.py reconcile --account {account.name}"
            )
        )


def stage(*, reset: bool) -> ExchangeAccount:
    actor = Actor.system("demo")
    account = account_upsert(
        name=DEMO,
        values={"exchange": "paper", "market_type": "swap", "enabled": True, "disabled_reason": ""},
        actor=actor,
        reason="demo account",
    )
    if reset:
        # demo staging only: the audit trail keeps every earlier entry
        for model in (Fill, Order, Position, Balance, PaperOrder, PaperPosition, PaperBalance):
            model.objects.filter(account=account).delete()
    Instrument.objects.update_or_create(
        account=account,
        symbol="BTC/USDT",
        defaults={
            "base": "BTC",
            "quote": "USDT",
            "settle": "USDT",
            "market_type": "swap",
            "amount_step": Decimal("0.001"),
            "price_step": Decimal("0.1"),
        },
    )
    # the bot's local book
    order_register(
        account=account,
        client_order_id="abc123",
        symbol="BTC/USDT",
        side="buy",
        type="limit",
        quantity="0.01",
        price="60000",
        actor=actor,
        reason="demo",
    )
    order_transition(
        account=account,
        client_order_id="abc123",
        to_status="submitted",
        exchange_order_id="PAPER-1001",
        actor=actor,
        reason="demo",
    )
    position_set(
        account=account,
        symbol="BTC/USDT",
        qty="0.05",
        entry_price="60000",
        actor=actor,
        reason="demo",
    )
    balance_set(
        account=account, currency="USDT", free="9000", used="1000", actor=actor, reason="demo"
    )
    # the venue's truth
    PaperPosition.objects.create(
        account=account, symbol="BTC/USDT", qty=Decimal("0.08"), entry_price=Decimal("60250")
    )
    PaperBalance.objects.create(
        account=account,
        currency="USDT",
        free=Decimal("9000"),
        used=Decimal("1000"),
        total=Decimal("10000"),
    )
    PaperOrder.objects.create(
        account=account,
        exchange_order_id="PAPER-1002",
        client_order_id="def456",
        symbol="BTC/USDT",
        side="sell",
        type="limit",
        amount=Decimal("0.02"),
        price=Decimal("65000"),
    )
    # abc123 was submitted (and def456 placed) five minutes ago: past the grace window
    past = timezone.now() - STAGED_AGO
    Order.objects.filter(account=account, client_order_id="abc123").update(updated_at=past)
    PaperOrder.objects.filter(account=account).update(created_at=past, updated_at=past)
    return account
