"""Venue dialects without a network: the registry, each venue's error bodies mapped to the
adapter's error classes, trade-history policies, order-query retention and windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import ccxt
import pytest

from tradingstate.exchanges.base import (
    AuthenticationFailed,
    BadExchangeResponse,
    ExchangeError,
    ExchangeUnavailable,
    OrderNotFound,
    OrderRetention,
    RateLimited,
    TransientExchangeError,
)
from tradingstate.exchanges.ccxt import CcxtExchange
from tradingstate.exchanges.venues import DIALECTS, VenueDialect, dialect_for
from tradingstate.exchanges.venues.base import windows
from tradingstate.exchanges.venues.binance import BinanceDialect
from tradingstate.exchanges.venues.bybit import BybitDialect
from tradingstate.exchanges.venues.okx import OkxDialect
from tradingstate.models import ExchangeAccount

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _adapter(exchange: str, market_type: str = "swap") -> CcxtExchange:
    return CcxtExchange(ExchangeAccount(name="unit", exchange=exchange, market_type=market_type))


# --- registry ----------
@pytest.mark.parametrize(
    ("exchange", "dialect"),
    [
        ("binance", BinanceDialect),
        ("binanceusdm", BinanceDialect),
        ("binancecoinm", BinanceDialect),
        ("binanceus", BinanceDialect),
        ("bybit", BybitDialect),
        ("okx", OkxDialect),
        ("kraken", VenueDialect),
    ],
)
def test_registry_maps_a_ccxt_id_to_its_dialect(exchange, dialect):
    assert type(dialect_for(exchange)) is dialect
    assert type(_adapter(exchange).dialect) is dialect


def test_every_registered_id_is_a_ccxt_exchange():
    assert set(DIALECTS) <= set(ccxt.exchanges)


# --- error mapping per venue ----------
# (venue, http status, the venue's body, url) -> adapter error; Retry-After rides along
ERRORS = [
    ("binance", 429, {"code": -1003, "msg": "Too many requests."}, "/api/v3/openOrders",
     RateLimited),
    ("binance", 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."},
     "/fapi/v1/openOrders", AuthenticationFailed),
    ("binance", 400, {"code": -2013, "msg": "Order does not exist."}, "/fapi/v1/order",
     OrderNotFound),
    ("binance", 400, {"code": -1127, "msg": "More than 24 hours between startTime and endTime."},
     "/api/v3/myTrades", ExchangeError),
    ("bybit", 200, {"retCode": 10006, "retMsg": "Too many visits!"}, "/v5/order/realtime",
     RateLimited),
    ("bybit", 200, {"retCode": 10003, "retMsg": "API key is invalid."}, "/v5/order/realtime",
     AuthenticationFailed),
    ("bybit", 200, {"retCode": 10004, "retMsg": "Error sign."}, "/v5/position/list",
     AuthenticationFailed),
    ("bybit", 200, {"retCode": 10002, "retMsg": "invalid request, please check your timestamp"},
     "/v5/order/realtime", TransientExchangeError),
    ("bybit", 200, {"retCode": 110001, "retMsg": "Order does not exist."}, "/v5/order/history",
     OrderNotFound),
    ("okx", 429, {"code": "50011", "msg": "Too Many Requests", "data": []},
     "/api/v5/trade/orders-pending", RateLimited),
    ("okx", 503, {"code": "50001", "msg": "Service temporarily unavailable", "data": []},
     "/api/v5/account/balance", ExchangeUnavailable),
    ("okx", 200, {"code": "50013", "msg": "System is busy, please try again later", "data": []},
     "/api/v5/account/balance", ExchangeUnavailable),
    ("okx", 200, {"code": "50004", "msg": "Endpoint request timeout", "data": []},
     "/api/v5/account/balance", TransientExchangeError),
    ("okx", 401, {"code": "50102", "msg": "Timestamp request expired", "data": []},
     "/api/v5/account/balance", TransientExchangeError),
    ("okx", 401, {"code": "50111", "msg": "Invalid OK-ACCESS-KEY", "data": []},
     "/api/v5/account/balance", AuthenticationFailed),
    ("okx", 401, {"code": "50105", "msg": "Invalid OK-ACCESS-PASSPHRASE", "data": []},
     "/api/v5/account/balance", AuthenticationFailed),
    ("okx", 200, {"code": "51603", "msg": "Order does not exist", "data": []},
     "/api/v5/trade/order", OrderNotFound),
    ("okx", 200, {"code": "1", "msg": "Operation failed.", "data": [{"sCode": "51400",
     "sMsg": "Cancellation failed as the order does not exist."}]},
     "/api/v5/trade/cancel-order", OrderNotFound),
]  # fmt: skip


@pytest.mark.parametrize(("venue", "status", "body", "path", "error"), ERRORS)
def test_the_venues_error_body_maps_to_the_adapters_error(venue, status, body, path, error):
    # given: the venue's own error body, through ccxt's own error handling for that venue
    adapter = _adapter(venue)
    exchange = adapter.exchange
    exchange.last_response_headers = {"Retry-After": "7"}
    exchange.last_json_response = body
    text = json.dumps(body)
    # when
    with pytest.raises(ccxt.BaseError) as raised:
        exchange.handle_errors(status, "", "https://venue" + path, "GET", {}, text, body, {}, "")
        exchange.handle_http_status_code(status, "", "https://venue" + path, "GET", text)
    mapped = adapter._map_error(raised.value, None)
    # then
    assert type(mapped) is error
    if isinstance(mapped, RateLimited | ExchangeUnavailable):
        assert mapped.retry_after == 7.0
    if error is AuthenticationFailed:
        assert not isinstance(mapped, TransientExchangeError)  # stops the account


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx"])
@pytest.mark.parametrize(
    ("raised", "error"),
    [
        (ccxt.RequestTimeout("timed out"), TransientExchangeError),
        (ccxt.NetworkError("connection reset"), TransientExchangeError),
        (ccxt.OnMaintenance("maintenance"), ExchangeUnavailable),
        (ccxt.DDoSProtection("418 banned"), RateLimited),
        (ccxt.AccountSuspended("suspended"), AuthenticationFailed),
    ],
)
def test_network_class_errors_are_transient_with_retry_after(venue, raised, error):
    adapter = _adapter(venue)
    adapter.exchange.last_response_headers = {"Retry-After": "11"}
    mapped = adapter._map_error(raised, None)
    assert type(mapped) is error
    if isinstance(mapped, TransientExchangeError):
        assert mapped.retry_after == 11.0


@pytest.mark.parametrize(
    ("venue", "raw", "problem"),
    [
        ("bybit", {"code": 0}, "retCode"),
        ("okx", {"retCode": 0}, "OKX's code"),
        ("binance", {"anything": 1}, None),
    ],
)
def test_a_body_in_another_venues_shape_is_no_answer(venue, raw, problem):
    adapter = _adapter(venue)
    adapter.exchange.last_json_response = raw
    found = adapter._garbage_problem()
    assert (found is None) if problem is None else (problem in found)
    if problem is not None:
        mapped = adapter._map_error(ccxt.ExchangeError("boom"), None)
        assert isinstance(mapped, BadExchangeResponse)


# --- construction ----------
@pytest.mark.parametrize(
    ("exchange", "market_type", "types"),
    [
        ("binance", "spot", ["spot"]),
        ("binance", "swap", ["linear"]),
        ("bybit", "spot", ["spot"]),
        ("bybit", "swap", ["linear", "inverse"]),
        ("okx", "spot", ["spot"]),
        ("okx", "swap", ["swap"]),
    ],
)
def test_only_the_accounts_kind_of_markets_is_loaded(exchange, market_type, types):
    options = _adapter(exchange, market_type).exchange.options
    assert options["fetchMarkets"]["types"] == types


# --- trade history and retention ----------
@pytest.mark.parametrize(
    ("exchange", "market_type", "window", "max_lookback", "symbol_required", "page", "scope"),
    [
        ("binance", "spot", timedelta(hours=24), None, True, 1000, "symbol"),
        ("binance", "swap", timedelta(days=7), timedelta(days=180), True, 1000, "symbol"),
        ("bybit", "swap", timedelta(days=7), timedelta(days=730), False, 100, "account"),
        ("okx", "spot", None, timedelta(days=90), False, 100, "symbol"),
        ("okx", "swap", None, timedelta(days=90), False, 100, "symbol"),
    ],
)
def test_trade_history_policy(
    exchange, market_type, window, max_lookback, symbol_required, page, scope
):
    policy = _adapter(exchange, market_type).trade_history_policy()
    assert (policy.window, policy.max_lookback, policy.symbol_required) == (
        window,
        max_lookback,
        symbol_required,
    )
    assert (policy.page_limit, policy.trade_id_scope) == (page, scope)
    assert policy.default_lookback == (max_lookback or timedelta(days=7))
    assert policy.source


@pytest.mark.parametrize(
    ("exchange", "market_type", "age", "filled", "can_tell"),
    [
        # Binance USD-M: 90 days; cancelled/expired with no fill: 3 days
        ("binance", "swap", 2 * DAY, False, True),
        ("binance", "swap", 4 * DAY, False, False),
        ("binance", "swap", 80 * DAY, True, True),
        ("binance", "swap", 91 * DAY, True, False),
        # Binance spot: no documented limit
        ("binance", "spot", 5 * 365 * DAY, False, True),
        # Bybit: 7 days (the history query's default range); no fill: 24 hours
        ("bybit", "swap", timedelta(hours=23), False, True),
        ("bybit", "swap", timedelta(hours=25), False, False),
        ("bybit", "swap", 6 * DAY, True, True),
        ("bybit", "swap", 8 * DAY, True, False),
        # OKX: 3 months; cancelled with no fill: 2 hours
        ("okx", "swap", timedelta(hours=1), False, True),
        ("okx", "swap", timedelta(hours=3), False, False),
        ("okx", "spot", 80 * DAY, True, True),
        ("okx", "spot", 91 * DAY, True, False),
    ],
)
def test_order_retention_says_whether_the_venue_can_still_tell(
    exchange, market_type, age, filled, can_tell
):
    retention = _adapter(exchange, market_type).order_retention()
    assert retention.venue_can_tell(NOW - age, now=NOW, filled=filled) is can_tell
    assert retention.source


def test_generic_venue_has_no_retention_limit():
    retention = _adapter("kraken", "spot").order_retention()
    assert retention == OrderRetention(max_age=None, source=retention.source)
    assert retention.venue_can_tell(NOW - 3650 * DAY, now=NOW, filled=False)


@pytest.mark.parametrize(
    ("since", "until", "width", "expected"),
    [
        (0, 10, None, [(0, 10)]),
        (0, 9_999, timedelta(seconds=5), [(0, 4_999), (5_000, 9_999)]),
        (0, 10_000, timedelta(seconds=5), [(0, 4_999), (5_000, 9_999), (10_000, 10_000)]),
        (10, 5, timedelta(seconds=5), []),
    ],
)
def test_windows_are_consecutive_and_never_wider_than_the_limit(since, until, width, expected):
    cut = windows(since, until, width)
    assert cut == expected
    if width is not None:
        assert all(end - start < width.total_seconds() * 1000 for start, end in cut)
