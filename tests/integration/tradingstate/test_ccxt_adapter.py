"""CcxtExchange against the fake exchange server: the real ccxt client over loopback HTTP."""

from __future__ import annotations

from dataclasses import replace
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

VENUES = ["binance", "bybit", "okx"]
# OKX keeps stop and take-profit orders apart (algo orders); the seeded stop-limit and
# take-profit-limit orders are part-filled, i.e. triggered, and read as plain limit orders.
TRIGGERED_AS_LIMIT = {"okx"}


def _venue(server, exchange):
    return getattr(server, exchange)


def _expected(orders, exchange):
    if exchange in TRIGGERED_AS_LIMIT:
        orders = [replace(o, type="limit") for o in orders]
    return sorted(orders, key=lambda o: o.exchange_order_id)


def _got(result):
    return sorted((comparable(o) for o in result.items), key=lambda o: o.exchange_order_id)


@pytest.mark.parametrize("exchange", VENUES)
def test_swap_open_orders_equal_the_seeded_state(fake_exchange, make_fake_account, exchange):
    # given
    seed_derivatives(_venue(fake_exchange, exchange))
    adapter = adapter_for(make_fake_account(exchange, "swap"))
    # when
    result = adapter.fetch_open_orders()
    # then
    assert result.complete
    assert _got(result) == _expected(expected_derivative_open_orders(), exchange)
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


@pytest.mark.parametrize("exchange", ["bybit", "okx"])
def test_unified_swap_balances(fake_exchange, make_fake_account, exchange):
    # given: one wallet for every market type (Bybit unified account, OKX trading account)
    seed_derivatives(_venue(fake_exchange, exchange))
    # when
    result = adapter_for(make_fake_account(exchange, "swap")).fetch_balances()
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
    assert _got(orders) == _expected(expected_spot_open_orders(), exchange)
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
    # then: Bybit v5 and OKX have no "expired" (such an order ends cancelled)
    if exchange in ("bybit", "okx") and status == EXPIRED:
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
    # then: steps in base units, also where the venue's lot is in contracts (OKX)
    sizes = {"okx": (D("0.001"), D("0.01"))}.get(exchange, (D(1), D(1)))
    assert instruments == [
        InstrumentInfo("BTC/USDT:USDT", "BTC", "USDT", "USDT", "swap", D("0.001"), D("0.1"),
                       sizes[0]),
        InstrumentInfo("ETH/USDT:USDT", "ETH", "USDT", "USDT", "swap", D("0.01"), D("0.01"),
                       sizes[1]),
    ]  # fmt: skip


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
    # bybit: linear+inverse, each with PreLaunch; okx: the account's instType only
    expected = {"binance": 1, "bybit": 4, "okx": 1}[exchange]
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


def test_okx_swap_amounts_are_contracts_times_contract_size(fake_exchange, make_fake_account):
    # given: OKX counts BTC-USDT-SWAP in contracts of 0.001 BTC
    fake_exchange.okx.orders.append(
        FakeOrder("9001", "BTCUSDT", "buy", "0.250", "30000", filled="0.125", client_order_id="k1")
    )
    adapter = adapter_for(make_fake_account("okx", "swap"))
    # when
    order = adapter.fetch_open_orders().items[0]
    # then: the wire says sz=250, accFillSz=125; the adapter says base units
    rendered = fake_exchange.requests[-1]
    assert rendered[1] == "/api/v5/trade/orders-pending"
    assert (order.amount, order.filled, order.remaining) == (D("0.25"), D("0.125"), D("0.125"))


def test_okx_every_page_of_open_orders_is_read(fake_exchange, make_fake_account):
    # given: 230 open orders, OKX pages of 100 (newest first, ``after`` = the last ordId)
    fake_exchange.okx.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000", client_order_id=f"c{i}")
        for i in range(230)
    ]
    # when
    result = adapter_for(make_fake_account("okx", "swap")).fetch_open_orders()
    # then
    assert result.complete
    assert sorted(o.client_order_id for o in result.items) == sorted(f"c{i}" for i in range(230))
    pages = [q for _m, p, q in fake_exchange.requests if p == "/api/v5/trade/orders-pending"]
    assert [q.get("after") for q in pages] == [None, "5130", "5030"]


def test_okx_open_orders_page_cap_is_incomplete(fake_exchange, make_fake_account):
    fake_exchange.okx.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000") for i in range(300)
    ]
    result = CcxtExchange(make_fake_account("okx", "swap"), max_pages=2).fetch_open_orders()
    assert not result.complete and "2 pages" in result.note
    assert len(result.items) == 200


def test_okx_account_needs_its_passphrase(fake_exchange, make_fake_account, monkeypatch):
    # given: a wrong passphrase in the variable the account names
    monkeypatch.setenv("TS_FAKE_API_PASSPHRASE", "not-the-passphrase")
    # when / then: the venue refuses it and the adapter says authentication failed
    from tradingstate.exchanges.base import AuthenticationFailed

    with pytest.raises(AuthenticationFailed):
        adapter_for(make_fake_account("okx", "swap")).fetch_balances()
