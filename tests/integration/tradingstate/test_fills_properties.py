"""Positions and fills agree without double counting (issue 14 item 4), as a property.

On a derivative account, any interleaving of the venue executing trades, the bot posting
those fills (some twice, some never) and reconciliation passes ends every completed pass
with: the local position at the venue's quantity, every venue trade recorded once (by the
bot or by the pass), and the order's filled quantity equal to the sum of its fills.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciliation.services import run_reconciliation
from tests.fakes.memory import TradingMemoryExchange
from tradingstate.actors import Actor
from tradingstate.exchanges import base as ex
from tradingstate.models import ExchangeAccount, Fill, Order, Position
from tradingstate.services import fill_record, order_register, order_transition

pytestmark = pytest.mark.django_db

PIECES = [Decimal("0.003"), Decimal("0.002"), Decimal("0.004"), Decimal("0.001"), Decimal("0.005")]
QUANTITY = sum(PIECES)  # 0.015
BOT = Actor(type="bot", name="prop-bot", correlation_id="prop")
_names = itertools.count()

# an action: ("venue", i) the venue executes trade i; ("bot", i) the bot posts trade i (once
# the venue executed it); ("pass",) a reconciliation pass
actions = st.lists(
    st.one_of(
        st.tuples(st.just("venue"), st.integers(0, len(PIECES) - 1)),
        st.tuples(st.just("bot"), st.integers(0, len(PIECES) - 1)),
        st.tuples(st.just("pass")),
    ),
    max_size=14,
)


class World:
    def __init__(self, side: str, start_qty: Decimal):
        self.side = side
        self.start = start_qty
        name = f"prop-{next(_names)}"
        self.account = ExchangeAccount.objects.create(
            name=name, exchange="paper", market_type="swap", stale_order_grace_seconds=0
        )
        order_register(account=self.account, client_order_id="o1", symbol="BTC/USDT:USDT",
                       side=side, quantity=str(QUANTITY), price="50000", actor=BOT)  # fmt: skip
        order_transition(account=self.account, client_order_id="o1", to_status="submitted",
                         exchange_order_id="E1", actor=BOT)  # fmt: skip
        self.venue = TradingMemoryExchange()
        self.venue.add_order(symbol="BTC/USDT:USDT", side=side, amount=QUANTITY,
                             exchange_order_id="E1", client_order_id="o1",
                             timestamp=datetime.now(tz=UTC) - timedelta(hours=1))  # fmt: skip
        self.executed: list[int] = []
        if start_qty:
            # a position held before (both sides agree)
            self.venue.set_position("BTC/USDT:USDT", str(start_qty), "49000")
            Position.objects.create(account=self.account, symbol="BTC/USDT:USDT", qty=start_qty,
                                    entry_price=Decimal(49000))  # fmt: skip

    def sign(self, qty: Decimal) -> Decimal:
        return qty if self.side == "buy" else -qty

    def venue_executes(self, i: int) -> None:
        if i in self.executed:
            return
        self.executed.append(i)
        price = Decimal(50000 + i)
        self.venue.add_trade(trade_id=f"T{i}", exchange_order_id="E1", symbol="BTC/USDT:USDT",
                             side=self.side, quantity=PIECES[i], price=price,
                             fee=Decimal("0.01"), fee_currency="USDT",
                             executed_at=datetime.now(tz=UTC) - timedelta(seconds=1))  # fmt: skip
        filled = sum(PIECES[j] for j in self.executed)
        order = self.venue.orders["E1"]
        status = ex.CLOSED if filled == QUANTITY else ex.OPEN
        self.venue.orders["E1"] = replace(order, filled=filled, status=status,
                                          average=Decimal(50000))  # fmt: skip
        self.venue.set_position("BTC/USDT:USDT", str(self.start + self.sign(filled)), "50000")

    def bot_posts(self, i: int) -> None:
        if i not in self.executed:
            return  # the bot learns of a trade from the venue
        fill, _created = fill_record(account=self.account, client_order_id="o1",
                                     trade_id=f"T{i}", quantity=str(PIECES[i]),
                                     price=str(50000 + i), fee="0.01", fee_currency="USDT",
                                     actor=BOT)  # fmt: skip
        assert fill.trade_id == f"T{i}"

    def reconcile(self) -> None:
        run = run_reconciliation(self.account, "schedule", adapter=self.venue)
        assert run.status == "completed", run.error
        self.check()

    def check(self) -> None:
        """After a completed pass: the venue's position, each trade once, filled = Σ fills."""
        position = Position.objects.filter(account=self.account, symbol="BTC/USDT:USDT").first()
        venue_qty = self.start + self.sign(sum((PIECES[j] for j in self.executed), Decimal(0)))
        assert (position.qty if position else Decimal(0)) == venue_qty
        fills = list(Fill.objects.filter(account=self.account))
        assert sorted(f.trade_id for f in fills) == sorted(f"T{j}" for j in self.executed)
        order = Order.objects.get(account=self.account, client_order_id="o1")
        total = sum((f.quantity for f in fills if f.order_id == order.pk), Decimal(0))
        assert order.filled_qty == order.fills_qty == total
        assert not any(f.inferred for f in fills)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=actions,
    side=st.sampled_from(["buy", "sell"]),
    start=st.sampled_from([Decimal(0), Decimal("0.02")]),
)
def test_any_interleaving_ends_each_pass_at_the_venue_without_double_counting(steps, side, start):
    with transaction.atomic():
        world = World(side, start)
        for step in steps:
            if step[0] == "venue":
                world.venue_executes(step[1])
            elif step[0] == "bot":
                world.bot_posts(step[1])
            else:
                world.reconcile()
        world.reconcile()  # a final pass: everything the venue executed is recorded once
        transaction.set_rollback(True)
