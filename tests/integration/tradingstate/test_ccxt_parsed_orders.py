"""A client remembers what ccxt made of each raw order (``RememberedOrders``): an order
unchanged since the last pass is not parsed again, a changed one is, and what the adapter
returns is what a fresh parse gives (real ccxt, fake venue over loopback HTTP)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import ccxt
import pytest

from tests.fakes.exchange_server import FakeOrder
from tests.fakes.scenarios import comparable, seed_derivatives
from tradingstate.exchanges import adapter_for, pool
from tradingstate.exchanges.ccxt_support import RememberedOrders

VENUES = ["binance", "bybit", "okx"]


def _counting(monkeypatch, exchange) -> list[str]:
    """Count ccxt's own parse_order runs (clients built after this count)."""
    cls = getattr(ccxt, exchange)
    original = cls.parse_order
    parsed: list[str] = []

    def counting(self, order, market=None):
        parsed.append(str(order.get("orderId") or order.get("ordId") or order.get("id")))
        return original(self, order, market)

    monkeypatch.setattr(cls, "parse_order", counting)
    pool.clients_reset()
    return parsed


def _orders(adapter):
    result = adapter.fetch_open_orders()
    assert result.complete
    return sorted((comparable(o) for o in result.items), key=lambda o: o.exchange_order_id)


@pytest.mark.parametrize("exchange", VENUES)
def test_unchanged_orders_are_not_parsed_again(
    fake_exchange, make_fake_account, monkeypatch, exchange
):
    # given: an account with open orders, read once
    venue = getattr(fake_exchange, exchange)
    seed_derivatives(venue)
    parsed = _counting(monkeypatch, exchange)
    account = make_fake_account(exchange, "swap")
    adapter = adapter_for(account)
    first = _orders(adapter)
    assert first and parsed
    # when: the next pass reads the same orders (its own adapter, the pooled client)
    adapter.close()
    parsed.clear()
    again = adapter_for(account)
    second = _orders(again)
    # then: the same orders, none parsed by ccxt again
    assert second == first
    assert parsed == []
    again.close()


@pytest.mark.parametrize("exchange", VENUES)
def test_a_changed_order_is_parsed_again_and_read_as_it_is_now(
    fake_exchange, make_fake_account, monkeypatch, exchange
):
    # given: an open order, read once
    venue = getattr(fake_exchange, exchange)
    venue.orders.append(FakeOrder("501", "BTCUSDT", "buy", "2", "100", client_order_id="c1"))
    parsed = _counting(monkeypatch, exchange)
    account = make_fake_account(exchange, "swap")
    adapter = adapter_for(account)
    (before,) = _orders(adapter)
    assert before.filled == 0
    # when: it part-fills at the venue
    venue.orders[0] = replace(venue.orders[0], filled="0.5")
    parsed.clear()
    (after,) = _orders(adapter)
    # then: parsed again, with the fill
    assert parsed == ["501"]
    assert (after.filled, after.amount) == (Decimal("0.5"), Decimal(2))
    assert after.remaining in (None, Decimal("1.5"))
    adapter.close()


class _Client:
    """A stand-in with ccxt's parse_order signature (the memo's own rules)."""

    def __init__(self):
        self.markets = {"BTC/USDT": {"id": "BTCUSDT"}}
        self.calls = 0

    def parse_order(self, order, market=None):
        self.calls += 1
        return {"id": order["id"], "info": order, "fee": {"cost": "1"}}


def test_the_memo_returns_copies_forgets_on_a_markets_reload_and_is_bounded(monkeypatch):
    client = _Client()
    memo = RememberedOrders(client)
    market = client.markets["BTC/USDT"]
    # a copy each time: a caller changing its dict changes no later answer
    a = memo({"id": "1", "p": "2"}, market)
    a["id"] = "changed"
    assert memo({"id": "1", "p": "2"}, market)["id"] == "1"
    assert client.calls == 1
    # another market is another key
    memo({"id": "1", "p": "2"}, None)
    assert client.calls == 2
    # a raw order with a nested value is kept by its JSON text; one that has none, never
    memo({"id": "2", "legs": [{"a": "1"}]}, market)
    memo({"id": "2", "legs": [{"a": "1"}]}, market)
    assert client.calls == 3
    memo({"id": "2", "legs": [{"a": "2"}]}, market)
    assert client.calls == 4
    memo({"id": "3", "legs": [object()]}, market)
    memo({"id": "3", "legs": [object()]}, market)
    assert client.calls == 6
    # reloaded markets (a new object) forget everything
    client.markets = dict(client.markets)
    memo({"id": "1", "p": "2"}, market)
    assert client.calls == 7
    # at most MAX orders are kept, the oldest dropped first
    monkeypatch.setattr(RememberedOrders, "MAX", 3)
    for i in range(5):
        memo({"id": f"n{i}"}, market)
    assert len(memo._memo) == 3
    calls = client.calls
    memo({"id": "n4"}, market)
    assert client.calls == calls
    memo({"id": "n0"}, market)
    assert client.calls == calls + 1
