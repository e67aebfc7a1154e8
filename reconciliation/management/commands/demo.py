"""``manage.py demo``: the paper account ``paper-demo`` staged with the runbook's desync.

- local BTC/USDT position 0.05, the venue holds 0.08 (``position_mismatch``);
- local order ``abc123`` submitted five minutes ago, gone from the venue's open orders: staff
  cancelled it there behind the bot's back (``stale_local_order``; the venue's answer
  ``canceled`` proves the end state, so one pass resolves it: an order the venue does not
  know at all waits ``stale_not_found_passes`` passes, issue 14);
- venue order ``def456`` open, unknown locally (``missing_local_order``);
- balances agree (USDT 10,000);
- a missed fill: order ``ghi789`` (buy 0.03 at market) was filled by the venue, and the bot
  learned that it filled but never recorded the fill: the venue's trade is unknown locally
  (it is the 0.03 between the local 0.05 and the venue's 0.08).

The orders go through the real path: registered and submitted through the audited services
(actor ``system:demo``), so the paper venue places them (and fills ``ghi789`` at the
BTC/USDT mark, 60,250). Then the venue is edited behind the bot's back, as staff can in the
admin: ``abc123`` vanishes from the venue, ``def456`` is added to it, and its position and
balances are set to the staged truth. Running it again leaves an existing demo alone unless
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
    PaperMarkPrice,
    PaperOrder,
    PaperPosition,
    PaperTrade,
    Position,
)
from tradingstate.services import (
    balance_set,
    order_register,
    order_transition,
    paper_mark_set,
    position_set,
)
from tradingstate.services.accounts import account_upsert

DEMO = "paper-demo"
STAGED_AGO = timedelta(minutes=5)
MARK = "60250"


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
                "abc123 submitted but gone from the venue, venue order def456 unknown locally, "
                "and the venue's fill of ghi789 never recorded locally.\n"
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
        for model in (
            Fill,
            Order,
            Position,
            Balance,
            PaperTrade,
            PaperOrder,
            PaperPosition,
            PaperBalance,
            PaperMarkPrice,
        ):
            model.objects.filter(account=account).delete()
        # and its trades are read again from the start (the staged trades are older than
        # the watermark the earlier passes left)
        ExchangeAccount.objects.filter(pk=account.pk).update(fills_watermark_at=None)
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
    # the venue's market: BTC/USDT at 60,250 (abc123's limit 60,000 rests below it)
    paper_mark_set(account=account, symbol="BTC/USDT", price=MARK, actor=actor, reason="demo")
    # the bot's local book, through the real path (each submit places the order on the venue)
    for coid, side, type_, qty, price in (
        ("abc123", "buy", "limit", "0.01", "60000"),
        ("ghi789", "buy", "market", "0.03", None),
    ):
        order_register(
            account=account,
            client_order_id=coid,
            symbol="BTC/USDT",
            side=side,
            type=type_,
            quantity=qty,
            price=price,
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
    order_transition(
        account=account, client_order_id="ghi789", to_status="submitted", actor=actor,
        reason="demo",
    )  # fmt: skip
    # the bot heard that ghi789 filled, but never recorded the venue's trade (the missed fill)
    order_transition(
        account=account,
        client_order_id="ghi789",
        to_status="filled",
        avg_fill_price=MARK,
        actor=actor,
        reason="demo: fill status seen, trade missed",
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
    # the venue edited behind the bot's back (as staff can in the admin): abc123 cancelled,
    # def456 is open there, and its position and balance are the staged truth
    PaperOrder.objects.filter(account=account, client_order_id="abc123").update(
        status=PaperOrder.Status.CANCELED
    )
    PaperPosition.objects.update_or_create(
        account=account,
        symbol="BTC/USDT",
        defaults={"qty": Decimal("0.08"), "entry_price": Decimal("60250")},
    )
    PaperBalance.objects.update_or_create(
        account=account,
        currency="USDT",
        defaults={"free": Decimal("9000"), "used": Decimal("1000"), "total": Decimal("10000")},
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
    # abc123 was submitted (and def456 placed, ghi789 filled) five minutes ago: past the grace
    past = timezone.now() - STAGED_AGO
    Order.objects.filter(account=account, client_order_id="abc123").update(updated_at=past)
    PaperOrder.objects.filter(account=account).update(created_at=past, updated_at=past)
    PaperTrade.objects.filter(account=account).update(executed_at=past)
    return account
