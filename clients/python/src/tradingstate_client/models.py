"""Typed request and response models.

Amounts are :class:`decimal.Decimal` (the API sends them as strings; JSON numbers are parsed
as Decimal too, so no float ever appears), times are timezone-aware :class:`datetime`.
Every response model keeps the JSON it was built from in ``raw`` (not shown, not compared),
so fields a newer server adds are still reachable.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

from tradingstate_client.errors import ResponseFormatError

T = TypeVar("T")

ORDER_ACTIVE_STATUSES = frozenset({"pending", "submitted", "partially_filled"})
ORDER_TERMINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})
RUN_FINISHED_STATUSES = frozenset({"completed", "incomplete", "failed", "skipped"})


# --- responses -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorBody:
    error: str
    detail: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Account:
    name: str
    exchange: str
    market_type: str
    sandbox: bool
    enabled: bool
    auto_repair: bool
    reconciliation_interval_seconds: int
    last_reconciled_at: datetime | None
    recovery_in_progress: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class FillOrderState:
    """The order as it stands after a fill was recorded."""

    status: str
    filled_qty: Decimal
    remaining_qty: Decimal
    avg_fill_price: Decimal | None
    version: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Fill:
    trade_id: str
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    client_order_id: str | None = None  # None: an external/manual trade (no local order)
    fee: Decimal | None = None
    fee_currency: str = ""
    created_at: datetime | None = None
    order: FillOrderState | None = None  # in the answer to post_fill
    symbol: str | None = None
    side: str | None = None
    origin: str | None = None  # bot / reconciliation / manual
    inferred: bool = False  # the venue said filled but gave no trades
    exchange_order_id: str = ""
    reported_client_order_id: str = ""  # as the venue reported it with the trade
    is_maker: bool | None = None
    external: bool = False  # recorded against no local order
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PaperTrade:
    """One execution on tradingstate's paper venue (the venue's own trade list, what a bot
    reads from a real exchange; record it with ``post_fill``)."""

    trade_id: str
    exchange_order_id: str
    client_order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str  # maker / taker
    executed_at: datetime
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Order:
    account: str
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    filled_qty: Decimal
    remaining_qty: Decimal
    avg_fill_price: Decimal | None
    status: str
    strategy_id: str
    origin: str
    version: int
    created_at: datetime
    updated_at: datetime
    fills: list[Fill] | None = None  # in the order detail, once the server lists them
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_active(self) -> bool:
        return self.status in ORDER_ACTIVE_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in ORDER_TERMINAL_STATUSES


@dataclass(frozen=True)
class Position:
    symbol: str
    qty: Decimal
    entry_price: Decimal | None
    version: int
    updated_at: datetime
    avg_entry_price: Decimal | None = None
    realized_pnl: Decimal | None = None
    fees: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Balance:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
    version: int
    updated_at: datetime
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BulkTransitionItemResult:
    index: int
    client_order_id: str | None
    ok: bool
    status: str | None = None
    version: int | None = None
    filled_qty: Decimal | None = None
    error: ErrorBody | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class BulkTransitionResult:
    applied: int
    failed: int
    results: list[BulkTransitionItemResult]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HaltedAccount:
    account: str
    reason: str
    activated_by: str
    activated_at: datetime | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class KillSwitchStatus:
    active: bool
    reason: str
    activated_by: str
    activated_at: datetime | None
    halted_accounts: list[HaltedAccount]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def allows(self, account: str) -> bool:
        """True when neither the global switch nor ``account``'s is active: the server's
        per-account ``trading_allowed`` when it sends one, else the contract fields."""
        for entry in self.raw.get("accounts") or []:
            if isinstance(entry, dict) and entry.get("account") == account:
                return entry.get("trading_allowed") is True
        return not self.active and all(h.account != account for h in self.halted_accounts)


@dataclass(frozen=True)
class KillSwitchChange:
    changed: bool
    message: str
    scope: str
    account: str | None
    active: bool
    cancel_summary: Any
    state: KillSwitchStatus
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ReconciliationRun:
    id: int
    account: str
    trigger: str
    status: str
    dry_run: bool
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    orders_synced: int
    positions_synced: int
    balances_synced: int
    discrepancies_found: int
    repairs_applied: int
    repairs_deferred: int
    error: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in RUN_FINISHED_STATUSES


@dataclass(frozen=True)
class Discrepancy:
    id: int
    run: int | None
    type: str
    entity: str
    key: str
    status: str
    persistent: bool
    consecutive_runs: int
    local_value: Any
    exchange_value: Any
    detail: Any
    proposed_repair: Any
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: str
    resolution_reason: str
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HealthWorker:
    ok: bool
    last_seen: datetime | None
    age_seconds: Decimal | None
    source: str
    stale_after_seconds: int
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HealthAccount:
    name: str
    enabled: bool
    last_pass_at: datetime | None
    last_pass_age_seconds: Decimal | None
    reconciliation_interval_seconds: int
    recovery_in_progress: bool
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Health:
    status: str  # ok, degraded (worker stale) or error
    time: datetime
    db: str
    worker: HealthWorker | None
    accounts: list[HealthAccount] | None = None  # only for an authenticated caller
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# P&L and exposure (issue 15's contract)


@dataclass(frozen=True)
class PnlPosition:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal | None
    mark_price: Decimal | None
    mark_time: datetime | None
    mark_stale: bool  # a price used is old or its last refresh failed
    # None: a figure that needs a price nobody has (never counted as zero)
    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    net_pnl: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PnlTotals:
    """None when any position's figure is None."""

    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    net_pnl: Decimal | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Pnl:
    account: str
    valuation_currency: str
    as_of: datetime
    positions: list[PnlPosition]
    totals: PnlTotals
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class PnlPoint:
    """One recorded hourly snapshot of an account's P&L and exposure (``pnl_history``)."""

    as_of: datetime | None = None
    valuation_currency: str | None = None
    realized_pnl: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    fees: Decimal | None = None
    net_pnl: Decimal | None = None
    net_notional: Decimal | None = None
    gross_notional: Decimal | None = None
    stale: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExposureShare:
    """One account's or one venue's part of an asset's exposure."""

    net_qty: Decimal
    net_notional: Decimal | None = None  # None: no price for the asset
    gross_notional: Decimal | None = None
    mark_stale: bool = False
    venue: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExposureAsset:
    asset: str
    net_qty: Decimal
    net_notional: Decimal | None
    gross_notional: Decimal | None
    mark_stale: bool = False
    by_account: dict[str, ExposureShare] = field(default_factory=dict)  # by account name
    by_venue: dict[str, ExposureShare] = field(default_factory=dict)  # by venue
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExposureTotals:
    """None when an asset has no price (listed in ``excluded_assets``)."""

    net_notional: Decimal | None
    gross_notional: Decimal | None
    excluded_assets: list[str] = field(default_factory=list)
    stale_assets: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Exposure:
    as_of: datetime
    valuation_currency: str
    assets: list[ExposureAsset]
    totals: ExposureTotals
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# State as of a moment, and discrepancy analytics (issue 18)


