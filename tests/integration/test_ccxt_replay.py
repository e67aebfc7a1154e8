"""Replay ccxt's recorded exchange responses (../shared/fixtures/ccxt) through the fake server.

Each recorded ``httpResponse`` is served for the path our adapter calls, and the adapter's
output must match the recorded ``parsedResponse`` (ccxt's own parse of the same body).
"""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from tests.fakes.exchange_server import FakeMarket
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import CANCELED, CLOSED, EXPIRED, OPEN, REJECTED

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ccxt"
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
}
# Recorded entries we do not replay, and why.
NOT_REPLAYED = {
    "open portfolio margin orders": "portfolio margin (papi) accounts are not supported",
    "Fetch linear positions using account endnpoint": "the adapter reads positionRisk",
    "inverse positions": "Binance COIN-M (dapi) accounts need defaultSubType=inverse",
    "fetch papi balance": "portfolio margin (papi) accounts are not supported",
    "fetch linear papi balance": "portfolio margin (papi) accounts are not supported",
}
REPLAYED_METHODS = {
    "fetchBalance",
    "fetchOpenOrders",
    "fetchPositions",
    "fetchOrder",
    "fetchOpenOrder",
    "fetchClosedOrder",
}


def _entries():
    if not FIXTURES.is_dir():
        return []
    found = []
    for exchange in ("binance", "bybit"):
        data = json.loads((FIXTURES / f"{exchange}.json").read_text())
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


def _check_order(order, parsed: dict) -> None:
    assert order.exchange_order_id == str(parsed["id"])
    assert order.client_order_id == (parsed.get("clientOrderId") or "")
    assert order.symbol == parsed["symbol"]
    assert order.side == parsed["side"]
    assert order.amount == _dec(parsed["amount"])
    assert order.filled == _dec(parsed["filled"])
    assert order.remaining == _dec(parsed["remaining"])
    assert order.price == _dec(parsed["price"])
    assert order.average == _dec(parsed["average"])
    assert order.status == _expected_status(parsed)
    if parsed["type"] in ("market", "limit") and not parsed.get("triggerPrice"):
        assert order.type == parsed["type"]


@pytest.mark.parametrize(("exchange", "method", "entry"), _entries())
def test_replay(fake_exchange, make_fake_account, exchange, method, entry):
    key = (exchange, method, entry["description"])
    if entry["description"] in NOT_REPLAYED:
        pytest.skip(NOT_REPLAYED[entry["description"]])
    if entry.get("disabled"):
        pytest.skip("ccxt's own test runner skips this entry (disabled)")
    market_type, path = REPLAYS[key]
    # given: the markets the recorded symbols need, and the recorded body on the path
    venue = getattr(fake_exchange, exchange)
    venue.markets += [FakeMarket("LTC", "USDT", "spot"), FakeMarket("LTC", "USDT", "linear")]
    fake_exchange.respond(path, entry["httpResponse"])
    adapter = adapter_for(make_fake_account(exchange, market_type))
    parsed = entry["parsedResponse"]
    # when / then
    if method == "fetchBalance":
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
            _check_order(order, want)
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
        _check_order(order, parsed)
