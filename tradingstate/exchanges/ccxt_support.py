"""Venue-neutral helpers of the ccxt adapter: numbers, steps, order types, redaction, time.

``tradingstate.exchanges.ccxt`` re-exports the public ones.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

import ccxt

from tradingstate.amounts import CONTEXT
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
    return CONTEXT.multiply(value, size)


def millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class RememberedOrders:
    """A client's ``parse_order``, remembering what it made of each raw order.

    A steady account's open orders come back unchanged pass after pass, and ccxt's
    ``parse_order`` (``safe_order``'s derived amounts, in string arithmetic) costs about
    0.1 ms an order: a sixth of a steady pass's CPU with 50 open orders. The result is a
    function of the raw order, the market it is parsed against and the client's markets, so
    it is kept under (market id, the raw order's items) while the client's markets stay the
    same object (a reload forgets everything), for at most ``MAX`` orders (the oldest go
    first). A raw order with a nested value is kept by its JSON text; one with neither form
    is parsed every time. Each caller gets its own copy of the dict."""

    MAX = 4096

    def __init__(self, client):
        self._parse = client.parse_order  # the class's method, bound to this client
        self._client = client
        self._markets = None
        self._memo: dict = {}

    def __call__(self, order, market=None, *args, **kwargs):
        key = self._key(order, market, args, kwargs)
        if key is None:
            return self._parse(order, market, *args, **kwargs)
        if self._client.markets is not self._markets:
            self._memo.clear()
            self._markets = self._client.markets
        parsed = self._memo.get(key)
        if parsed is None:
            parsed = self._parse(order, market, *args, **kwargs)
            if not isinstance(parsed, dict):
                return parsed
            if len(self._memo) >= self.MAX:
                del self._memo[next(iter(self._memo))]
            self._memo[key] = parsed
        return dict(parsed)

    @staticmethod
    def _key(order, market, args, kwargs):
        """The raw order's items (its JSON text if a value is nested: OKX's algo-order
        fields), with what else it is parsed against; None if it has no such form."""
        try:
            head = (market["id"] if market else None, args, *kwargs.items())
            hash(head)
            items = tuple(order.items())
        except (TypeError, AttributeError, KeyError):
            return None
        try:
            hash(items)
            return head, items
        except TypeError:
            pass
        try:
            return head, json.dumps(order, separators=(",", ":"))
        except (TypeError, ValueError):
            return None


def remember_parsed_orders(client) -> None:
    """Route the client's ``parse_order`` through a ``RememberedOrders`` of its own."""
    client.parse_order = RememberedOrders(client)