@dataclass(frozen=True)
class HeldOrder:
    client_order_id: str
    symbol: str
    side: str
    status: str
    quantity: Decimal | None = None
    filled_qty: Decimal | None = None
    exchange_order_id: str = ""
    type: str = ""
    price: Decimal | None = None
    avg_fill_price: Decimal | None = None
    version: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HeldPosition:
    symbol: str
    qty: Decimal
    entry_price: Decimal | None = None
    version: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HeldBalance:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
    version: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HeldPnl:
    taken_at: datetime
    valuation_currency: str
    realized_pnl: Decimal | None = None
    unrealized_pnl: Decimal | None = None
    fees: Decimal | None = None
    net_pnl: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class HeldState:
    """What tradingstate held at the moment: rebuilt from the audit trail."""

    orders: list[HeldOrder]
    positions: list[HeldPosition]
    balances: list[HeldBalance]
    last_change_at: datetime | None = None
    pnl: HeldPnl | None = None  # the hourly snapshot at or before the moment
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExchangeOrderView:
    client_order_id: str
    source: str  # "agreed" (as held then) or "reported" (the exchange's differing value)
    symbol: str | None = None
    side: str | None = None
    status: str | None = None
    amount: Decimal | None = None
    filled: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExchangePositionView:
    symbol: str
    source: str
    qty: Decimal | None = None
    entry_price: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExchangeBalanceView:
    currency: str
    source: str
    free: Decimal | None = None
    used: Decimal | None = None
    total: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class ExchangeView:
    """What the exchange reported at the pass nearest the moment."""

    run_id: int
    run_status: str
    started_at: datetime
    orders: list[ExchangeOrderView]
    positions: list[ExchangePositionView]
    balances: list[ExchangeBalanceView]
    finished_at: datetime | None = None
    errors: list[str] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class AccountState:
    account: str
    at: datetime
    held: HeldState
    exchange: ExchangeView | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class RepairTime:
    type: str
    repaired: int
    p50_seconds: Decimal | None = None
    p95_seconds: Decimal | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class DiscrepancyStats:
    since: datetime
    until: datetime
    days: int
    accounts: list[str]
    time_to_repair: list[RepairTime]
    recurrence_by_type: list[dict[str, Any]]
    recurrence_by_symbol: list[dict[str, Any]]
    recurrence_by_venue: list[dict[str, Any]]
    persistent_trend: list[dict[str, Any]]
    stale_orders: int
    stale_later_seen_alive: int
    false_stale_rate: Decimal | None = None  # stale orders later seen alive, 0-1
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a cursor-paginated list (newest first). ``next_cursor`` is None on the
    last page; iterate every page with the client's ``iter_*`` methods."""

    results: list[T]
    next_cursor: str | None = None
    previous_cursor: str | None = None

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)


