"""What a position's accounting figures are worth at a mark (issue 15 item 2). Pure: no ORM.

:func:`valuation` turns a :class:`~tradingstate.rules.accounting.PositionState` and prices
into the figures the API, CLI and console show, in the valuation currency:

- ``unrealized_pnl = (mark - avg_entry) * qty * contract_size``; 0 when flat;
- ``fees = fees_quote + Σ fees_other[c] * mark(c)``;
- ``net_pnl = realized_pnl + unrealized_pnl - fees``.

Missing prices are never zero: without a usable mark (absent, or not a finite price > 0) the
unrealized P&L of an open position is None and ``mark_missing`` is set; an other-currency fee
without a mark leaves ``fees`` None and is listed in ``fees_unconverted``. ``net_pnl`` is None
whenever a part is. Stale marks are used and flagged (``mark_stale``, ``stale_fee_currencies``).

Currencies: ``mark`` is the instrument's price in its quote currency. ``fee_marks`` price each
fee currency in the valuation currency. ``quote_rate`` prices the quote currency in the
valuation currency; leave it None when they are the same (USDT-quoted instruments with a USDT
valuation currency), and every figure is then in the quote currency as accounted.

Rounding: each shown figure that needs more than 18 places (a product of prices and
quantities) is quantized once to 18 places, ROUND_HALF_EVEN (``accounting.q18``); sums of
quantized figures are exact, so ``net_pnl`` equals its parts as shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext

from tradingstate.rules.accounting import FeeMap, Period, PositionState
from tradingstate.rules.money import (
    CONTEXT,
    ZERO,
    Mark,
    check_decimal,
    mark_price,
    mark_stale,
    q18,
)


@dataclass(frozen=True)
class Valuation:
    """One position's shown figures, in the valuation currency (see the module docstring)."""

    realized_pnl: Decimal | None
    unrealized_pnl: Decimal | None
    fees: Decimal | None
    net_pnl: Decimal | None
    mark_price: Decimal | None
    mark_stale: bool
    mark_missing: bool
    fees_known: Decimal | None = None  # ``fees`` without the unconverted currencies
    fees_unconverted: FeeMap = ()  # other-currency fees that had no usable mark
    stale_fee_currencies: tuple[str, ...] = ()
    quote_rate_missing: bool = False
    quote_rate_stale: bool = False
    inferred_fills: int = 0
    adjustments: int = 0

    @property
    def complete(self) -> bool:
        return self.net_pnl is not None

    @property
    def stale(self) -> bool:
        return self.mark_stale or self.quote_rate_stale or bool(self.stale_fee_currencies)

    @property
    def rests_on_inferred(self) -> bool:
        return self.inferred_fills > 0


def _times(value: Decimal | None, rate: Decimal | None) -> Decimal | None:
    if value is None or rate is None:
        return None
    return q18(value * rate)


def valuation(
    state: PositionState,
    mark: Mark | tuple | None,
    contract_size: Decimal,
    fee_marks: Mapping[str, Mark | tuple] | None = None,
    *,
    quote_rate: Mark | tuple | None = None,
    since: Period | None = None,
) -> Valuation:
    """Value ``state`` at ``mark``. With ``since`` (a :class:`Period`: the fills since T), the
    realized P&L and fees are that period's; the unrealized P&L is always the position's now."""
    contract_size = check_decimal(contract_size, "contract_size", positive=True)
    fee_marks = fee_marks or {}
    price = mark_price(mark)
    realized = state.realized_pnl if since is None else since.realized_pnl
    fees_quote = state.fees_quote if since is None else since.fees_quote
    fees_other = state.fees_other if since is None else since.fees_other
    with localcontext(CONTEXT):
        if state.qty == 0:
            unrealized: Decimal | None = ZERO
        elif price is None:
            unrealized = None
        else:
            assert state.avg_entry_price is not None
            unrealized = q18((price - state.avg_entry_price) * state.qty * contract_size)

        rate: Decimal | None = Decimal(1)
        if quote_rate is not None:
            rate = mark_price(quote_rate)
        realized_v = _times(realized, rate)
        unrealized_v = _times(unrealized, rate)
        fees_v = _times(fees_quote, rate)

        unconverted: list[tuple[str, Decimal]] = []
        stale_fees: list[str] = []
        for currency, amount in fees_other:
            fee_mark = fee_marks.get(currency)
            fee_price = mark_price(fee_mark)
            if fee_price is None:
                unconverted.append((currency, amount))
                continue
            if mark_stale(fee_mark):
                stale_fees.append(currency)
            if fees_v is not None:
                fees_v += q18(amount * fee_price)
        fees_known = fees_v
        if unconverted:
            fees_v = None

        net = None
        if None not in (realized_v, unrealized_v, fees_v):
            net = realized_v + unrealized_v - fees_v
    return Valuation(
        realized_pnl=realized_v,
        unrealized_pnl=unrealized_v,
        fees=fees_v,
        net_pnl=net,
        fees_known=fees_known,
        mark_price=price,
        mark_stale=price is not None and mark_stale(mark),
        mark_missing=price is None,
        fees_unconverted=tuple(unconverted),
        stale_fee_currencies=tuple(stale_fees),
        quote_rate_missing=quote_rate is not None and rate is None,
        quote_rate_stale=rate is not None and mark_stale(quote_rate),
        inferred_fills=state.inferred_fills if since is None else since.inferred_fills,
        adjustments=state.adjustments,
    )


@dataclass(frozen=True)
class PnlTotals:
    """Sums over positions. A figure missing for a position (no mark) is left out of its
    total, never valued at zero, and the position is listed in ``incomplete`` (its fees count
    as far as they could be converted: ``fees_known``); ``net_pnl`` is
    ``realized + unrealized - fees`` of the totals as shown."""

    realized_pnl: Decimal
    unrealized_pnl: Decimal
    fees: Decimal
    net_pnl: Decimal
    incomplete: tuple[str, ...] = ()
    stale: tuple[str, ...] = ()
    rests_on_inferred: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.incomplete


def pnl_totals(valuations: Mapping[str, Valuation]) -> PnlTotals:
    """Totals of ``{symbol: Valuation}`` (the API's ``totals``)."""
    realized = unrealized = fees = ZERO
    incomplete, stale, inferred = [], [], []
    with localcontext(CONTEXT):
        for symbol, v in sorted(valuations.items()):
            if not v.complete:
                incomplete.append(symbol)
            if v.stale:
                stale.append(symbol)
            if v.rests_on_inferred:
                inferred.append(symbol)
            realized += v.realized_pnl if v.realized_pnl is not None else ZERO
            unrealized += v.unrealized_pnl if v.unrealized_pnl is not None else ZERO
            fees += v.fees_known if v.fees_known is not None else ZERO
        net = realized + unrealized - fees
    return PnlTotals(
        realized, unrealized, fees, net, tuple(incomplete), tuple(stale), tuple(inferred)
    )
