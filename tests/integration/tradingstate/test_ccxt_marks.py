"""fetch_mark_prices through the real ccxt client: one call per account, mark where the venue
has one (derivatives), last trade price elsewhere (spot)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from tests.fakes.exchange_server import NOW_MS, FakeTicker
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    LAST,
    MARK,
    ExchangeError,
    ExchangeMarkPrice,
    RateLimited,
)

# (exchange, market type) -> (the one path read, the source it gives)
MARK_PATHS = {
    ("binance", "spot"): ("/api/v3/ticker/24hr", LAST),
    ("binance", "swap"): ("/fapi/v1/premiumIndex", MARK),
    ("bybit", "spot"): ("/v5/market/tickers", LAST),
    ("bybit", "swap"): ("/v5/market/tickers", MARK),
    ("okx", "spot"): ("/api/v5/market/tickers", LAST),
    ("okx", "swap"): ("/api/v5/public/mark-price", MARK),
}
VENUES = list(MARK_PATHS)
IDS = [f"{e}-{m}" for e, m in VENUES]


def _symbols(market_type):
    suffix = "" if market_type == "spot" else ":USDT"
    return [f"BTC/USDT{suffix}", f"ETH/USDT{suffix}"]


def _seed(venue, market_type):
    kind = "spot" if market_type == "spot" else "linear"
    venue.tickers += [
        FakeTicker("BTCUSDT", last="50010.5", mark="50000.25", kind=kind),
        FakeTicker("ETHUSDT", last="3001.5", mark="3000.75", kind=kind),
    ]


@pytest.mark.parametrize(("exchange", "market_type"), VENUES, ids=IDS)
def test_one_call_gives_every_price(fake_exchange, make_fake_account, exchange, market_type):
    # given
    _seed(getattr(fake_exchange, exchange), market_type)
    adapter = adapter_for(make_fake_account(exchange, market_type))
    adapter.load_instruments()
    fake_exchange.requests.clear()
    path, source = MARK_PATHS[(exchange, market_type)]
    # when
    result = adapter.fetch_mark_prices(_symbols(market_type))
    # then: mark on derivatives, last on spot; Decimal prices, timezone-aware times
    assert result.complete
    expected = {"BTC": ("50000.25", "50010.5"), "ETH": ("3000.75", "3001.5")}
    assert [(p.symbol, p.price, p.source) for p in result.items] == [
        (symbol, D(expected[symbol[:3]][0 if source == MARK else 1]), source)
        for symbol in _symbols(market_type)
    ]
    assert all(isinstance(p, ExchangeMarkPrice) and p.time.tzinfo for p in result.items)
    assert fake_exchange.paths() == [path]


def test_the_venues_time_is_kept_when_it_gives_one(fake_exchange, make_fake_account):
    _seed(fake_exchange.okx, "swap")
    result = adapter_for(make_fake_account("okx", "swap")).fetch_mark_prices(["BTC/USDT:USDT"])
    assert result.items[0].time == datetime.fromtimestamp(NOW_MS / 1000, tz=UTC)


@pytest.mark.parametrize(("exchange", "market_type"), VENUES, ids=IDS)
def test_a_symbol_without_a_price_makes_the_result_incomplete(
    fake_exchange, make_fake_account, exchange, market_type
):
    # given: the venue has no ticker for ETH
    _seed(getattr(fake_exchange, exchange), market_type)
    getattr(fake_exchange, exchange).tickers.pop()
    # when
    result = adapter_for(make_fake_account(exchange, market_type)).fetch_mark_prices(
        _symbols(market_type)
    )
    # then: the prices it has, and which one is missing; never a zero price
    assert not result.complete
    assert [p.symbol for p in result.items] == _symbols(market_type)[:1]
    assert _symbols(market_type)[1] in result.note


@pytest.mark.parametrize(("exchange", "market_type"), VENUES, ids=IDS)
def test_a_failed_price_fetch_raises(fake_exchange, make_fake_account, exchange, market_type):
    _seed(getattr(fake_exchange, exchange), market_type)
    fake_exchange.fail(MARK_PATHS[(exchange, market_type)][0], "429", retry_after="3")
    with pytest.raises(RateLimited):
        adapter_for(make_fake_account(exchange, market_type)).fetch_mark_prices(
            _symbols(market_type)
        )


def test_no_symbols_no_call(fake_exchange, make_fake_account):
    adapter = adapter_for(make_fake_account("bybit", "swap"))
    assert adapter.fetch_mark_prices([]).items == []
    assert not any("tickers" in p for p in fake_exchange.paths())


def test_a_symbol_of_another_market_type_is_an_error(fake_exchange, make_fake_account):
    with pytest.raises(ExchangeError, match="BTC/USDT"):
        adapter_for(make_fake_account("okx", "swap")).fetch_mark_prices(["BTC/USDT"])
