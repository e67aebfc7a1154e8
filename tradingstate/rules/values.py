"""Field checks shared by the rules: identifiers, symbols, currency codes, choices. Pure."""

from __future__ import annotations

import re
from collections.abc import Iterable

from tradingstate.errors import ValidationFailed

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
CLIENT_ORDER_ID_MESSAGE = "1-64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'."
SYMBOL_INVALID = "must be a ccxt unified symbol such as 'BTC/USDT' (1-64 characters)"
CURRENCY_INVALID = "must be a currency code such as 'USDT' (1-32 letters or digits)"
EXCHANGE_ORDER_ID_TOO_LONG = "must be at most 128 characters"

_CLIENT_ORDER_ID = re.compile(CLIENT_ORDER_ID_PATTERN)


def fail(field: str, message: str, cls: type[ValidationFailed] = ValidationFailed, *, detail=None):
    """Raise ``cls`` naming ``field``; ``detail`` is the top-level text (default: message)."""
    raise cls(message if detail is None else detail, fields={field: [message]})


def client_order_id(value: object) -> str:
    if not isinstance(value, str):
        fail("client_order_id", "must be a string")
    # search, as Django's RegexValidator on the model field does
    if not _CLIENT_ORDER_ID.search(value):
        fail("client_order_id", CLIENT_ORDER_ID_MESSAGE)
    return value


def symbol(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or value.strip() != value:
        fail("symbol", SYMBOL_INVALID, detail=f"symbol: {SYMBOL_INVALID}")
    return value


def currency(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 32
        or not value.replace("-", "").replace("_", "").replace(".", "").isalnum()
        or not value.isascii()
    ):
        fail("currency", CURRENCY_INVALID, detail=f"currency: {CURRENCY_INVALID}")
    return value


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        fail(field, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def exchange_order_id(value: object) -> str:
    text = str(value)
    if len(text) > 128:
        fail("exchange_order_id", EXCHANGE_ORDER_ID_TOO_LONG)
    return text
