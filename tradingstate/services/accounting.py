"""The Position row's accounting columns, read and written in one place (issue 15).

``position_accounting_apply`` is the ONE function that writes a Position's accounting
figures (``qty``, ``entry_price`` as the average entry, ``realized_pnl``, ``fees``,
``fees_other``, ``fill_count``, ``inferred_fills``) from a ``rules.positions.PositionBook``,
whose figures come from ``tradingstate.rules.accounting``. ``position_book`` reads them back.

Units: ``Position.qty`` is in base units (contracts x contract size, as the venue's positions
and trades are reported), so the instrument terms given to the accounting rules carry
``contract_size=1``: ``position_terms``.
"""

from __future__ import annotations

from decimal import Decimal

from tradingstate.models import Instrument, Position
from tradingstate.rules import accounting
from tradingstate.rules.marks import symbol_parts
from tradingstate.rules.positions import PositionBook

POSITION_ACCOUNTING_AUDIT_FIELDS = (
    "symbol",
    "qty",
    "entry_price",
    "realized_pnl",
    "fees",
    "fees_other",
    "fill_count",
    "inferred_fills",
    "version",
)


def position_terms(symbol: str, instrument: Instrument | None = None) -> accounting.Terms:
    """What accounting needs of a position's instrument, in base units (contract size 1)."""
    if instrument is not None:
        return accounting.Terms(
            base=instrument.base, quote=instrument.quote, settle=instrument.settle or ""
        )
    base, quote, settle = symbol_parts(symbol)
    return accounting.Terms(base=base, quote=quote, settle=settle)


def position_accounting_state(position: Position) -> tuple[accounting.PositionState, Decimal]:
    """(the row's accounting state, a quantity held without an entry price)."""
    unpriced = Decimal(0)
    qty, avg = position.qty, position.entry_price
    if qty == 0:
        avg = None
    elif avg is None:
        qty, unpriced = Decimal(0), position.qty
    state = accounting.PositionState(
        qty=qty,
        avg_entry_price=avg,
        realized_pnl=position.realized_pnl,
        fees_quote=position.fees,
        fees_other=accounting.fee_map(position.fees_other or {}),
        fills=position.fill_count,
        inferred_fills=position.inferred_fills,
    )
    return state, unpriced


def position_book(position: Position | None) -> PositionBook | None:
    if position is None:
        return None
    state, unpriced = position_accounting_state(position)
    return PositionBook(
        symbol=position.symbol, accounting=state, version=position.version, unpriced_qty=unpriced
    )


def position_accounting_apply(position: Position, book: PositionBook) -> None:
    """Write ``book`` onto the row (not saved): the only writer of the accounting columns."""
    record = book.accounting.as_record()
    position.qty = book.qty
    position.entry_price = record["avg_entry_price"]
    position.realized_pnl = record["realized_pnl"]
    position.fees = record["fees_quote"]
    position.fees_other = record["fees_other"]
    position.fill_count = record["fills"]
    position.inferred_fills = record["inferred_fills"]
    position.version = book.version
