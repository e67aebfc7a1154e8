"""The exchange adapter interface: plain dataclasses with Decimals, and the error classes.

Adapters do I/O only and return these dataclasses, never models. Each bulk fetch says
whether it is complete: a failed, timed-out or truncated fetch is never read as "empty".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Generic, TypeVar

T = TypeVar("T")

# Exchange-side order states, as ccxt unifies them.
OPEN = "open"
CLOSED = "closed"  # fully filled
CANCELED = "canceled"
EXPIRED = "expired"
REJECTED = "rejected"
EXCHANGE_STATUSES = (OPEN, CLOSED, CANCELED, EXPIRED, REJECTED)


# --- Errors ------------------------------------------------------------------------------
class ExchangeError(Exception):
    """Base class of every adapter error."""


class TransientExchangeError(ExchangeError):
    """Network, timeout, rate limit (429/418), maintenance, unparseable or garbage body.

    The pass is incomplete and backs off; ``retry_after`` (seconds) when the exchange said.
    """

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(TransientExchangeError):
    pass


class ExchangeUnavailable(TransientExchangeError):
    """Maintenance / 5xx."""


class BadExchangeResponse(TransientExchangeError):
    """A 200 whose body is HTML, empty, ``{}``, ``null`` or lacks the expected keys."""


class AuthenticationFailed(ExchangeError):
    """Bad or missing credentials, permission denied, IP not allowed: stops the account."""


class MissingCredentials(AuthenticationFailed):
    """An environment variable the account names is not set."""


class OrderNotFound(ExchangeError):
    """The exchange does not know this order (for this single-order query)."""


class ConfigurationError(ExchangeError):
    """The account cannot be turned into an adapter (unknown exchange id, bad options)."""


# --- Data ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExchangeOrder:
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # local Order.Type value: market, limit, stop, ... or "other"
    amount: Decimal
    filled: Decimal
    status: str  # one of EXCHANGE_STATUSES
    exchange_order_id: str
    client_order_id: str = ""
    price: Decimal | None = None
    average: Decimal | None = None
    remaining: Decimal | None = None
    timestamp: datetime | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ExchangePosition:
    symbol: str
    qty: Decimal  # signed: long > 0, short < 0 (contracts x contract size in base units)
    entry_price: Decimal | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ExchangeBalance:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class InstrumentInfo:
    symbol: str
    base: str
    quote: str
    settle: str = ""
    market_type: str = "spot"
    amount_step: Decimal = Decimal(0)
    price_step: Decimal = Decimal(0)
    contract_size: Decimal = Decimal(1)
    active: bool = True


@dataclass(frozen=True)
class ExchangeTrade:
    """One execution of one of the account's orders, as the venue reports it.

    ``quantity`` is in base units (contracts x contract size where the venue counts contracts),
    ``fee`` is what was paid (a rebate is negative) in ``fee_currency``. ``trade_id`` is unique
    per account on venues whose ``TradeHistoryPolicy.trade_id_scope`` is ``"account"``, and only
    per symbol where it is ``"symbol"`` (Binance numbers trades per symbol).
    """

    trade_id: str
    exchange_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    executed_at: datetime  # timezone-aware (UTC)
    client_order_id: str = ""  # "" where the venue does not say (Binance trade lists)
    liquidity: str = ""  # "maker" | "taker" | "" when unknown
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ExchangeMarkPrice:
    """A price to value a position or balance at: the venue's mark price, else its last trade."""

    symbol: str
    price: Decimal
    time: datetime  # timezone-aware; the venue's time, or when we fetched it if it gave none
    source: str  # MARK or LAST
    raw: dict = field(default_factory=dict, compare=False, repr=False)


MARK = "mark"
LAST = "last"


@dataclass(frozen=True)
class TradeHistoryPolicy:
    """What a venue lets the adapter read of the account's trade history (per market type).

    ``max_lookback``: how far back the venue returns trades at all (None: no documented limit).
    ``default_lookback``: the first pass's look-back (``fill_lookback_hours`` default): the
    venue's maximum, or where that is unlimited or very costly, a bounded default.
    ``window``: the widest time range one query may span (None: no limit); wider is refused.
    ``symbol_required``: the venue lists trades only per symbol.
    ``page_limit``: rows per page the adapter asks for (the venue's maximum).
    ``trade_id_scope``: "account" when trade ids are unique per account, "symbol" when only
    per symbol (then a trade is identified by symbol and id together).
    """

    max_lookback: timedelta | None
    default_lookback: timedelta
    window: timedelta | None
    symbol_required: bool
    page_limit: int
    trade_id_scope: str = "account"
    source: str = ""


