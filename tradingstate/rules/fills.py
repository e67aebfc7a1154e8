"""Fill rules (issue 14): what one fill does to its order and its position. Pure: no ORM.

The same rules for a bot posting a fill (``services.fills.fill_record``) and for the
reconciler recording a venue trade (``services.fills.fills_record_from_venue``,
``missing_fill``) or correcting one (``fills_correct``, ``fill_mismatch``); ``source`` is not
needed: a fill is a fact whoever reports it.

The order
    Each order keeps ``fills_qty``, the sum of its Fill rows. A fill adds its quantity to
    ``fills_qty`` and raises ``filled_qty`` only where the fills go past it:
    ``filled' = max(filled, fills_qty')``. An order whose ``filled_qty`` was already raised
    (a bot's transition, or the venue's report applied by ``order_state_mismatch``/
    ``stale_local_order``) has its gap filled by the fills, not counted twice. Fills past the
    order's quantity are refused (:data:`OVERFILL`), never clamped. An active order walks the
    status machine forward to ``partially_filled``/``filled`` (a fill is evidence the order
    reached the venue); a terminal one keeps its status. The average fill price moves only
    with the quantity a fill adds to ``filled_qty``. Invariant after a completed pass:
    ``filled_qty == fills_qty``.

The position
    Through :mod:`tradingstate.rules.accounting` (one rule set): buy adds, sell subtracts, a
    fee in the base currency reduces what the fill leaves (a spot buy of ``q`` with fee ``f``
    in the base currency holds ``q - f``: the local amount no longer stays above the wallet).
    :func:`position_delta` is the same quantity without the accounting state, for the diff's
    projection (``reconciliation.diff_fills``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from tradingstate import transitions
from tradingstate.amounts import amount_str, quantize_amount
from tradingstate.errors import ApplicationError
from tradingstate.rules import accounting
from tradingstate.rules.money import CONTEXT
from tradingstate.rules.orders import remaining
from tradingstate.rules.positions import PositionBook

OVERFILL = (
    "Fill {trade_id} of {qty} would overfill order '{client_order_id}' "
    "({filled} of {total} filled)."
)
FILL_CONFLICT = "Trade '{trade_id}' is already recorded with different content: {fields}."
INFERRED_PREFIX = "inferred-"


class Overfill(ApplicationError):
    code = "overfill"
    http_status = 409


@dataclass(frozen=True)
class OrderFills:
    """What a fill reads and writes of its order."""

    client_order_id: str
    quantity: Decimal
    filled_qty: Decimal
    fills_qty: Decimal
    avg_fill_price: Decimal | None
    status: str
    version: int

    @property
    def remaining_qty(self) -> Decimal:
        return remaining(self.quantity, self.filled_qty)


def order_after_fill(order: OrderFills, *, trade_id: str, qty: Decimal, price: Decimal):
    """The order after one more fill of ``qty`` at ``price`` (see the module's rules). The
    arithmetic runs in the money rules' wide context: Python's default 28 digits rounded sums
    of 38-digit amounts, and an average price of 11 integer digits and 18 places could not be
    quantized at all (a 500 on a valid fill)."""
    with localcontext(CONTEXT):
        return _order_after_fill(order, trade_id=trade_id, qty=qty, price=price)


def _order_after_fill(order: OrderFills, *, trade_id: str, qty: Decimal, price: Decimal):
    fills = order.fills_qty + qty
    if fills > order.quantity:
        msg = OVERFILL.format(
            trade_id=trade_id,
            qty=amount_str(qty),
            client_order_id=order.client_order_id,
            filled=amount_str(order.fills_qty),
            total=amount_str(order.quantity),
        )
        raise Overfill(msg, fields={"quantity": [msg]})
    filled, avg = order.filled_qty, order.avg_fill_price
    if fills > filled:
        added = fills - filled
        old_value = (avg or Decimal(0)) * filled
        avg = quantize_amount((old_value + price * added) / fills)
        filled = fills
    elif avg is None:
        avg = price
    status = order.status
    if status in transitions.ACTIVE and filled > 0:
        target = transitions.FILLED if filled == order.quantity else transitions.PARTIALLY_FILLED
        if transitions.transition_path(status, target) is not None:
            status = target
    return replace(
        order,
        filled_qty=filled,
        fills_qty=fills,
        avg_fill_price=avg,
        status=status,
        version=order.version + 1,
    )


def order_after_fill_change(order: OrderFills, *, trade_id: str, old_qty: Decimal, new_qty):
    """The order after one of its fills is corrected from ``old_qty`` to ``new_qty``
    (``fill_mismatch``). A filled quantity that matched the fills follows them (the venue's
    trade is the truth about the trade); otherwise it only rises."""
    with localcontext(CONTEXT):
        fills = order.fills_qty - old_qty + new_qty
    if fills > order.quantity:
        msg = OVERFILL.format(
            trade_id=trade_id,
            qty=amount_str(new_qty),
            client_order_id=order.client_order_id,
            filled=amount_str(order.fills_qty - old_qty),
            total=amount_str(order.quantity),
        )
        raise Overfill(msg, fields={"quantity": [msg]})
    filled = fills if order.filled_qty == order.fills_qty else max(order.filled_qty, fills)
    return replace(order, filled_qty=filled, fills_qty=fills, version=order.version + 1)


def fill_differences(existing, *, quantity, price, fee=None, fee_currency=None) -> list[str]:
    """The fields in which a recorded fill differs from a report of the same trade
    (``fee`` and ``fee_currency`` compared only when given)."""
    differing = []
    if existing.quantity != quantity:
        differing.append("quantity")
    if existing.price != price:
        differing.append("price")
    if fee is not None and existing.fee != fee:
        differing.append("fee")
    if (
        fee_currency is not None
        and (existing.fee_currency or "").upper() != (fee_currency or "").upper()
        and (existing.fee or fee)
    ):
        differing.append("fee_currency")
    return differing


def attach_differences(existing, order) -> list[str]:
    """Why a trade recorded with no order (the pass saw it first) is not ``order``'s: the
    fields in which they disagree. The venue's side, and the ids it reported for the trade's
    order where it reported any, must be the order's."""
    differing = []
    if existing.side != order.side:
        differing.append("side")
    if existing.client_order_id and existing.client_order_id != order.client_order_id:
        differing.append("client_order_id")
    if (
        existing.exchange_order_id
        and order.exchange_order_id
        and existing.exchange_order_id != order.exchange_order_id
    ):
        differing.append("exchange_order_id")
    return differing


def position_delta(
    *, side: str, qty: Decimal, fee: Decimal, fee_currency: str, base: str
) -> Decimal:
    """The signed quantity a fill moves the position by (accounting's rule, without state):
    buy +qty, sell -qty, less a fee paid in the base currency."""
    size = qty if side == accounting.BUY else -qty
    if fee and (fee_currency or "").upper() == base.upper():
        size -= fee
    return size


def flat_book(symbol: str) -> PositionBook:
    return PositionBook(symbol=symbol, accounting=accounting.FLAT, version=0)


def book_after_fill(
    book: PositionBook, fill: accounting.Fill, terms: accounting.InstrumentTerms
) -> tuple[PositionBook, accounting.FillEffect]:
    """The position after one fill, and the fill's own share of the figures. An instrument
    accounting does not value (inverse contracts) still moves by the fill's quantity."""
    if not accounting.supports(terms):
        size = fill.qty if fill.side == accounting.BUY else -fill.qty
        moved = PositionBook(
            symbol=book.symbol,
            accounting=book.accounting,
            version=book.version + 1,
            unpriced_qty=book.unpriced_qty + size,
        )
        return moved, accounting.FillEffect(qty_delta=size)
    state, effect = accounting.step(book.accounting, fill, terms)
    new = PositionBook(
        symbol=book.symbol,
        accounting=state,
        version=book.version + 1,
        unpriced_qty=book.unpriced_qty,
    )
    return new, effect


def book_after_fill_change(
    book: PositionBook,
    *,
    side: str,
    qty_delta: Decimal,
    fee_quote_delta: Decimal,
    price: Decimal,
    terms: accounting.InstrumentTerms,
) -> PositionBook:
    """The position after a recorded fill is corrected (``fill_mismatch``): the quantity
    difference as an accounting adjustment (realized P&L is never rewritten) and the
    difference in quote fees."""
    signed = qty_delta if side == accounting.BUY else -qty_delta
    state = book.accounting
    if signed and accounting.supports(terms):
        new_qty = state.qty + signed
        entry = None
        if new_qty != 0 and (state.qty == 0 or (state.qty > 0) != (new_qty > 0)):
            entry = price
        adjustment = accounting.Adjustment(qty=new_qty, entry_price=entry)
        state = accounting.apply_fill(state, adjustment, terms)
        unpriced = book.unpriced_qty
    else:
        unpriced = book.unpriced_qty + signed
    if fee_quote_delta:
        state = replace(state, fees_quote=state.fees_quote + fee_quote_delta)
    return PositionBook(
        symbol=book.symbol, accounting=state, version=book.version + 1, unpriced_qty=unpriced
    )


def inferred_trade_id(order_key: str, filled_qty: Decimal) -> str:
    """A stable id for the fill inferred for an order at a filled quantity (the same pass
    twice, or two hosts, infer the same id: the unique key makes it once)."""
    return f"{INFERRED_PREFIX}{order_key}-{amount_str(filled_qty)}"[:128]


def book_adopt_quantity(
    book: PositionBook,
    *,
    qty: Decimal,
    venue_entry_price: Decimal | None,
    fallback_price: Decimal,
    terms: accounting.InstrumentTerms,
) -> PositionBook:
    """The position at the venue's quantity after the pass's fills (derivative accounts):
    an accounting adjustment of the quantity and the venue's entry price (the venue is the
    truth after the pass); with no venue entry price, the average is kept unless the position
    opens or changes direction (then ``fallback_price``, the last fill's)."""
    state = book.accounting
    if not accounting.supports(terms):
        return replace(book, unpriced_qty=qty - state.qty, version=book.version)
    entry = venue_entry_price
    if entry is None and qty != 0 and (state.qty == 0 or (state.qty > 0) != (qty > 0)):
        entry = fallback_price
    if qty == 0:
        entry = None
    new = accounting.apply_fill(state, accounting.Adjustment(qty=qty, entry_price=entry), terms)
    return PositionBook(symbol=book.symbol, accounting=new, version=book.version, unpriced_qty=0)
