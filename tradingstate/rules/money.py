"""Decimal arithmetic shared by the accounting, valuation and exposure rules. Pure.

- :data:`CONTEXT`: 160 significant digits, ROUND_HALF_EVEN, traps on invalid operations. Sums
  and products of stored amounts (38 digits, 18 places) are exact in it; only divisions round.
- :func:`q18`: the one rounding rule: a computed figure is quantized to 18 places (the storage
  scale of ``AmountField`` and the published amount pattern), ROUND_HALF_EVEN, and only when it
  has more places than that.
- :class:`Mark`: a price with its stale flag; :func:`mark_price` says whether it is usable,
  :func:`mark_stale` whether it is stale. A missing or unusable price is None, never zero.

Callers that add these figures up themselves (totals over many rows) do it inside
``localcontext(CONTEXT)``: Python's default 28-digit context silently rounds 38-digit amounts.
"""

from __future__ import annotations

from decimal import (
    Decimal,
)
from typing import NamedTuple

from tradingstate.amounts import CONTEXT as AMOUNTS_CONTEXT
from tradingstate.errors import ValidationFailed

PLACES = 18
QUANTUM = Decimal(1).scaleb(-PLACES)
ZERO = Decimal(0)

# Wide enough that sums and products of 38-digit amounts are exact; only divisions round
# (one definition, beside the amounts it serves).
CONTEXT = AMOUNTS_CONTEXT

# error messages (module constants: tests assert on them)
NOT_A_DECIMAL = "must be a finite Decimal (never a float)"
MUST_BE_POSITIVE = "must be greater than zero"
MUST_NOT_BE_NEGATIVE = "must not be negative"


class AccountingInputError(ValidationFailed):
    """Bad input to a pure money rule; ``field`` names the input, the message the problem."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}", fields={field: [problem]})
        self.field = field


def q18(value: Decimal) -> Decimal:
    """``value`` with at most 18 places (ROUND_HALF_EVEN); zero as a plain ``0`` (never -0)."""
    if value == 0:
        return ZERO
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -PLACES:
        value = value.quantize(QUANTUM, context=CONTEXT)
        return ZERO if value == 0 else value
    return value


def check_decimal(
    value: object, field: str, *, positive: bool = False, non_negative: bool = False
) -> Decimal:
    """``value`` as a finite Decimal (ints accepted; floats, bools, strings refused)."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        raise AccountingInputError(field, NOT_A_DECIMAL)
    number = Decimal(value)
    if not number.is_finite():
        raise AccountingInputError(field, NOT_A_DECIMAL)
    if positive and number <= 0:
        raise AccountingInputError(field, MUST_BE_POSITIVE)
    if non_negative and number < 0:
        raise AccountingInputError(field, MUST_NOT_BE_NEGATIVE)
    return ZERO if number == 0 else number


class Mark(NamedTuple):
    """A price and whether it is stale. A plain ``(price, stale)`` tuple works as well."""

    price: Decimal
    stale: bool = False


def mark_price(mark: Mark | tuple | None) -> Decimal | None:
    """The usable price of ``mark``: a finite price above zero, else None (never valued at 0)."""
    if mark is None:
        return None
    price = mark[0]
    if isinstance(price, bool) or not isinstance(price, Decimal | int):
        return None
    price = Decimal(price)
    return price if price.is_finite() and price > 0 else None


def mark_stale(mark: Mark | tuple | None) -> bool:
    """True when ``mark`` carries a stale flag that is set."""
    return mark is not None and len(mark) > 1 and bool(mark[1])
