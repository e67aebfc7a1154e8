"""PaperExchange reads the paper venue tables of its own account only."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.factories import AccountFactory
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    OPEN,
    ExchangeBalance,
    ExchangePosition,
    InstrumentInfo,
    OrderNotFound,
)
from tradingstate.exchanges.paper import PaperExchange
from tradingstate.models import Instrument, PaperBalance, PaperOrder, PaperPosition

pytestmark = pytest.mark.django_db


def _order(account, oid, coid, status="open", amount="1", filled="0", symbol="BTC/USDT:USDT"):
    return PaperOrder.objects.create(
        account=account,
        exchange_order_id=oid,
        client_order_id=coid,
        symbol=symbol,
        side="buy",
        amount=D(amount),
        filled=D(filled),
        price=D("50000"),
        status=status,
    )


@pytest.fixture
def venue():
    account = AccountFactory(name="paper-a", exchange="paper", market_type="swap")
    other = AccountFactory(name="paper-b", exchange="paper", market_type="swap")
    _order(account, "p1", "c1")
    _order(account, "p2", "c2", status="closed", filled="1")
    _order(account, "p3", "c3", status="closed", amount="1", filled="0.4")
    _order(account, "p4", "c4", status="canceled")
    _order(other, "p9", "c9")
    PaperPosition.objects.create(account=account, symbol="BTC/USDT:USDT", qty=D("0.08"))
    PaperPosition.objects.create(account=account, symbol="ETH/USDT:USDT", qty=D("-2.5"))
    PaperPosition.objects.create(account=account, symbol="SOL/USDT:USDT", qty=D("0"))
    PaperPosition.objects.create(account=other, symbol="BTC/USDT:USDT", qty=D("9"))
    PaperBalance.objects.create(account=account, currency="USDT", free=D("90"), used=D("10"),
                                total=D("100"))  # fmt: skip
    PaperBalance.objects.create(account=account, currency="BTC")
    return account


def test_adapter_for_paper_is_paper_exchange(venue):
    assert isinstance(adapter_for(venue), PaperExchange)


def test_open_orders_of_this_account_only(venue):
    result = adapter_for(venue).fetch_open_orders()
    assert result.complete
    assert [(o.client_order_id, o.status, o.amount) for o in result.items] == [("c1", OPEN, D(1))]


def test_positions_signed_zero_omitted(venue):
    result = adapter_for(venue).fetch_positions()
    assert result.items == [
        ExchangePosition("BTC/USDT:USDT", D("0.08")),
        ExchangePosition("ETH/USDT:USDT", D("-2.5")),
    ]


def test_spot_paper_account_has_no_positions(venue):
    venue.market_type = "spot"
    result = adapter_for(venue).fetch_positions()
    assert result.items == [] and result.complete


def test_balances_zero_included(venue):
    assert adapter_for(venue).fetch_balances().items == [
        ExchangeBalance("BTC", D(0), D(0), D(0)),
        ExchangeBalance("USDT", D(90), D(10), D(100)),
    ]


@pytest.mark.parametrize(
    ("coid", "oid", "status", "filled"),
    [
        ("c2", "", CLOSED, "1"),
        ("", "p3", CANCELED, "0.4"),  # closed with filled < amount: part-filled then cancelled
        ("c4", "p4", CANCELED, "0"),
    ],
)
def test_fetch_order_by_either_id(venue, coid, oid, status, filled):
    order = adapter_for(venue).fetch_order(coid, oid, "BTC/USDT:USDT")
    assert (order.status, order.filled) == (status, D(filled))


def test_fetch_order_of_another_account_is_not_found(venue):
    with pytest.raises(OrderNotFound):
        adapter_for(venue).fetch_order("c9", "p9", "BTC/USDT:USDT")


def test_cancel_order(venue):
    adapter = adapter_for(venue)
    adapter.cancel_order("c1", "", "BTC/USDT:USDT")
    assert PaperOrder.objects.get(exchange_order_id="p1").status == "canceled"
    with pytest.raises(OrderNotFound):
        adapter.cancel_order("c1", "", "BTC/USDT:USDT")


def test_load_instruments_table_first_then_defaults(venue):
    Instrument.objects.create(account=venue, symbol="ETH/USDT:USDT", base="ETH", quote="USDT",
                              settle="USDT", market_type="swap", amount_step=D("0.05"))  # fmt: skip
    instruments = {i.symbol: i for i in adapter_for(venue).load_instruments()}
    assert instruments["ETH/USDT:USDT"].amount_step == D("0.05")
    assert instruments["BTC/USDT:USDT"] == InstrumentInfo(
        "BTC/USDT:USDT", "BTC", "USDT", "USDT", "swap", D("0.001")
    )
    assert "SOL/USDT:USDT" in instruments
