"""Setting a balance: a bot's book, a staff correction, or the venue's. Pure.

The same rule for every source (``balance_set`` and the reconciler's ``balances_sync``):
the currency is a code of 1-32 letters or digits ('-', '_', '.' allowed); ``used``
defaults to 0 and is never negative; at least one of ``total`` and ``free`` is given:
``total`` defaults to free + used, ``free`` to total - used (free may be negative, as
margin venues report). A new row starts at version 1, an existing one goes up by one.

Changed by issue 19: the reconciler used to accept any currency code and needed all three
amounts; it now applies exactly these checks and defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradingstate.amounts import parse_amount
from tradingstate.rules import values as v

NEEDS_AN_AMOUNT = "give total, free, or both"


@dataclass(frozen=True)
class BalanceState:
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
    version: int


def balance_set(
    current: BalanceState | None,
    *,
    currency: object,
    total: object = None,
    free: object = None,
    used: object = None,
) -> BalanceState:
    """The balance after setting it (``current`` is None for a new row)."""
    currency = v.currency(currency)
    used_amount = parse_amount("0" if used is None else used, "used", non_negative=True)
    if free is None and total is None:
        v.fail("total", NEEDS_AN_AMOUNT)
    free_amount = None if free is None else parse_amount(free, "free")
    total_amount = None if total is None else parse_amount(total, "total")
    if total_amount is None:
        total_amount = free_amount + used_amount
    if free_amount is None:
        free_amount = total_amount - used_amount
    return BalanceState(
        currency=currency,
        free=free_amount,
        used=used_amount,
        total=total_amount,
        version=1 if current is None else current.version + 1,
    )
