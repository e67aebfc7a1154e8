"""fetch_my_trades through the real ccxt client against the fake Binance, Bybit and OKX.

Every venue's trade list is served in its own wire format with its own rules: Binance takes
a symbol and 24 h (spot) or 7 days (USD-M) per query and never ``fromId`` with a time range;
Bybit takes 7 days per query and pages by cursor; OKX pages fills-history by ``billId``.
The fake refuses what the venue refuses, so a request the adapter should not send fails.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from tests.fakes.exchange_server import FakeTrade
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    BadExchangeResponse,
    ExchangeError,
    ExchangeTrade,
    RateLimited,
    TransientExchangeError,
)
from tradingstate.exchanges.ccxt import CcxtExchange

HOUR = 3_600_000
# (exchange, market type) -> the path ccxt calls for the account's trades
TRADE_PATHS = {
    ("binance", "spot"): "/api/v3/myTrades",
    ("binance", "swap"): "/fapi/v1/userTrades",
    ("bybit", "spot"): "/v5/execution/list",
    ("bybit", "swap"): "/v5/execution/list",
    ("okx", "spot"): "/api/v5/trade/fills-history",
    ("okx", "swap"): "/api/v5/trade/fills-history",
}
VENUES = list(TRADE_PATHS)
IDS = [f"{e}-{m}" for e, m in VENUES]


def _now_ms() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1000)


def _kind(market_type: str) -> str:
    return "spot" if market_type == "spot" else "linear"


def _unified(symbol_id: str, market_type: str) -> str:
    base, quote = symbol_id[:-4], symbol_id[-4:]
    return f"{base}/{quote}" if market_type == "spot" else f"{base}/{quote}:{quote}"


def _trades(market_type, symbol_id, start_ms, count, step_ms, first_id=1, **fields):
    """``count`` trades of one symbol, ``step_ms`` apart, alternating sides and liquidity."""
    return [
        FakeTrade(
            trade_id=str(first_id + i),
            order_id=str(900_000 + (first_id + i) // 3),
            symbol=symbol_id,
            side="buy" if i % 2 == 0 else "sell",
            qty="0.012" if symbol_id.startswith("BTC") else "0.50",
            price=f"{48990 + i}.5",
            time_ms=start_ms + i * step_ms,
            fee="0.0123" if i % 3 else "-0.001",  # one in three is a maker rebate
            fee_currency="USDT",
            client_order_id=f"coid-{(first_id + i) // 3}",
            maker=i % 3 == 0,
            kind=_kind(market_type),
            **fields,
        )
        for i in range(count)
    ]


def _expected(trade: FakeTrade, exchange: str, market_type: str) -> ExchangeTrade:
    return ExchangeTrade(
        trade_id=trade.trade_id,
        exchange_order_id=trade.order_id,
        symbol=_unified(trade.symbol, market_type),
        side=trade.side,
        quantity=D(trade.qty),
        price=D(trade.price),
        fee=D(trade.fee),
        fee_currency=trade.fee_currency,
        executed_at=datetime.fromtimestamp(trade.time_ms / 1000, tz=UTC),
        client_order_id="" if exchange == "binance" else trade.client_order_id,
        liquidity="maker" if trade.maker else "taker",
    )


def _since(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _requests(server, path):
    return [query for _method, p, query in server.requests if p == path]


@pytest.mark.parametrize(("exchange", "market_type"), VENUES, ids=IDS)
def test_every_trade_since_across_windows_and_symbols(
    fake_exchange, make_fake_account, exchange, market_type
):
    # given: 3 days of BTC and ETH trades, every 5 hours, and one trade before ``since``
    start = _now_ms() - 72 * HOUR
    venue = getattr(fake_exchange, exchange)
    btc = _trades(market_type, "BTCUSDT", start, 14, 5 * HOUR, first_id=100)
    eth = _trades(market_type, "ETHUSDT", start + HOUR, 14, 5 * HOUR, first_id=500)
    early = _trades(market_type, "BTCUSDT", start - 2 * HOUR, 1, HOUR, first_id=99)
    venue.trades += btc + eth + early
    symbols = [_unified("BTCUSDT", market_type), _unified("ETHUSDT", market_type)]
    adapter = adapter_for(make_fake_account(exchange, market_type))
    # when
    result = adapter.fetch_my_trades(_since(start), symbols)
    # then: every trade since, oldest first, in base units with the venue's fee and ids
    assert result.complete, result.note
    expected = sorted(
        (_expected(t, exchange, market_type) for t in btc + eth),
        key=lambda t: (t.executed_at, t.symbol, t.trade_id),
    )
    assert result.items == expected
    assert all(t.executed_at.tzinfo is not None for t in result.items)
    assert result.covered_from == _since(start)
    # and no query spans more than the venue's window
    window = adapter.trade_history_policy().window
    for query in _requests(fake_exchange, TRADE_PATHS[(exchange, market_type)]):
        if window is not None and "startTime" in query and "endTime" in query:
            assert int(query["endTime"]) - int(query["startTime"]) <= window.total_seconds() * 1000


@pytest.mark.parametrize(("exchange", "market_type"), [v for v in VENUES if v[0] != "binance"])
def test_without_symbols_every_trade_of_the_account(
    fake_exchange, make_fake_account, exchange, market_type
):
    # given
    start = _now_ms() - 10 * HOUR
    venue = getattr(fake_exchange, exchange)
    trades = _trades(market_type, "BTCUSDT", start, 3, HOUR) + _trades(
        market_type, "ETHUSDT", start, 3, HOUR, first_id=10
    )
    venue.trades += trades
    # when
    result = adapter_for(make_fake_account(exchange, market_type)).fetch_my_trades(
        _since(start - HOUR)
    )
    # then
    assert result.complete
    assert {t.trade_id for t in result.items} == {t.trade_id for t in trades}


@pytest.mark.parametrize("market_type", ["spot", "swap"])
def test_binance_needs_symbols_and_says_so(fake_exchange, make_fake_account, market_type):
    # given: Binance lists trades per symbol only
    adapter = adapter_for(make_fake_account("binance", market_type))
    # when
    result = adapter.fetch_my_trades(_since(_now_ms() - HOUR))
    # then: not "no trades", an incomplete answer that says why
    assert not result.complete and "per symbol" in result.note
    assert _requests(fake_exchange, TRADE_PATHS[("binance", market_type)]) == []
    assert adapter.fetch_my_trades(_since(_now_ms() - HOUR), []).complete


def test_binance_spot_pages_by_from_id_within_the_window(fake_exchange, make_fake_account):
    # given: 2,500 trades in one hour (pages of 1,000), then one the next day
    start = _now_ms() - 30 * HOUR
    fake_exchange.binance.trades += _trades("spot", "BTCUSDT", start, 2500, 1000)
    later = _trades("spot", "BTCUSDT", start + 26 * HOUR, 1, HOUR, first_id=9000)
    fake_exchange.binance.trades += later
    adapter = adapter_for(make_fake_account("binance", "spot"))
    # when
    result = adapter.fetch_my_trades(_since(start), ["BTC/USDT"])
    # then: all 2,501, each once
    assert result.complete
    assert len(result.items) == 2501 == len({t.trade_id for t in result.items})
    queries = _requests(fake_exchange, "/api/v3/myTrades")
    first_window = queries[:3]
    assert "startTime" in first_window[0] and "fromId" not in first_window[0]
    assert [q.get("fromId") for q in first_window[1:]] == ["1001", "2001"]
    assert all("startTime" not in q for q in first_window[1:])


@pytest.mark.parametrize(
    ("exchange", "market_type", "count", "pages"),
    [("bybit", "swap", 250, 3), ("okx", "swap", 230, 3), ("binance", "swap", 2100, 3)],
)
def test_every_page_is_read(fake_exchange, make_fake_account, exchange, market_type, count, pages):
    # given
    start = _now_ms() - 5 * HOUR
    getattr(fake_exchange, exchange).trades += _trades(market_type, "BTCUSDT", start, count, 1000)
    adapter = adapter_for(make_fake_account(exchange, market_type))
    # when
    result = adapter.fetch_my_trades(_since(start), ["BTC/USDT:USDT"])
    # then
    assert result.complete
    assert len({t.trade_id for t in result.items}) == count == len(result.items)
    assert len(_requests(fake_exchange, TRADE_PATHS[(exchange, market_type)])) == pages


@pytest.mark.parametrize(
    ("exchange", "market_type", "start", "end", "code"),
    [
        ("binance", "spot", 0, 25 * HOUR, "-1127"),
        ("binance", "swap", 0, 8 * 24 * HOUR, "-1127"),
        ("bybit", "swap", 0, 8 * 24 * HOUR, "10001"),
    ],
)
def test_the_fake_refuses_a_window_wider_than_the_venue_allows(
    fake_exchange, make_fake_account, exchange, market_type, start, end, code
):
    # given: a query the adapter never sends, sent through the same ccxt client
    adapter = adapter_for(make_fake_account(exchange, market_type))
    adapter.load_instruments()
    base = _now_ms() - 10 * 24 * HOUR
    symbol = "BTC/USDT" if market_type == "spot" else "BTC/USDT:USDT"
    params = {"startTime": base + start, "endTime": base + end}
    # when / then: the venue's error, mapped to a (non-transient) ExchangeError
    with pytest.raises(ExchangeError) as caught:
        if exchange == "bybit":
            params.update(category="linear")
            adapter.call("privateGetV5ExecutionList", params)
        else:
            adapter.call("fetch_my_trades", symbol, None, None, params)
    assert code in str(caught.value)
    assert not isinstance(caught.value, TransientExchangeError)


def test_binance_refuses_from_id_with_a_time_range(fake_exchange, make_fake_account):
    adapter = adapter_for(make_fake_account("binance", "spot"))
    adapter.load_instruments()
    params = {"fromId": 1, "startTime": _now_ms() - HOUR}
    with pytest.raises(ExchangeError, match="-1128"):
        adapter.call("fetch_my_trades", "BTC/USDT", None, None, params)


@pytest.mark.parametrize(
    ("exchange", "market_type", "count"),
    [("binance", "swap", 2100), ("bybit", "swap", 250), ("okx", "swap", 230)],
)
@pytest.mark.parametrize(
    ("fault", "error"), [("429", RateLimited), ("truncated", BadExchangeResponse)]
)
def test_a_fault_mid_pagination_is_an_error_never_fewer_trades(
    fake_exchange, make_fake_account, exchange, market_type, count, fault, error
):
    # given: several pages of trades; the second page fails
    start = _now_ms() - 5 * HOUR
    getattr(fake_exchange, exchange).trades += _trades(market_type, "BTCUSDT", start, count, 1000)
    fake_exchange.fail(TRADE_PATHS[(exchange, market_type)], fault, after=1, retry_after="9")
    adapter = adapter_for(make_fake_account(exchange, market_type))
    # when / then
    with pytest.raises(error) as caught:
        adapter.fetch_my_trades(_since(start), ["BTC/USDT:USDT"])
    assert isinstance(caught.value, TransientExchangeError)
    if fault == "429":
        assert caught.value.retry_after == 9.0


@pytest.mark.parametrize(("exchange", "count"), [("binance", 2100), ("bybit", 250), ("okx", 230)])
def test_page_cap_returns_an_incomplete_result(fake_exchange, make_fake_account, exchange, count):
    # given: more pages than the adapter may read
    start = _now_ms() - 5 * HOUR
    getattr(fake_exchange, exchange).trades += _trades("swap", "BTCUSDT", start, count, 1000)
    adapter = CcxtExchange(make_fake_account(exchange, "swap"), max_pages=2)
    # when
    result = adapter.fetch_my_trades(_since(start), ["BTC/USDT:USDT"])
    # then: what was read, flagged as cut off
    assert not result.complete
    assert "2 pages" in result.note
    assert 0 < len(result.items) < count


def test_bybit_endless_cursor_is_incomplete(fake_exchange, make_fake_account):
    start = _now_ms() - HOUR
    fake_exchange.bybit.trades += _trades("swap", "BTCUSDT", start, 3, 1000)
    fake_exchange.fail("/v5/execution/list", "endless_cursor")
    result = CcxtExchange(make_fake_account("bybit", "swap"), max_pages=3).fetch_my_trades(
        _since(start)
    )
    assert not result.complete


def test_bybit_funding_rows_are_not_trades_but_liquidations_are(fake_exchange, make_fake_account):
    # given: a trade, a funding fee and a liquidation fill
    start = _now_ms() - HOUR
    trade, funding, bust = _trades("swap", "BTCUSDT", start, 3, 1000)
    funding.exec_type = "Funding"
    bust.exec_type = "BustTrade"
    fake_exchange.bybit.trades += [trade, funding, bust]
    # when
    result = adapter_for(make_fake_account("bybit", "swap")).fetch_my_trades(_since(start))
    # then
    assert [t.trade_id for t in result.items] == [trade.trade_id, bust.trade_id]
    assert all("execType" not in q for q in _requests(fake_exchange, "/v5/execution/list"))


def test_okx_swap_fill_sizes_are_contracts_on_the_wire(fake_exchange, make_fake_account):
    # given: 0.012 BTC on a 0.001 BTC contract is 12 contracts on the wire
    start = _now_ms() - HOUR
    fake_exchange.okx.trades += _trades("swap", "BTCUSDT", start, 1, 1000)
    adapter = adapter_for(make_fake_account("okx", "swap"))
    # when
    trade = adapter.fetch_my_trades(_since(start)).items[0]
    # then
    assert trade.raw["fillSz"] == "12"
    assert trade.quantity == D("0.012")


@pytest.mark.parametrize(("exchange", "market_type"), [("bybit", "swap"), ("okx", "swap")])
def test_since_beyond_the_venues_history_is_clamped_and_said(
    fake_exchange, make_fake_account, exchange, market_type
):
    # given
    adapter = adapter_for(make_fake_account(exchange, market_type))
    policy = adapter.trade_history_policy()
    since = datetime.now(tz=UTC) - policy.max_lookback - timedelta(days=30)
    # when
    result = adapter.fetch_my_trades(since, [_unified("BTCUSDT", market_type)])
    # then: the result covers only what the venue keeps, and says so
    assert result.complete
    assert result.covered_from > since + timedelta(days=29)
    assert "keeps" in result.note


def test_unknown_symbol_is_an_error_not_no_trades(fake_exchange, make_fake_account):
    adapter = adapter_for(make_fake_account("bybit", "swap"))
    with pytest.raises(ExchangeError, match="DOGE/USDT:USDT"):
        adapter.fetch_my_trades(_since(_now_ms() - HOUR), ["DOGE/USDT:USDT"])


def test_naive_since_is_refused(fake_exchange, make_fake_account):
    adapter = adapter_for(make_fake_account("okx", "swap"))
    with pytest.raises(ValueError, match="timezone-aware"):
        adapter.fetch_my_trades(datetime(2024, 1, 1), None)