@dataclass(frozen=True)
class OrderRetention:
    """How long the venue answers a single-order query (``fetch_order``) after an order ends.

    ``max_age``: no order older than this (by creation) can be queried (None: no known limit).
    ``unfilled_max_age``: a cancelled/expired/rejected order with no fill is forgotten after
    this (None: same as ``max_age``). ``source`` cites the venue's documentation.
    """

    max_age: timedelta | None
    unfilled_max_age: timedelta | None = None
    source: str = ""

    def venue_can_tell(self, created_at: datetime, *, now: datetime, filled: bool) -> bool:
        """Can the venue still answer about an order created at ``created_at``?

        ``filled`` is whether the order is known to have had a fill; pass False when unknown,
        which applies the stricter rule. False means "not found" proves nothing.
        """
        age = now - created_at
        if self.max_age is not None and age > self.max_age:
            return False
        return not (
            not filled and self.unfilled_max_age is not None and age > self.unfilled_max_age
        )


@dataclass(frozen=True)
class FetchResult(Generic[T]):
    """The result of one bulk fetch. ``complete`` is False when pages were cut off.

    ``covered_from`` (trades): the earliest time the result covers; earlier than what was
    asked when the venue keeps less history, so older trades are unknown, never "missing".
    """

    items: list[T]
    complete: bool = True
    note: str = ""
    fetched_at: datetime | None = None
    covered_from: datetime | None = None


# --- Interface --------------------------------------------------------------------------
class ExchangeAdapter(ABC):
    """One account's view of one exchange. Implementations: CcxtExchange, PaperExchange."""

    @abstractmethod
    def fetch_open_orders(self) -> FetchResult[ExchangeOrder]: ...

    @abstractmethod
    def fetch_positions(self) -> FetchResult[ExchangePosition]: ...

    @abstractmethod
    def fetch_balances(self) -> FetchResult[ExchangeBalance]: ...

    @abstractmethod
    def fetch_order(
        self, client_order_id: str, exchange_order_id: str, symbol: str
    ) -> ExchangeOrder:
        """The order's current state (open or its end state). Raises OrderNotFound."""

    @abstractmethod
    def cancel_order(self, client_order_id: str, exchange_order_id: str, symbol: str) -> None:
        """Cancel one order. Raises OrderNotFound when the exchange no longer has it open."""

    @abstractmethod
    def load_instruments(self) -> list[InstrumentInfo]: ...

    # --- trades, marks and the venue's history limits (not abstract: the paper venue has
    # no implementation yet) ------------------------------------------------------------
    def fetch_my_trades(
        self, since: datetime, symbols: list[str] | None = None
    ) -> FetchResult[ExchangeTrade]:
        """Every trade of the account executed at or after ``since`` (timezone-aware), all
        pages and windows, oldest first. ``symbols`` narrows it (required where the venue's
        ``trade_history_policy().symbol_required``). A failed page raises; a truncated read
        returns ``complete=False`` with a ``note``; neither is ever "no trades"."""
        raise NotImplementedError(f"{type(self).__name__} does not list trades yet")

    def fetch_mark_prices(self, symbols: list[str]) -> FetchResult[ExchangeMarkPrice]:
        """Mark (else last) prices for ``symbols`` in as few calls as the venue allows."""
        raise NotImplementedError(f"{type(self).__name__} does not give mark prices yet")

    def trade_history_policy(self) -> TradeHistoryPolicy:
        raise NotImplementedError(f"{type(self).__name__} has no trade history policy yet")

    def order_retention(self) -> OrderRetention:
        """How long the venue answers ``fetch_order`` (see ``OrderRetention.venue_can_tell``)."""
        return OrderRetention(max_age=None, source="no known limit")

    def fork(self) -> ExchangeAdapter | None:
        """Another adapter for the same account that may run calls on another thread at the
        same time as this one (close it after use), or None: this adapter's calls run one
        at a time (the default)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
