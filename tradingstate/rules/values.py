"""Field checks shared by the rules: identifiers, symbols, currency codes, choices. Pure."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable, Iterable

from tradingstate.amounts import parse_amount
from tradingstate.errors import ValidationFailed


def whole_string(pattern: str) -> re.Pattern:
    r"""``pattern``, written ``^…$`` as OpenAPI and the docs show it, compiled to match a
    whole string only. Python's ``$`` also matches before a final newline, so ``"x\n"``
    passed ``^…$`` (and then no URL could name it); ``\Z`` ends at the string's end. Every
    identifier check in the product is compiled here (``test_identifier_patterns``)."""
    if not pattern.startswith("^") or not pattern.endswith("$") or pattern.endswith(r"\$"):
        raise ValueError(f"expected a ^...$ pattern, got {pattern!r}")
    return re.compile(pattern[:-1] + r"\Z")


CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
ENV_NAME_PATTERN = r"^[A-Z_][A-Z0-9_]*$"
CLIENT_ORDER_ID_MESSAGE = "1-64 characters of A-Z, a-z, 0-9, '_', '.', ':' or '-'."
SYMBOL_INVALID = "must be a ccxt unified symbol such as 'BTC/USDT' (1-64 characters)"
# The one syntax of a symbol a bot or staff brings in (a new order, a new position) whatever
# the account lists (issue 13, D7): ccxt's unified form, BASE/QUOTE[:SETTLE[-YYMMDD[-STRIKE-
# C|P]]], each code 1-32 letters, digits or '.'. No spaces, control characters, '%' or emoji.
_CODE = r"[A-Za-z0-9][A-Za-z0-9.]{0,31}"
SYMBOL_SYNTAX_PATTERN = rf"^{_CODE}/{_CODE}(:{_CODE}(-[0-9]{{6}}(-[0-9]+(\.[0-9]+)?-[CP])?)?)?$"
_SYMBOL_SYNTAX = whole_string(SYMBOL_SYNTAX_PATTERN)
SYMBOL_SYNTAX_INVALID = (
    "must be a ccxt unified symbol: BASE/QUOTE, BASE/QUOTE:SETTLE, or with a -YYMMDD expiry "
    "(options: -STRIKE-C or -P); codes of letters, digits and '.'"
)
UNKNOWN_SYMBOL = "Unknown symbol '{symbol}' for account '{account}'."
CURRENCY_INVALID = "must be a currency code such as 'USDT' (1-32 letters or digits)"
EXCHANGE_ORDER_ID_TOO_LONG = "must be at most 128 characters"
EXCHANGE_ORDER_ID_NOT_TEXT = (
    "must be the venue's id as printed: no spaces around it, no control characters"
)

_CLIENT_ORDER_ID = whole_string(CLIENT_ORDER_ID_PATTERN)


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


def symbol_new(
    value: object, *, known_symbol: Callable[[str], bool] | None = None, account_name: str = ""
) -> str:
    """A symbol a bot or staff brings in (a new order, a new position): the strict syntax,
    then, when the account lists instruments (``known_symbol``), one of them. A venue's
    own symbols (the reconciler) only need :func:`symbol`."""
    value = symbol(value)
    if not _SYMBOL_SYNTAX.fullmatch(value):
        fail("symbol", SYMBOL_SYNTAX_INVALID, detail=f"symbol: {SYMBOL_SYNTAX_INVALID}")
    if known_symbol is not None and not known_symbol(value):
        fail("symbol", UNKNOWN_SYMBOL.format(symbol=value, account=account_name))
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
    if text != text.strip() or not text.isprintable():  # " 123" is not the venue's "123"
        fail("exchange_order_id", EXCHANGE_ORDER_ID_NOT_TEXT)
    return text


# ccxt's constructor keys that carry a credential: the configuration names environment
# variables for them (api_key_env, secret_env, password_env); the database never holds one
CCXT_CREDENTIAL_KEYS = frozenset(
    {"apikey", "secret", "password", "uid", "login", "privatekey", "walletaddress", "token"}
    | {"twofa"}
)
CCXT_OPTIONS_NOT_OBJECT = "must be a JSON object of ccxt constructor options"
CCXT_OPTIONS_CREDENTIAL = (
    "must not hold a credential ({key!r}): name environment variables in api_key_env, "
    "secret_env and password_env"
)
TOLERANCES_NOT_OBJECT = 'must be a JSON object of currency -> amount, e.g. {"BTC": "0.00001"}'


def ccxt_options(value: object) -> dict:
    """An account's extra ccxt options: an object, with no credential in it."""
    if not isinstance(value, dict):
        fail("ccxt_options", CCXT_OPTIONS_NOT_OBJECT)
    for key in value:
        if str(key).replace("_", "").lower() in CCXT_CREDENTIAL_KEYS:
            fail("ccxt_options", CCXT_OPTIONS_CREDENTIAL.format(key=key))
    return value


def balance_tolerances(value: object) -> dict:
    """Per-currency balance tolerances: currency codes to non-negative amounts (each pass
    compares balances with them: "abc" or NaN failed every pass, -1 flagged equal ones)."""
    if not isinstance(value, dict):
        fail("balance_tolerances", TOLERANCES_NOT_OBJECT)
    for key, amount in value.items():
        try:
            currency(key)
            parse_amount(amount, f"balance_tolerances.{key}", non_negative=True)
        except ValidationFailed as exc:
            reason = next(iter(exc.fields.values()))[0] if exc.fields else exc.message
            fail("balance_tolerances", f"{key!r}: {reason}")
    return value


PAPER_EXCHANGE = "paper"
EXCHANGE_ID_SYNTAX = "must be a ccxt exchange id such as 'binance' or 'paper'"
UNKNOWN_EXCHANGE = "unknown exchange id {value!r}: expected 'paper' or a ccxt exchange id"
_EXCHANGE_ID = whole_string(r"^[a-z0-9]+$")


@functools.cache
def known_exchange_ids() -> frozenset[str]:
    """'paper' and every exchange id of the installed ccxt (imported on first use)."""
    import ccxt

    return frozenset({PAPER_EXCHANGE, *ccxt.exchanges})


def exchange_id(value: object) -> str:
    """An account's venue: 'paper' or a ccxt exchange id, close matches suggested (the
    configuration and the admin alike: a typo stored an account whose every pass failed)."""
    if not isinstance(value, str) or not _EXCHANGE_ID.match(value):
        fail("exchange", EXCHANGE_ID_SYNTAX)
    if value == PAPER_EXCHANGE:  # no ccxt import (0.3 s) for the paper venue
        return value
    known = known_exchange_ids()
    if value not in known:
        close = difflib.get_close_matches(value, sorted(known), n=3)
        hint = f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""
        fail("exchange", UNKNOWN_EXCHANGE.format(value=value) + hint)
    return value