# --- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransitionUpdate:
    """One item of ``bulk_transition``."""

    client_order_id: str
    status: str
    filled_qty: Decimal | int | str | None = None
    avg_fill_price: Decimal | int | str | None = None
    exchange_order_id: str | None = None
    expected_version: int | None = None
    reason: str | None = None


# --- decoding ------------------------------------------------------------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def decode(cls: Any, data: Any, path: str = "") -> Any:
    """Build ``cls`` (a model, ``list[...]``, ``X | None``, a scalar) from parsed JSON."""
    where = path or getattr(cls, "__name__", str(cls))
    origin = typing.get_origin(cls)
    if cls is Any:
        return data
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(cls)
        if data is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return decode(inner[0], data, path)
        return data
    if data is None:
        raise ResponseFormatError(f"{where}: null where a value is required", body=data)
    if origin is list:
        if not isinstance(data, list):
            raise ResponseFormatError(f"{where}: expected a list", body=data)
        (item,) = typing.get_args(cls)
        return [decode(item, v, f"{path}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, Mapping):
            raise ResponseFormatError(f"{where}: expected an object", body=data)
        _, value = typing.get_args(cls)
        return {str(k): decode(value, v, f"{path}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(cls):
        return _decode_dataclass(cls, data, path or cls.__name__)
    if cls is Decimal:
        return _decimal(data, where)
    if cls is datetime:
        return _datetime(data, where)
    if cls is bool:
        if not isinstance(data, bool):
            raise ResponseFormatError(f"{where}: expected true/false, got {data!r}", body=data)
        return data
    if cls is int:
        if isinstance(data, bool) or not isinstance(data, int):
            raise ResponseFormatError(f"{where}: expected an integer, got {data!r}", body=data)
        return data
    if cls is str:
        if not isinstance(data, str):
            raise ResponseFormatError(f"{where}: expected a string, got {data!r}", body=data)
        return data
    return data


def _decode_dataclass(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise ResponseFormatError(f"{path}: expected an object, got {data!r}", body=data)
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name == "raw":
            kwargs["raw"] = dict(data)
            continue
        if f.name in data:
            kwargs[f.name] = decode(hints[f.name], data[f.name], f"{path}.{f.name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ResponseFormatError(f"{path}: missing field '{f.name}'", body=dict(data))
    return cls(**kwargs)


def _decimal(value: Any, where: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str):
        try:
            result = Decimal(value)
        except InvalidOperation:
            pass
        else:
            if result.is_finite():
                return result
    raise ResponseFormatError(f"{where}: expected a decimal amount, got {value!r}", body=value)


def _datetime(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            if moment.tzinfo is not None:
                return moment
    raise ResponseFormatError(f"{where}: expected an ISO 8601 time with zone, got {value!r}")
