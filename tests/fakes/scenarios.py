"""Seeded venue states and the adapter results they must produce."""

from __future__ import annotations

from decimal import Decimal as D

from tests.fakes.exchange_server import FakeBalance, FakeOrder, FakePosition, VenueState
from tradingstate.exchanges.base import ExchangeBalance, ExchangeOrder, ExchangePosition


def seed_derivatives(venue: VenueState) -> None:
    """Two open linear orders (one part-filled), a finished one, a long and a short."""
    venue.orders += [
        FakeOrder("1001", "BTCUSDT", "buy", "0.010", "50000.5", client_order_id="abc123"),
        FakeOrder("1002", "ETHUSDT", "sell", "1.50", "3000.25", filled="0.50",
                  average="3000.25", client_order_id="def456", type="stop_limit"),
        FakeOrder("1003", "BTCUSDT", "buy", "0.500", "40000", filled="0.200",
                  average="40000", status="canceled", client_order_id="ghi789"),
        FakeOrder("1004", "BTCUSDT", "sell", "0.100", "41000", filled="0.100",
                  average="41000", status="closed", client_order_id="jkl000"),
        FakeOrder("1005", "ETHUSDT", "buy", "2.00", "2500", status="expired",
                  client_order_id="mno111"),
        FakeOrder("2001", "BTCUSDT", "buy", "0.01", "40000", kind="spot", client_order_id="sp1"),
    ]  # fmt: skip
    venue.positions += [
        FakePosition("BTCUSDT", "0.080", "50100.5"),
        FakePosition("ETHUSDT", "-1.25", "3100"),
        FakePosition("BTCUSDT", "0.5", "40000", kind="spot"),  # never a position
    ]
    venue.balances += [FakeBalance("USDT", "1000.5", "200.25"), FakeBalance("BTC", "0.1")]
    venue.futures_balances += [FakeBalance("USDT", "900.75", "100.25"), FakeBalance("BNB", "0")]


def seed_spot(venue: VenueState) -> None:
    venue.orders += [
        FakeOrder("3001", "BTCUSDT", "buy", "0.01000", "40000.01", kind="spot",
                  client_order_id="spot-a"),
        FakeOrder("3002", "ETHUSDT", "sell", "0.5000", "3500", filled="0.1000", kind="spot",
                  average="3500", client_order_id="spot-b", type="take_profit_limit"),
        FakeOrder("1001", "BTCUSDT", "buy", "0.010", "50000", client_order_id="swap-x"),
    ]  # fmt: skip
    venue.balances += [
        FakeBalance("USDT", "1000.5", "200.25"),
        FakeBalance("BTC", "0.1"),
        FakeBalance("ETH", "0", "0"),
    ]


def _order(exchange_order_id, coid, symbol, side, amount, price, filled="0", *, type="limit",
           status="open", average=None, remaining=None) -> ExchangeOrder:  # fmt: skip
    return ExchangeOrder(
        symbol=symbol,
        side=side,
        type=type,
        amount=D(amount),
        filled=D(filled),
        status=status,
        exchange_order_id=exchange_order_id,
        client_order_id=coid,
        price=D(price),
        average=D(average) if average is not None else None,
        remaining=D(remaining) if remaining is not None else D(amount) - D(filled),
    )


def expected_derivative_open_orders() -> list[ExchangeOrder]:
    return [
        _order("1001", "abc123", "BTC/USDT:USDT", "buy", "0.010", "50000.5"),
        _order("1002", "def456", "ETH/USDT:USDT", "sell", "1.50", "3000.25", "0.50",
               type="stop_limit", average="3000.25"),
    ]  # fmt: skip


def expected_spot_open_orders() -> list[ExchangeOrder]:
    return [
        _order("3001", "spot-a", "BTC/USDT", "buy", "0.01", "40000.01"),
        _order("3002", "spot-b", "ETH/USDT", "sell", "0.5", "3500", "0.1",
               type="take_profit_limit", average="3500"),
    ]  # fmt: skip


def expected_positions() -> list[ExchangePosition]:
    return [
        ExchangePosition("BTC/USDT:USDT", D("0.080"), D("50100.5")),
        ExchangePosition("ETH/USDT:USDT", D("-1.25"), D("3100")),
    ]


def balances(*rows: tuple[str, str, str, str]) -> list[ExchangeBalance]:
    return [ExchangeBalance(c, D(free), D(used), D(total)) for c, free, used, total in rows]


def comparable(order: ExchangeOrder) -> ExchangeOrder:
    """The order without its timestamp (the fake stamps one fixed time)."""
    from dataclasses import replace

    return replace(order, timestamp=None)
