"""A venue amount too large for the amount columns (numeric(38, 18): 20 integer digits).

The exchange's response is bad input like any other: the repair that would store it is
deferred with an error naming the field, nothing of that entity changes, and the rest of the
pass (other entities' repairs) goes on. The pass itself completes: a 500-class failure of the
whole pass would hide every other discrepancy.
"""

import time
from decimal import Decimal as D

import pytest

from reconciliation.models import Discrepancy, Repair
from reconciliation.services import run_reconciliation
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.exchange_server.state import FakeTrade
from tests.fakes.scenarios import seed_derivatives
from tradingstate.models import Balance, Fill, Order, Position

pytestmark = pytest.mark.django_db

HUGE = "1" + "0" * 25  # 26 integer digits


def _huge_balance(venue):
    venue.futures_balances[0].free = HUGE
    return "balance_mismatch", "USDT", "free"


def _huge_position(venue):
    venue.positions[1].qty = "-" + HUGE  # ETHUSDT
    return "position_mismatch", "ETH/USDT:USDT", "qty"


def _huge_order(venue):
    venue.orders[0].amount = HUGE  # 1001 / abc123, open
    return "missing_local_order", "abc123", "quantity"


def _huge_price(venue):
    venue.orders[0].price = HUGE
    return "missing_local_order", "abc123", "price"


def _huge_trade(venue):
    venue.trades.append(
        FakeTrade(
            "9001",
            "1004",
            "BTCUSDT",
            "sell",
            "0.1",
            HUGE,
            int(time.time() * 1000) - 60_000,
            client_order_id="jkl000",
        )
    )
    return "missing_fill", "BTC/USDT:USDT:9001", "price"


def _huge_result(venue):
    # each figure fits; the realized P&L of the second trade (about 8.1E+39) does not
    big, at = "90000000000000000000", int(time.time() * 1000) - 60_000
    venue.trades += [
        FakeTrade("9101", "7001", "BTCUSDT", "buy", big, big, at),
        FakeTrade("9102", "7001", "BTCUSDT", "sell", big, "1", at + 1),
    ]
    return "missing_fill", "BTC/USDT:USDT:9102", "position realized pnl"


@pytest.mark.parametrize(
    "plant", [_huge_balance, _huge_position, _huge_order, _huge_price, _huge_trade, _huge_result]
)
def test_a_venue_amount_too_large_defers_that_repair_and_names_the_field(
    fake_exchange, make_fake_account, plant
):
    # given: a venue whose one figure does not fit, and a book that drifted elsewhere too
    venue = fake_exchange.binance
    seed_derivatives(venue)
    kind, key, field = plant(venue)
    account = make_fake_account("binance", "swap", name="big", save=True)
    OrderFactory(account=account, client_order_id="jkl000", exchange_order_id="1004",
                 symbol="BTC/USDT:USDT", side="sell", quantity=D("0.1"), price=D("41000"),
                 status="submitted")  # fmt: skip
    PositionFactory(account=account, symbol="ETH/USDT:USDT", qty=D("-2"))
    BalanceFactory(account=account, currency="USDT", free=D("1"), total=D("1"))
    before = {
        "balances": list(Balance.objects.values_list("currency", "free", "total")),
        "positions": list(Position.objects.values_list("symbol", "qty")),
        "orders": list(Order.objects.values_list("client_order_id", "quantity", "price")),
        "fills": list(Fill.objects.values_list("trade_id", "price")),
    }

    # when
    run = run_reconciliation(account, "manual")

    # then: the pass completed, the bad figure's finding is open with a reason naming it
    assert run.status == "completed", run.error
    finding = Discrepancy.objects.get(run=run, type=kind, key=key)
    assert finding.status == "open"
    repair = Repair.objects.get(discrepancy=finding)
    assert repair.status == Repair.Status.DEFERRED
    assert field in repair.error and "20 digits" in repair.error, repair.error
    # nothing of that entity changed
    if kind == "balance_mismatch":
        assert list(Balance.objects.values_list("currency", "free", "total")) == before["balances"]
    if kind == "position_mismatch":
        assert Position.objects.get(symbol=key).qty == D("-2")
    if kind == "missing_local_order":
        assert not Order.objects.filter(client_order_id=key).exists()
    if kind == "missing_fill":
        assert not Fill.objects.filter(trade_id=key.rsplit(":", 1)[1]).exists()
        # the order a refused trade names is left as it was
        jkl = Order.objects.get(client_order_id="jkl000")
        assert (jkl.fills_qty, jkl.avg_fill_price, jkl.version) == (D(0), None, 1)
    # and the other repairs of the pass went on
    others = Discrepancy.objects.filter(run=run).exclude(pk=finding.pk)
    assert (
        others.exists()
        and not others.filter(status="open")
        .exclude(type__in=["missing_fill", "position_mismatch"])
        .exists()
    ), [(o.type, o.key, o.status) for o in others]
