"""Venue-neutral helpers of the ccxt adapter: numbers, steps, order types, redaction, time.

``tradingstate.exchanges.ccxt`` re-exports the public ones.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import ccxt

from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    EXPIRED,
    OPEN,
    REJECTED,
    BadExchangeResponse,
)
from tradingstate.exchanges.venues import VenueDialect, dialect_for

_STATUS = {
    "open": OPEN,
    "canceling": OPEN,
    "closed": CLOSED,
    "canceled": CANCELED,
    "cancelled": CANCELED,
    "expired": EXPIRED,
    "rejected": REJECTED,
}

# Raw or ccxt order types -> local Order.Type values.
_TYPES = {
    "market": "market",
    "limit": "limit",
    "limit_maker": "limit",
    "stop": "stop",
    "stop_market": "stop",
    "stop_loss": "stop",
    "stop_limit": "stop_limit",
    "stop_loss_limit": "stop_limit",
    "take_profit": "take_profit",
    "take_profit_market": "take_profit",
    "take_profit_limit": "take_profit_limit",
    "trailing_stop": "trailing_stop",
    "trailing_stop_market": "trailing_stop",
}


def deep_merge(base: dict, override: dict) -> dict:
    """A new dict: ``override`` merged into ``base``, nested dicts merged key by key."""
    merged = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def to_decimal(value) -> Decimal | None:
    """ccxt number (float, int or str) -> Decimal through ``str()``; None stays None."""
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise BadExchangeResponse(f"not a number: {str(value)[:40]!r}") from exc
    if not result.is_finite():
        raise BadExchangeResponse(f"not a finite number: {value!r}")
    return result


def step_from_precision(value, precision_mode: int) -> Decimal:
    """ccxt ``precision`` entry -> a step (0.001). TICK_SIZE gives the step itself."""
    if value is None:
        return Decimal(0)
    if precision_mode == ccxt.DECIMAL_PLACES:
        return Decimal(1).scaleb(-int(value))
    if precision_mode == ccxt.TICK_SIZE:
        return to_decimal(value) or Decimal(0)
    return Decimal(0)  # SIGNIFICANT_DIGITS: no fixed step


def local_order_type(
    order: dict, exchange_id: str = "", dialect: VenueDialect | None = None
) -> str:
    """The local Order.Type for a ccxt order, using the raw type where ccxt collapses it.

    The venue's dialect reads its own raw encodings first (Binance futures' STOP, Bybit's
    stopOrderType, OKX's ordType); then the raw ``type``, then ccxt's unified type.
    """
    dialect = dialect or dialect_for(exchange_id)
    venue_type = dialect.order_type(order)
    if venue_type is not None:
        return venue_type
    info = order.get("info") or {}
    ccxt_type = str(order.get("type") or "").lower()
    raw = info.get("type") if isinstance(info, dict) else None
    if isinstance(raw, str) and raw.lower() in _TYPES:
        return _TYPES[raw.lower()]
    mapped = _TYPES.get(ccxt_type, "other")
    if order.get("triggerPrice") and mapped in ("market", "limit"):
        return "stop" if mapped == "market" else "stop_limit"
    return mapped


def millis_to_datetime(ms) -> datetime | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


class RedactingLogger:
    """Stands in for ccxt's logger: ccxt logs request headers (the API key) at DEBUG."""

    def __init__(self, target: logging.Logger, redact: Callable[[str], str]):
        self._target = target
        self._redact = redact

    def _log(self, level: int, msg, *args, **kwargs) -> None:
        if self._target.isEnabledFor(level):
            text = str(msg) % args if args else str(msg)
            self._target.log(level, "%s", self._redact(text))

    def debug(self, msg, *args, **kwargs):
        self._log(logging.DEBUG, msg, *args)

    def info(self, msg, *args, **kwargs):
        self._log(logging.INFO, msg, *args)

    def warning(self, msg, *args, **kwargs):
        self._log(logging.WARNING, msg, *args)

    def error(self, msg, *args, **kwargs):
        self._log(logging.ERROR, msg, *args)

    def isEnabledFor(self, level: int) -> bool:
        return self._target.isEnabledFor(level)


def raw_position_side(info: dict) -> str:
    """The side from the raw position when ccxt could not tell (e.g. Binance notional 0)."""
    amount = info.get("positionAmt")
    if isinstance(amount, str) and amount:
        return "short" if amount.strip().startswith("-") else "long"
    side = str(info.get("side") or "").lower()
    return {"buy": "long", "sell": "short"}.get(side, "")


def scaled(value: Decimal | None, size: Decimal | None) -> Decimal | None:
    if value is None or size is None:
        return value
    return value * size


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
