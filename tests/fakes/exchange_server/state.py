"""The fake exchange's neutral state, rendered into each venue's wire shape by its module."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

NOW_MS = 1_700_000_000_000

# --- Neutral state -----------------------------------------------------------------------


@dataclass
class FakeMarket:
    """One instrument. ``kind`` is spot, linear (USDT/USDC-settled) or inverse."""

    base: str
    quote: str
    kind: str = "linear"
    amount_step: str = "0.001"
    price_step: str = "0.1"
    contract_size: str = "1"
    min_qty: str = "0.001"

    @property
    def settle(self) -> str:
        if self.kind == "spot":
            return ""
        return self.base if self.kind == "inverse" else self.quote

    @property
    def unified(self) -> str:
        if self.kind == "spot":
            return f"{self.base}/{self.quote}"
        return f"{self.base}/{self.quote}:{self.settle}"


@dataclass
class FakeOrder:
    order_id: str
    symbol: str  # exchange id, e.g. BTCUSDT
    side: str  # buy | sell
    amount: str
    price: str | None = "50000"
    filled: str = "0"
    status: str = "open"  # open | closed | canceled | expired | rejected
    type: str = "limit"  # market | limit | stop | stop_limit | take_profit | ... (local)
    client_order_id: str = ""
    average: str | None = None
    kind: str = "linear"
    timestamp: int = NOW_MS


@dataclass
class FakePosition:
    symbol: str  # exchange id
    qty: str  # signed, in base units
    entry_price: str = "50000"
    kind: str = "linear"


@dataclass
class FakeBalance:
    currency: str
    free: str
    used: str = "0"

    @property
    def total(self) -> str:
        return str(Decimal(self.free) + Decimal(self.used))


@dataclass
class FakeTrade:
    """One execution. ``qty`` in base units; ``fee`` paid (a rebate is negative)."""

    trade_id: str
    order_id: str
    symbol: str  # exchange id, e.g. BTCUSDT
    side: str  # buy | sell
    qty: str
    price: str
    time_ms: int
    fee: str = "0"
    fee_currency: str = "USDT"
    client_order_id: str = ""
    maker: bool = False
    kind: str = "linear"
    exec_type: str = "Trade"  # Bybit: Trade | Funding | BustTrade | ...
    bill_id: str = ""  # OKX: account-wide row id (default: derived from time and trade id)

    @property
    def bill(self) -> int:
        return (
            int(self.bill_id) if self.bill_id else self.time_ms * 1000 + int(self.trade_id) % 1000
        )


@dataclass
class FakeTicker:
    symbol: str  # exchange id
    last: str
    mark: str | None = None  # derivatives only
    kind: str = "linear"
    time_ms: int = NOW_MS


@dataclass
class VenueState:
    markets: list[FakeMarket] = field(default_factory=list)
    orders: list[FakeOrder] = field(default_factory=list)
    positions: list[FakePosition] = field(default_factory=list)
    balances: list[FakeBalance] = field(default_factory=list)  # spot / unified wallet
    futures_balances: list[FakeBalance] = field(default_factory=list)  # binance USDⓈ-M
    trades: list[FakeTrade] = field(default_factory=list)
    tickers: list[FakeTicker] = field(default_factory=list)

    def market_by_id(self, symbol_id: str, kind: str) -> FakeMarket | None:
        for market in self.markets:
            if market.kind != kind:
                continue
            if market.base + market.quote == symbol_id or _inverse_id(market) == symbol_id:
                return market
        return None


def _inverse_id(market: FakeMarket) -> str:
    return f"{market.base}{market.quote}_PERP" if market.kind == "inverse" else ""


def default_markets() -> list[FakeMarket]:
    return [
        FakeMarket("BTC", "USDT", "spot", amount_step="0.00001", price_step="0.01"),
        FakeMarket("ETH", "USDT", "spot", amount_step="0.0001", price_step="0.01"),
        FakeMarket("BTC", "USDT", "linear", amount_step="0.001", price_step="0.1"),
        FakeMarket("ETH", "USDT", "linear", amount_step="0.01", price_step="0.01"),
    ]


def okx_markets() -> list[FakeMarket]:
    """OKX counts swaps in contracts: one BTC-USDT-SWAP contract is 0.001 BTC, ETH 0.01 ETH
    (steps in base units, as in every venue's neutral state)."""
    return [
        FakeMarket("BTC", "USDT", "spot", amount_step="0.00001", price_step="0.01"),
        FakeMarket("ETH", "USDT", "spot", amount_step="0.0001", price_step="0.01"),
        FakeMarket("BTC", "USDT", "linear", amount_step="0.001", price_step="0.1",
                   contract_size="0.001"),
        FakeMarket("ETH", "USDT", "linear", amount_step="0.01", price_step="0.01",
                   contract_size="0.01"),
    ]  # fmt: skip
