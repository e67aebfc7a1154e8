"""Setting a balance: a bot's book, a staff correction, or the venue's. Pure.

The same rule for every source (``balance_set`` and the reconciler's ``balances_sync``):
the currency is a code of 1-32 letters or digits ('-', '_', '.' allowed); ``used``
defaults to 0; at least one of ``total`` and ``free`` is given: ``total`` defaults to
free + used, ``free`` to total - used. The result is consistent: free, used and total are
never negative and ``free + used == total`` exactly (PostgreSQL enforces the same with a
CHECK constraint). A new row starts at version 1, an existing one goes up by one.

Changed by issue 19: the reconciler used to accept any currency code and needed all three
amounts; it now applies exactly these checks and defaults.
Changed by issue 13 (D8): free may no longer be negative and the three must add up (a PUT
of total 10, free 20, used 5 was stored). A venue reporting such figures gets a failed
repair (recorded, shown to staff), never an inconsistent row.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext

from tradingstate.amounts import CONTEXT, parse_amount
from tradingstate.rules import values as v

NEEDS_AN_AMOUNT = "give total, free, or both"
NOT_CONSISTENT = "must equal free + used ({free} + {used} = {sum})"
USED_OVER_TOTAL = "used ({used}) is larger than total ({total}): free would be negative"


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
    with localcontext(CONTEXT):  # 38-digit sums and differences, exactly
        return _balance_set(current, currency=currency, total=total, free=free, used=used)


def _balance_set(current: BalanceState | None, *, currency, total, free, used) -> BalanceState:
    currency = v.currency(currency)
    used_amount = parse_amount("0" if used is None else used, "used", non_negative=True)
    if free is None and total is None:
        v.fail("total", NEEDS_AN_AMOUNT)
    free_amount = None if free is None else parse_amount(free, "free", non_negative=True)
    total_amount = None if total is None else parse_amount(total, "total", non_negative=True)
    if total_amount is None:
        total_amount = parse_amount(free_amount + used_amount, "total")  # still fits 38.18
    elif free_amount is None:
        free_amount = total_amount - used_amount
        if free_amount < 0:
            v.fail("used", USED_OVER_TOTAL.format(used=used_amount, total=total_amount))
    elif free_amount + used_amount != total_amount:
        v.fail(
            "total",
            NOT_CONSISTENT.format(
                free=free_amount, used=used_amount, sum=free_amount + used_amount
            ),
        )
    return BalanceState(
        currency=currency,
        free=free_amount,
        used=used_amount,
        total=total_amount,
        version=1 if current is None else current.version + 1,
    )
