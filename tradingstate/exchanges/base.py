"""The exchange adapter interface: plain dataclasses with Decimals, and the error classes.

Adapters do I/O only and return these dataclasses, never models. Each bulk fetch says
whether it is complete: a failed, timed-out or truncated fetch is never read as "empty".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
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
class FetchResult(Generic[T]):
    """The result of one bulk fetch. ``complete`` is False when pages were cut off."""

    items: list[T]
    complete: bool = True
    note: str = ""
    fetched_at: datetime | None = None


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

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
