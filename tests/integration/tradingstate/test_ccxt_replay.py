"""Replay ccxt's recorded exchange responses (../shared/fixtures/ccxt) through the fake server.

Each recorded ``httpResponse`` is served for the path our adapter calls, and the adapter's
output must match the recorded ``parsedResponse`` (ccxt's own parse of the same body), in
base units (OKX swap contracts x contract size) and with the venue's ids.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.fakes.exchange_server import FakeMarket
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import CANCELED, CLOSED, EXPIRED, OPEN, REJECTED


def _fixtures() -> Path:
    """``shared/fixtures/ccxt`` beside the checkout (``/work/main``, ``/work/wt/<name>``)."""
    if os.environ.get("TS_CCXT_FIXTURES"):
        return Path(os.environ["TS_CCXT_FIXTURES"])
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "shared" / "fixtures" / "ccxt"
        if candidate.is_dir():
            return candidate
    return here.parents[3].parent / "shared" / "fixtures" / "ccxt"


FIXTURES = _fixtures()
pytestmark = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason=f"ccxt response fixtures not found at {FIXTURES}"
)

# (exchange, method, description) -> (market type, the path our adapter calls)
REPLAYS = {
    ("binance", "fetchOrder", "Fetch spot closed order"): ("spot", "/api/v3/order"),
    ("binance", "fetchOpenOrders", "Fetch spot open orders"): ("spot", "/api/v3/openOrders"),
    ("binance", "fetchOpenOrder", "swap open order"): ("swap", "/fapi/v1/order"),
    ("binance", "fetchPositions", "Fetch linear positions without symbols"): (
        "swap",
        "/fapi/v3/positionRisk",
    ),
    ("binance", "fetchPositions", "Fetch linear positions with symbols"): (
        "swap",
        "/fapi/v3/positionRisk",
    ),
    ("binance", "fetchBalance", "Spot balance"): ("spot", "/api/v3/account"),
    ("binance", "fetchBalance", "Linear swap balance"): ("swap", "/fapi/v3/account"),
    ("bybit", "fetchBalance", "balance after availableToWithdraw update"): (
        "swap",
        "/v5/account/wallet-balance",
    ),
    ("bybit", "fetchOpenOrder", "Fetch an open swap order by its ID and symbol"): (
        "swap",
        "/v5/order/realtime",
    ),
    ("bybit", "fetchClosedOrder", "Fetch swap closed order by its ID and symbol"): (
        "swap",
        "/v5/order/history",
    ),
    ("bybit", "fetchPositions", "Fetch linear position"): ("swap", "/v5/position/list"),
    ("okx", "fetchBalance", "spot balance"): ("swap", "/api/v5/account/balance"),
    ("okx", "fetchOpenOrders", "fetch swap limit open order with take profit and stop loss"): (
        "swap",
        "/api/v5/trade/orders-pending",
    ),
    ("okx", "fetchOrder", "fetch spot order"): ("spot", "/api/v5/trade/order"),
    # trades: (market type, path); the symbols come from the entry's input
    ("binance", "fetchMyTrades", "Spot private trade"): ("spot", "/api/v3/myTrades"),
    ("binance", "fetchMyTrades", "Swap private trade"): ("swap", "/fapi/v1/userTrades"),
    ("bybit", "fetchMyTrades", "spot private trade"): ("spot", "/v5/execution/list"),
    ("bybit", "fetchMyTrades", "Swap private trade"): ("swap", "/v5/execution/list"),
    ("bybit", "fetchMyTrades", "spot trades without symbol"): ("spot", "/v5/execution/list"),
    ("bybit", "fetchMyTrades", "swap trades without symbol"): ("swap", "/v5/execution/list"),
    ("okx", "fetchMyTrades", "Fetch spot trade"): ("spot", "/api/v5/trade/fills-history"),
    # one recorded ticker, served as the list the adapter's one mark-price call reads
    ("binance", "fetchTicker", "public spot ticker"): ("spot", "/api/v3/ticker/24hr"),
    ("bybit", "fetchTicker", "swap ticker"): ("swap", "/v5/market/tickers"),
    ("okx", "fetchTicker", "public spot ticker"): ("spot", "/api/v5/market/tickers"),
}
# Recorded entries we do not replay, and why.
NOT_REPLAYED = {
    "open portfolio margin orders": "portfolio margin (papi) accounts are not supported",
    "Fetch linear positions using account endnpoint": "the adapter reads positionRisk",
    "inverse positions": "Binance COIN-M (dapi) accounts need defaultSubType=inverse",
    "fetch papi balance": "portfolio margin (papi) accounts are not supported",
    "fetch linear papi balance": "portfolio margin (papi) accounts are not supported",
    "spot porfolioMargin private trade": "portfolio margin (papi) accounts are not supported",
    "funding balance": "the adapter reads OKX's trading account, not the funding account",
    "fetchOpenOrders trigger with since = 0": "OKX algo (trigger) orders are not read yet",
    "fetch history positions": "closed-position history is not an open position",
    "Fetch tickers for a BTC option symbol": "options accounts are not supported",
}
REPLAYED_METHODS = {
    "fetchBalance",
    "fetchOpenOrders",
    "fetchPositions",
    "fetchOrder",
    "fetchOpenOrder",
    "fetchClosedOrder",
    "fetchMyTrades",
    "fetchTicker",
    "fetchTickers",
}
FILES = ("binance.json", "binance.extra.json", "bybit.json", "bybit.extra.json", "okx.json")
# OKX swap sizes are contracts: the fake's contract sizes (ccxt's contractSize) per market
OKX_CONTRACT_SIZES = {"ADA/USDT:USDT": D(100), "LTC/USDT:USDT": D(1)}


def _entries():
    if not FIXTURES.is_dir():
        return []
    found = []
    for name in FILES:
        exchange = name.split(".")[0]
        data = json.loads((FIXTURES / name).read_text())
        for method, entries in data["methods"].items():
            if method not in REPLAYED_METHODS:
                continue
            for entry in entries:
                found.append(pytest.param(exchange, method, entry, id=f"{exchange}-{method}-"
                                          + entry["description"].replace(" ", "_")))  # fmt: skip
    return found


def _dec(value):
    return None if value is None else D(str(value))


def _expected_status(parsed: dict) -> str:
    status = {"open": OPEN, "closed": CLOSED, "canceled": CANCELED, "expired": EXPIRED,
              "rejected": REJECTED}[parsed["status"]]  # fmt: skip
    if status == CLOSED and D(str(parsed["filled"])) < D(str(parsed["amount"])):
        status = CANCELED
    return status


def _size(exchange: str, symbol: str) -> D:
    return OKX_CONTRACT_SIZES.get(symbol, D(1)) if exchange == "okx" else D(1)


def _check_order(order, parsed: dict, size: D = D(1)) -> None:
    assert order.exchange_order_id == str(parsed["id"])
    assert order.client_order_id == (parsed.get("clientOrderId") or "")
    assert order.symbol == parsed["symbol"]
    assert order.side == parsed["side"]
    assert order.amount == _dec(parsed["amount"]) * size
    assert order.filled == _dec(parsed["filled"]) * size
    assert order.remaining == _dec(parsed["remaining"]) * size
    assert order.price == _dec(parsed["price"])
    assert order.average == _dec(parsed["average"])
    assert order.status == _expected_status(parsed)
    if parsed["type"] in ("market", "limit") and not parsed.get("triggerPrice"):
        assert order.type == parsed["type"]


def _check_trades(exchange: str, result, parsed: list, entry: dict) -> None:
    # a Bybit funding row is a fee, not a trade: the adapter leaves it out
    wanted = [p for p in parsed if (p["info"].get("execType") or "Trade") != "Funding"]
    assert result.complete
    assert len(result.items) == len(wanted)
    client_id_field = {"bybit": "orderLinkId", "okx": "clOrdId"}.get(exchange)
    for trade, want in zip(result.items, wanted, strict=True):
        assert trade.trade_id == str(want["id"])
        assert trade.exchange_order_id == str(want["order"])
        assert trade.symbol == want["symbol"]
        assert trade.side == want["side"]
        assert trade.quantity == _dec(want["amount"]) * _size(exchange, want["symbol"])
        assert trade.price == _dec(want["price"])
        assert trade.fee == _dec(want["fee"]["cost"])
        assert trade.fee_currency == want["fee"]["currency"]
        assert trade.executed_at == datetime.fromtimestamp(want["timestamp"] / 1000, tz=UTC)
        assert trade.liquidity == want["takerOrMaker"]
        expected_client_id = want["info"].get(client_id_field, "") if client_id_field else ""
        assert trade.client_order_id == expected_client_id
    if len(wanted) < len(parsed):
        assert entry["httpResponse"]["result"]["list"]  # the venue did send the funding row


@pytest.mark.parametrize(("exchange", "method", "entry"), _entries())
def test_replay(fake_exchange, make_fake_account, exchange, method, entry, monkeypatch):
    key = (exchange, method, entry["description"])
    if entry["description"] in NOT_REPLAYED:
        pytest.skip(NOT_REPLAYED[entry["description"]])
    if entry.get("disabled"):
        pytest.skip("ccxt's own test runner skips this entry (disabled)")
    market_type, path = REPLAYS[key]
    # given: the markets the recorded symbols need, and the recorded body on the path
    venue = getattr(fake_exchange, exchange)
    venue.markets += [FakeMarket("LTC", "USDT", "spot"), FakeMarket("LTC", "USDT", "linear")]
    if exchange == "okx":
        venue.markets.append(FakeMarket("ADA", "USDT", "linear", contract_size="100"))
    body = entry["httpResponse"]
    if method == "fetchTicker" and exchange == "binance":
        body = [body]  # the one-call ticker list holds the recorded single ticker
    fake_exchange.respond(path, body, times=1)  # a next page, if asked, comes from the state
    adapter = adapter_for(make_fake_account(exchange, market_type))
    parsed = entry["parsedResponse"]
    # when / then
    if method == "fetchMyTrades":
        symbol = entry["input"][0] if entry["input"] else None
        recorded = [p["timestamp"] for p in parsed]
        # the recording's clock: the adapter reads the hour around the recorded trades
        now = datetime.fromtimestamp(max(recorded) / 1000, tz=UTC) + timedelta(hours=1)
        monkeypatch.setattr("tradingstate.exchanges.ccxt._now", lambda: now)
        since = datetime.fromtimestamp(min(recorded) / 1000, tz=UTC) - timedelta(hours=1)
        result = adapter.fetch_my_trades(since, [symbol] if symbol else None)
        _check_trades(exchange, result, parsed, entry)
    elif method == "fetchTicker":
        symbol = entry["input"][0]
        result = adapter.fetch_mark_prices([symbol])
        [price] = result.items
        source = "mark" if parsed.get("markPrice") is not None else "last"
        assert (price.symbol, price.source) == (symbol, source)
        assert price.price == _dec(parsed["markPrice"] if source == "mark" else parsed["last"])
    elif method == "fetchBalance":
        result = adapter.fetch_balances()
        meta = {"info", "timestamp", "datetime", "free", "used", "total", "debt"}
        expected = {c: v for c, v in parsed.items() if c not in meta}
        assert {b.currency for b in result.items} == set(expected)
        for balance in result.items:
            want = expected[balance.currency]
            assert (balance.free, balance.used, balance.total) == (
                _dec(want["free"]),
                _dec(want["used"]),
                _dec(want["total"]),
            )
    elif method == "fetchOpenOrders":
        result = adapter.fetch_open_orders()
        assert result.complete and len(result.items) == len(parsed)
        for order, want in zip(result.items, parsed, strict=True):
            _check_order(order, want, _size(exchange, want["symbol"]))
    elif method == "fetchPositions":
        result = adapter.fetch_positions()
        wanted = [p for p in parsed if p["contracts"]]
        assert len(result.items) == len(wanted)
        for position, want in zip(result.items, wanted, strict=True):
            qty = _dec(want["contracts"]) * _dec(want["contractSize"])
            assert position.symbol == want["symbol"]
            assert position.qty == (-qty if want["side"] == "short" else qty)
            assert position.entry_price == _dec(want["entryPrice"])
    else:  # a single order by id
        order_id, symbol = str(entry["input"][0]), entry["input"][1]
        order = adapter.fetch_order("", order_id, symbol)
        _check_order(order, parsed, _size(exchange, symbol))
