"""CcxtExchange against the fake exchange server: the real ccxt client over loopback HTTP."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.fakes.exchange_server import FakeMarket, FakeOrder
from tests.fakes.scenarios import (
    balances,
    comparable,
    expected_derivative_open_orders,
    expected_positions,
    expected_spot_open_orders,
    seed_derivatives,
    seed_spot,
)
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    InstrumentInfo,
    OrderNotFound,
)
from tradingstate.exchanges.ccxt import CcxtExchange

VENUES = ["binance", "bybit"]


def _venue(server, exchange):
    return getattr(server, exchange)


@pytest.mark.parametrize("exchange", VENUES)
def test_swap_open_orders_equal_the_seeded_state(fake_exchange, make_fake_account, exchange):
    # given
    seed_derivatives(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    result = adapter.fetch_open_orders()
    # then
    assert result.complete
    assert [comparable(o) for o in result.items] == expected_derivative_open_orders()
    assert all(isinstance(o.amount, D) for o in result.items)


@pytest.mark.parametrize("exchange", VENUES)
def test_swap_positions_are_signed_base_quantities(fake_exchange, make_fake_account, exchange):
    # given
    seed_derivatives(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    result = adapter.fetch_positions()
    # then
    assert result.complete
    assert result.items == expected_positions()


@pytest.mark.parametrize("exchange", VENUES)
def test_zero_positions_are_omitted(fake_exchange, make_fake_account, exchange):
    # given
    from tests.fakes.exchange_server import FakePosition

    _venue(fake_exchange, exchange).positions.append(FakePosition("BTCUSDT", "0"))
    # when
    result = adapter_for(make_fake_account(exchange, "swap")).fetch_positions()
    # then
    assert result.items == []
    assert result.complete


def test_binance_swap_balances_every_currency_zero_included(fake_exchange, make_fake_account):
    # given
    seed_derivatives(fake_exchange.binance)
    # when
    result = adapter_for(make_fake_account("binance", "swap")).fetch_balances()
    # then
    assert result.complete
    assert result.items == balances(("BNB", "0", "0", "0"), ("USDT", "900.75", "100.25", "1001.00"))


def test_bybit_swap_balances(fake_exchange, make_fake_account):
    # given
    seed_derivatives(fake_exchange.bybit)
    # when
    result = adapter_for(make_fake_account("bybit", "swap")).fetch_balances()
    # then
    assert result.items == balances(
        ("BTC", "0.1", "0", "0.1"), ("USDT", "1000.5", "200.25", "1200.75")
    )


@pytest.mark.parametrize("exchange", VENUES)
def test_spot_account(fake_exchange, make_fake_account, exchange):
    # given
    seed_spot(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "spot"))
    # when
    orders = adapter.fetch_open_orders()
    positions = adapter.fetch_positions()
    balance = adapter.fetch_balances()
    # then
    assert [comparable(o) for o in orders.items] == expected_spot_open_orders()
    assert positions.items == [] and positions.complete
    assert balance.items == balances(
        ("BTC", "0.1", "0", "0.1"), ("ETH", "0", "0", "0"), ("USDT", "1000.5", "200.25", "1200.75")
    )


@pytest.mark.parametrize("exchange", VENUES)
@pytest.mark.parametrize(
    ("coid", "oid", "status", "filled"),
    [
        ("ghi789", "1003", CANCELED, "0.200"),  # partially filled, then cancelled
        ("jkl000", "1004", CLOSED, "0.100"),
        ("mno111", "1005", EXPIRED, "0"),
        ("abc123", "1001", OPEN, "0"),
        ("ghi789", "", CANCELED, "0.200"),  # by client order id only
    ],
)
def test_fetch_order_learns_the_end_state(
    fake_exchange, make_fake_account, exchange, coid, oid, status, filled
):
    # given
    seed_derivatives(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    order = adapter.fetch_order(coid, oid, "BTC/USDT:USDT" if oid != "1005" else "ETH/USDT:USDT")
    # then: Bybit v5 has no "expired" (a deactivated conditional order is cancelled)
    if exchange == "bybit" and status == EXPIRED:
        status = CANCELED
    assert (order.client_order_id, order.status, order.filled) == (coid, status, D(filled))


@pytest.mark.parametrize("exchange", VENUES)
def test_fetch_order_unknown_raises_order_not_found(fake_exchange, make_fake_account, exchange):
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    with pytest.raises(OrderNotFound):
        adapter.fetch_order("nope", "999999", "BTC/USDT:USDT")


@pytest.mark.parametrize("exchange", VENUES)
def test_cancel_order(fake_exchange, make_fake_account, exchange):
    # given
    seed_derivatives(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    adapter.cancel_order("abc123", "1001", "BTC/USDT:USDT")
    # then
    assert adapter.fetch_order("abc123", "1001", "BTC/USDT:USDT").status == CANCELED
    with pytest.raises(OrderNotFound):
        adapter.cancel_order("abc123", "1001", "BTC/USDT:USDT")


@pytest.mark.parametrize("exchange", VENUES)
def test_load_instruments_steps_from_tick_size_precision(
    fake_exchange, make_fake_account, exchange
):
    # when
    instruments = adapter_for(make_fake_account(exchange, "swap")).load_instruments()
    # then
    assert instruments == [
        InstrumentInfo("BTC/USDT:USDT", "BTC", "USDT", "USDT", "swap", D("0.001"), D("0.1")),
        InstrumentInfo("ETH/USDT:USDT", "ETH", "USDT", "USDT", "swap", D("0.01"), D("0.01")),
    ]


@pytest.mark.parametrize("exchange", VENUES)
def test_markets_are_loaded_once_per_adapter(fake_exchange, make_fake_account, exchange):
    # given
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    adapter.fetch_open_orders()
    adapter.fetch_positions()
    adapter.fetch_balances()
    adapter.load_instruments()
    # then
    market_paths = [p for p in fake_exchange.paths() if "exchangeInfo" in p or "instruments" in p]
    expected = 1 if exchange == "binance" else 4  # bybit: linear+inverse, each with PreLaunch
    assert len(market_paths) == expected


def test_bybit_every_page_of_open_orders_is_read(fake_exchange, make_fake_account):
    # given: 120 open orders, pages of 50
    fake_exchange.bybit.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000", client_order_id=f"c{i}")
        for i in range(120)
    ]
    # when
    result = adapter_for(make_fake_account("bybit", "swap")).fetch_open_orders()
    # then
    assert result.complete
    assert sorted(o.client_order_id for o in result.items) == sorted(f"c{i}" for i in range(120))
    assert fake_exchange.paths().count("/v5/order/realtime") == 3


def test_bybit_usdc_settled_orders_are_read_too(fake_exchange, make_fake_account):
    # given
    fake_exchange.bybit.markets.append(FakeMarket("BTC", "USDC", "linear"))
    fake_exchange.bybit.orders.append(
        FakeOrder("7001", "BTCUSDC", "buy", "0.001", "30000", client_order_id="usdc-1")
    )
    # when
    result = adapter_for(make_fake_account("bybit", "swap")).fetch_open_orders()
    # then
    assert [o.symbol for o in result.items] == ["BTC/USDC:USDC"]


def test_bybit_endless_cursor_hits_the_page_cap_and_is_incomplete(fake_exchange, make_fake_account):
    # given
    fake_exchange.bybit.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000") for i in range(3)
    ]
    fake_exchange.fail("/v5/order/realtime", "endless_cursor")
    adapter = CcxtExchange(make_fake_account("bybit", "swap"), max_pages=4)
    # when
    result = adapter.fetch_open_orders()
    # then
    assert not result.complete
    assert "4 pages" in result.note
    assert fake_exchange.paths().count("/v5/order/realtime") == 4


def test_bybit_positions_endless_cursor_is_incomplete(fake_exchange, make_fake_account):
    fake_exchange.fail("/v5/position/list", "endless_cursor")
    result = CcxtExchange(make_fake_account("bybit", "swap"), max_pages=3).fetch_positions()
    assert not result.complete
