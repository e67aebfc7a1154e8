"""Decimal parsing for money and quantities: never float, never NaN, never out of range.

Pure: no ORM (``tradingstate.rules`` and the reconciliation diff use it)."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from tradingstate.errors import ValidationFailed

# The context of every computation on amounts (``rules.money.CONTEXT`` too): 160 significant
# digits, so sums and products of stored amounts (38 digits, 18 places) are exact and only
# divisions round. Python's default context keeps 28 digits: it rounded 38-digit amounts in
# arithmetic and in ``normalize()``, silently.
CONTEXT = Context(
    prec=160, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow]
)

# 38 digits, 18 places: 20 integer digits and 18 decimals, enough for any crypto quantity.
# Defined here, not in models, so pure modules (rules, the diff) can parse amounts without
# importing the ORM.
AMOUNT_DIGITS = 38
AMOUNT_PLACES = 18

MAX_INTEGER_DIGITS = AMOUNT_DIGITS - AMOUNT_PLACES

NOT_A_NUMBER = "must be a decimal number"
NOT_FINITE = "must be a finite number (NaN and Infinity are not allowed)"
TOO_MANY_DECIMALS = f"must have at most {AMOUNT_PLACES} decimal places"
TOO_MANY_DIGITS = f"must have at most {MAX_INTEGER_DIGITS} digits before the decimal point"
MUST_BE_POSITIVE = "must be greater than zero"
MUST_NOT_BE_NEGATIVE = "must not be negative"

# The published amount pattern (OpenAPI) is the rule wherever an amount enters as text: the
# API, the admin/console forms, the command line and the configuration (issue 13, D6).
AMOUNT_PATTERN = r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$"
_AMOUNT_TEXT = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,18})?")
NOT_AMOUNT_TEXT = (
    'must be a decimal number written plainly, such as "0.05": digits, an optional leading '
    '"-", at most 20 digits before and 18 after the point (no exponent, no "+", no bare ".")'
)
NOT_A_STRING = 'must be a string such as "0.05" (JSON numbers are not exact decimals)'


def parse_amount(
    value: object,
    field: str,
    *,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """Parse ``value`` into a Decimal that fits 38 digits / 18 places, or raise naming ``field``."""
    if isinstance(value, bool) or value is None:
        raise ValidationFailed(f"{field}: {NOT_A_NUMBER}", fields={field: [NOT_A_NUMBER]})
    try:
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, Decimal | int) or (
            # Decimal() also reads "1_000" and non-ASCII digits ("١٢"): not amounts for us
            isinstance(value, str)
            and value
            and value.strip() == value
            and value.isascii()
            and "_" not in value
        ):
            number = Decimal(value)
        else:
            raise InvalidOperation
    except (InvalidOperation, ValueError, TypeError):
        raise ValidationFailed(f"{field}: {NOT_A_NUMBER}", fields={field: [NOT_A_NUMBER]}) from None
    return check_amount(number, field, positive=positive, non_negative=non_negative)


def parse_amount_text(
    value: object,
    field: str,
    *,
    positive: bool = False,
    non_negative: bool = False,
) -> Decimal:
    """An amount given as text at an entry point: ``value`` must be a string matching
    :data:`AMOUNT_PATTERN` exactly (``"1e3"``, ``"+1"``, ``".5"``, ``"5."`` are refused),
    then the sign rules of :func:`parse_amount` apply. The error names ``field``."""

    def fail(msg: str):
        raise ValidationFailed(f"{field}: {msg}", fields={field: [msg]})

    if not isinstance(value, str):
        fail(NOT_A_STRING)
    if not _AMOUNT_TEXT.fullmatch(value):
        fail(_text_problem(value))
    return parse_amount(value, field, positive=positive, non_negative=non_negative)


def _text_problem(value: str) -> str:
    """The most specific reason ``value`` is not an amount string."""
    try:
        number = Decimal(value) if value.isascii() and value.strip() == value else None
    except (InvalidOperation, ValueError):
        number = None
    if number is None:
        return NOT_AMOUNT_TEXT
    if not number.is_finite():
        return NOT_FINITE
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > AMOUNT_PLACES:
        return TOO_MANY_DECIMALS
    if not amount_fits(number):
        return TOO_MANY_DIGITS
    return NOT_AMOUNT_TEXT


def check_amount(
    number: Decimal, field: str, *, positive: bool = False, non_negative: bool = False
) -> Decimal:
    def fail(msg: str):
        raise ValidationFailed(f"{field}: {msg}", fields={field: [msg]})

    if not number.is_finite():
        fail(NOT_FINITE)
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    places = max(0, -exponent)
    if places > AMOUNT_PLACES:
        # trailing zeros beyond 18 places are harmless: normalise them away first
        stripped = number.normalize(CONTEXT)
        _, _, exp2 = stripped.as_tuple()
        assert isinstance(exp2, int)
        if -exp2 > AMOUNT_PLACES:
            fail(TOO_MANY_DECIMALS)
        number = stripped
    if not amount_fits(number):
        fail(TOO_MANY_DIGITS)
    if number == 0:
        number = Decimal(0)  # also turns -0 into 0
    if positive and number <= 0:
        fail(MUST_BE_POSITIVE)
    if non_negative and number < 0:
        fail(MUST_NOT_BE_NEGATIVE)
    return number


def amount_str(value: Decimal | None) -> str | None:
    """Canonical text for logs, audit JSON and comparisons: no exponent, no trailing zeros."""
    if value is None:
        return None
    text = format(value.normalize(CONTEXT), "f")
    return "0" if text in ("-0", "") else text


def amount_display(value: Decimal | None, step: Decimal | None = None) -> str | None:
    """How a trader reads ``value``: to the instrument's precision when its ``step`` is known
    (0.001 -> three places, 0.5 -> one place), else with the trailing zeros dropped
    (``amount_str``). Never pads a stored value to 18 places; never rounds away a digit the
    value has (a value finer than the step keeps its own digits).

    The one formatter for people: templates (``{% load money %}``: ``qty``), the admin's
    amount columns, ``__str__`` and the texts built from them."""
    if value is None:
        return None
    text = amount_str(value)
    if step is None or step <= 0:
        return text
    step_exp = step.normalize(CONTEXT).as_tuple().exponent
    value_exp = Decimal(text).as_tuple().exponent
    assert isinstance(step_exp, int) and isinstance(value_exp, int)
    places = max(0, -step_exp, -value_exp)
    shown = Decimal(text).quantize(Decimal(1).scaleb(-places), context=CONTEXT)  # 20 + 18 digits
    return format(shown, "f") if places else text


_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?![\w.])")


def unpad_numbers(text: str) -> str:
    """``text`` with every decimal number in it written by ``amount_display`` (for texts
    recorded before numbers were normalised: "0.080000000000000000" -> "0.08")."""
    return _NUMBER.sub(lambda m: amount_display(Decimal(m.group(0))) or m.group(0), text)


QUANTUM = Decimal(1).scaleb(-AMOUNT_PLACES)


AMOUNT_LIMIT = Decimal(10) ** MAX_INTEGER_DIGITS  # the first value with too many digits


def amount_fits(value: Decimal) -> bool:
    """Whether a computed amount fits the amount columns (38 digits, 18 of them places)
    once rounded to 18 places: fewer than 20 digits before the point."""
    return value.is_finite() and value.copy_abs() < AMOUNT_LIMIT


def quantize_amount(value: Decimal) -> Decimal:
    """Round a computed amount (an average price, say) to the stored 18 places."""
    return value.quantize(QUANTUM, context=CONTEXT)  # 28 digits would refuse 11+18 digits
