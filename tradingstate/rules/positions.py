"""Setting a position: a bot's book, a staff correction, or the venue's quantity. Pure.

The same rule for every source (``position_set`` and the reconciler's ``positions_sync``):
the symbol is a ccxt unified symbol, ``qty`` is a signed amount (long > 0, short < 0),
``entry_price`` is None or >= 0 and is dropped when the position is flat; a new row
starts at version 1, an existing one goes up by one.

``position_adopt_entry_price`` (issue 15) is the ``entry_price_mismatch`` repair: an accounting
``Adjustment`` through ``rules.accounting``, so realized P&L is never rewritten.

Changed by issue 19: the reconciler used to skip checking ``entry_price`` when the new
quantity was zero (and to accept any symbol); a bad value is now refused on both paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from tradingstate.amounts import CONTEXT, parse_amount
from tradingstate.errors import ValidationFailed
from tradingstate.rules import accounting
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


def position_symbol_new(
    symbol: object, *, known_symbol: Callable[[str], bool] | None, account_name: str = ""
) -> str:
    """A position a bot or staff opens (no row yet): the same symbol rule as a bot's new
    order (issue 13, D7): one of the account's instruments when it lists any, and always
    the strict ccxt syntax. The venue's positions (the reconciler) are taken as they are."""
    return v.symbol_new(symbol, known_symbol=known_symbol, account_name=account_name)


# --- the venue's entry price (issue 15 item 3) ---------------------------------------------
@dataclass(frozen=True)
class PositionBook:
    """A position's row as accounting sees it: its figures (``qty`` in base units, so the
    instrument terms carry ``contract_size=1``) and the row's version."""

    symbol: str
    accounting: accounting.PositionState
    version: int
    # a quantity held with no entry price (set by a bot or staff without one): accounting
    # sees the position as flat until an entry price is adopted
    unpriced_qty: Decimal = Decimal(0)

    @property
    def qty(self) -> Decimal:
        return CONTEXT.add(self.accounting.qty, self.unpriced_qty)


ENTRY_PRICE_FLAT = "the position is flat: there is no entry price to adopt"


def position_adopt_entry_price(
    current: PositionBook, *, entry_price: object, terms: accounting.InstrumentTerms
) -> PositionBook:
    """The ``entry_price_mismatch`` repair: adopt the venue's average entry price as an
    accounting :class:`~tradingstate.rules.accounting.Adjustment`. Quantity, realized P&L and
    fees are untouched (realized P&L is never rewritten). A position we hold without an entry
    price gets one the same way (the adjustment opens it at the venue's price)."""
    price = parse_amount(entry_price, "entry_price", positive=True)
    if current.qty == 0:
        msg = f"entry_price: {ENTRY_PRICE_FLAT}"
        raise ValidationFailed(msg, fields={"entry_price": [ENTRY_PRICE_FLAT]})
    adjustment = accounting.Adjustment(
        qty=current.qty if current.unpriced_qty else None, entry_price=price
    )
    new = accounting.apply_fill(current.accounting, adjustment, terms)
    return PositionBook(symbol=current.symbol, accounting=new, version=current.version + 1)
