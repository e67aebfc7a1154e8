"""Setting a position: a bot's book, a staff correction, or the venue's quantity. Pure.

The same rule for every source (``position_set`` and the reconciler's ``positions_sync``):
the symbol is a ccxt unified symbol, ``qty`` is a signed amount (long > 0, short < 0),
``entry_price`` is None or >= 0 and is dropped when the position is flat; a new row
starts at version 1, an existing one goes up by one.

Changed by issue 19: the reconciler used to skip checking ``entry_price`` when the new
quantity was zero (and to accept any symbol); a bad value is now refused on both paths.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradingstate.amounts import parse_amount
from tradingstate.rules import values as v


@dataclass(frozen=True)
class PositionState:
    symbol: str
    qty: Decimal
    entry_price: Decimal | None
    version: int


def position_set(
    current: PositionState | None, *, symbol: object, qty: object, entry_price: object = None
) -> PositionState:
    """The position after setting it to ``qty`` (``current`` is None for a new row)."""
    symbol = v.symbol(symbol)
    new_qty = parse_amount(qty, "qty")
    new_entry = (
        None if entry_price is None else parse_amount(entry_price, "entry_price", non_negative=True)
    )
    return PositionState(
        symbol=symbol,
        qty=new_qty,
        entry_price=new_entry if new_qty != 0 else None,
        version=1 if current is None else current.version + 1,
    )
