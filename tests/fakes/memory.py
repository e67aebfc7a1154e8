"""An in-process exchange: the adapter interface over plain Python state (no HTTP).

For reconciliation tests and the benchmarks. Faults are scripted per call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from decimal import Decimal

from tradingstate.exchanges import base as ex


@dataclass
class MemoryExchange(ex.ExchangeAdapter):
    orders: dict[str, ex.ExchangeOrder] = field(default_factory=dict)  # by exchange id
    positions: dict[str, ex.ExchangePosition] = field(default_factory=dict)
    balances: dict[str, ex.ExchangeBalance] = field(default_factory=dict)
    faults: dict[str, Exception] = field(default_factory=dict)  # method name -> error
    incomplete: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    gate: threading.Event | None = None  # fetch_open_orders waits on it when set
    max_order_lookups_per_pass: int | None = None

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.faults:
            raise self.faults[name]

    def add_order(self, **kw) -> ex.ExchangeOrder:
        kw.setdefault("side", "buy")
        kw.setdefault("type", "limit")
        kw.setdefault("filled", Decimal(0))
        kw.setdefault("status", ex.OPEN)
        kw.setdefault("price", Decimal("100"))
        order = ex.ExchangeOrder(**kw)
        self.orders[order.exchange_order_id] = order
        return order

    def set_position(self, symbol: str, qty: str, entry: str | None = None) -> None:
        self.positions[symbol] = ex.ExchangePosition(
            symbol=symbol, qty=Decimal(qty), entry_price=Decimal(entry) if entry else None
        )

    def set_balance(self, currency: str, total: str, used: str = "0") -> None:
        t, u = Decimal(total), Decimal(used)
        self.balances[currency] = ex.ExchangeBalance(currency=currency, free=t - u, used=u, total=t)

    def close_order(self, exchange_order_id: str, status: str, filled: str | None = None) -> None:
        order = self.orders[exchange_order_id]
        self.orders[exchange_order_id] = replace(
            order, status=status, filled=Decimal(filled) if filled is not None else order.filled
        )

    def fetch_open_orders(self):
        self._call("fetch_open_orders")
        if self.gate is not None:
            self.gate.wait(10)
        items = [o for o in self.orders.values() if o.status == ex.OPEN]
        return ex.FetchResult(items=items, complete="orders" not in self.incomplete)

    def fetch_positions(self):
        self._call("fetch_positions")
        return ex.FetchResult(
            items=list(self.positions.values()), complete="positions" not in self.incomplete
        )

    def fetch_balances(self):
        self._call("fetch_balances")
        return ex.FetchResult(
            items=list(self.balances.values()), complete="balances" not in self.incomplete
        )

    def fetch_order(self, client_order_id, exchange_order_id, symbol):
        self._call("fetch_order")
        for order in self.orders.values():
            if (client_order_id and order.client_order_id == client_order_id) or (
                exchange_order_id and order.exchange_order_id == exchange_order_id
            ):
                return order
        raise ex.OrderNotFound(f"order {client_order_id or exchange_order_id} not found")

    def cancel_order(self, client_order_id, exchange_order_id, symbol):
        self._call("cancel_order")
        order = self.fetch_order(client_order_id, exchange_order_id, symbol)
        if order.status != ex.OPEN:
            raise ex.OrderNotFound("not open")
        self.close_order(order.exchange_order_id, ex.CANCELED)

    def load_instruments(self):
        self._call("load_instruments")
        return []


@dataclass
class TradingMemoryExchange(MemoryExchange):
    """A MemoryExchange that also lists the account's trades (issue 14): every trade since
    ``since``, complete, unless ``trades`` is in ``faults`` / ``incomplete``."""

    trades: list[ex.ExchangeTrade] = field(default_factory=list)
    retention: ex.OrderRetention | None = None

    def add_trade(self, **kw) -> ex.ExchangeTrade:
        from datetime import UTC, datetime

        kw.setdefault("side", "buy")
        kw.setdefault("fee", Decimal(0))
        kw.setdefault("fee_currency", "")
        kw.setdefault("executed_at", datetime.now(tz=UTC))
        trade = ex.ExchangeTrade(**kw)
        self.trades.append(trade)
        return trade

    def trade_history_policy(self) -> ex.TradeHistoryPolicy:
        from datetime import timedelta

        return ex.TradeHistoryPolicy(
            max_lookback=None,
            default_lookback=timedelta(days=7),
            window=None,
            symbol_required=False,
            page_limit=1000,
        )

    def order_retention(self) -> ex.OrderRetention:
        return self.retention or super().order_retention()

    def fetch_my_trades(self, since, symbols=None):
        self._call("fetch_my_trades")
        items = [t for t in list(self.trades) if t.executed_at >= since]
        if symbols is not None:
            items = [t for t in items if t.symbol in symbols]
        return ex.FetchResult(
            items=items, complete="trades" not in self.incomplete, covered_from=since
        )
