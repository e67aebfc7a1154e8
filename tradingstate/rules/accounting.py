"""Position accounting by average cost (issue 15 items 2 and 3). Pure: no ORM, no I/O.

The one rule set for what a position's fills are worth. The fill service applies each fill
with :func:`apply_fill` (or :func:`step`, which also returns the fill's own contribution) and
stores the new :class:`PositionState` on the Position row, so reads never replay history; the
rebuild command recomputes the same state with :func:`replay` and must find it equal.

API
    - inputs: :class:`Fill` (side, qty, price, fee, fee_currency, inferred), :class:`Adjustment`
      (a change without a fill), an instrument read through :class:`InstrumentTerms` (base,
      quote, settle, contract_size: ``models.Instrument`` fits; :class:`Terms` is the plain one);
    - state: :class:`PositionState` (immutable; :data:`FLAT` is the empty one;
      ``PositionState(**state.as_record())`` round-trips through the row);
    - rules: :func:`apply_fill` -> new state; :func:`step` -> (new state, :class:`FillEffect`);
      :func:`replay` / :func:`replay_steps` for the rebuild; :func:`period` /
      :func:`period_between` -> :class:`Period` for ``?since=``; :func:`entry_price_mismatch`;
      :func:`supports`;
    - bad input raises :class:`AccountingInputError` (a ``ValidationFailed``: 400 through the
      API's handler) naming the field; messages are module constants.
    What it is worth at a price: :mod:`tradingstate.rules.valuation`.

Units
    ``qty`` (of a fill and of a position) is in contracts, the unit of the venue's orders and
    trades; a position holds ``qty * contract_size`` of the base asset. Prices are quote per
    unit of base. Every money figure of a state (realized P&L, fees) is in the instrument's
    quote currency. Spot and linear contracts only: an inverse contract (settled in the base
    currency) is refused (see :func:`supports`).

The rules, for a fill of signed size ``d`` (buy +qty, sell -qty) at price ``P``
    - increase (same direction, or from flat): the average entry price moves, quantity-weighted:
      ``avg' = (|q|·avg + |d|·P) / (|q| + |d|)``;
    - reduce (``|d| ≤ |q|``): realizes ``(P - avg) * |d| * sign(q) * contract_size``; the average
      is unchanged (and empty once flat);
    - flip (``|d| > |q|``): closes ``|q|`` at the average as above, then opens ``|d| - |q|``
      at ``P``.
    Fees never enter ``realized_pnl`` (the gross trading result); they are kept on their own:
    - in the quote currency: at face value, in ``fees_quote``;
    - in the base currency: the fee also reduces the quantity the fill leaves (a buy of ``q``
      with fee ``f`` adds ``q - f``, a sell removes ``q + f``; in contracts ``f / contract_size``)
      and is valued at the fill price, ``f * P``, in ``fees_quote``;
    - in any other currency: kept per currency in ``fees_other`` and converted at that
      currency's mark only when shown (:func:`tradingstate.rules.valuation.valuation`).
    Inferred fills (issue 14: the venue says filled but lost the trades) count like any other
    and are counted in ``inferred_fills``, so every figure resting on them can be flagged.
    An :class:`Adjustment` (the ``entry_price_mismatch`` repair, or a quantity adopted from the
    venue) changes quantity and/or average without realizing anything; it is counted too.

Rounding (the only inexact step, and where it applies)
    Arithmetic runs in a 160-digit context, so sums and products of stored amounts are exact.
    Each figure a fill produces is quantized to 18 places, ROUND_HALF_EVEN (:func:`q18`), before
    it is added to the state: the average entry price (a division), the fill's realized P&L
    (``price * qty * contract_size`` may carry 54 places), a base fee's value (``f * P``) and, for
    ``contract_size ≠ 1``, a base fee in contracts (``f / contract_size``). 18 places is the
    Position row's scale, so a state saved and read back is the same state, and replay equals
    the incremental figures exactly. Error against exact arithmetic, per fill: at most
    ½·10⁻¹⁸ on realized P&L, ½·10⁻¹⁸ on fees, and ½·10⁻¹⁸ * |qty| * contract_size carried
    into later P&L by the rounded average (plus ½·10⁻¹⁸ * contract_size * |mark - P| for a base
    fee in contracts when ``contract_size ≠ 1``).

Order
    Average cost depends on the order of the fills. :func:`replay` applies them in the order
    given: to agree with the incremental figures, give them in the order they were applied
    (Fill primary key, adjustments interleaved), not by ``executed_at`` — a fill the reconciler
    finds late was applied last. Adjustments are part of the sequence: record them (they are
    audited anyway) so the rebuild replays them in place.

``?since=T`` without replay
    :func:`step` returns the fill's :class:`FillEffect` (its own realized P&L and fees). Store
    it with the Fill row when the fill is applied: the realized figures since ``T`` are then the
    sum of the effects of the fills executed at or after ``T`` (one aggregate query, or
    :func:`period` here), and the effects of all fills sum exactly to the state's figures.
    :func:`period_between` gives the same from two states (say an hourly snapshot and now).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Protocol

from tradingstate.rules.money import (
    CONTEXT,
    PLACES,
    ZERO,
    AccountingInputError,
    Mark,
    check_decimal,
    mark_price,
    q18,
)

__all__ = [  # the public API (Mark, q18 and friends re-exported from rules.money)
    "BUY",
    "DEFAULT_ENTRY_PRICE_TOLERANCE",
    "FLAT",
    "PLACES",
    "SELL",
    "AccountingInputError",
    "Adjustment",
    "Fill",
    "FillEffect",
    "InstrumentTerms",
    "Mark",
    "Period",
    "PositionState",
    "Terms",
    "apply_fill",
    "entry_price_mismatch",
    "fee_map",
    "mark_price",
    "period",
    "period_between",
    "q18",
    "replay",
    "replay_steps",
    "step",
    "supports",
]

BUY, SELL = "buy", "sell"
DEFAULT_ENTRY_PRICE_TOLERANCE = Decimal("0.0001")

# error messages (module constants: tests assert on them)
BAD_SIDE = "must be 'buy' or 'sell'"
FEE_CURRENCY_REQUIRED = "is required when the fee is not zero"
BASE_FEE_TOO_LARGE = "a fee in the base currency must leave a quantity in the fill's direction"
INVERSE_UNSUPPORTED = "inverse contracts (settled in the base currency) are not supported"
AVG_IFF_OPEN = "is required when qty is not zero, and must be empty when it is"
ENTRY_PRICE_REQUIRED = "is required when the adjusted position opens or changes direction"
EMPTY_ADJUSTMENT = "an adjustment sets qty, entry_price or both"


class InstrumentTerms(Protocol):
    """What accounting reads of an instrument. ``models.Instrument`` and
    ``exchanges.base.InstrumentInfo`` both fit; :class:`Terms` is the plain one."""

    base: str
    quote: str
    settle: str
    contract_size: Decimal


@dataclass(frozen=True)
class Terms:
    base: str
    quote: str
    contract_size: Decimal = Decimal(1)
    settle: str = ""


def supports(instrument: InstrumentTerms) -> bool:
    """True for spot and linear contracts; False for inverse ones (settled in the base)."""
    settle = (getattr(instrument, "settle", "") or "").upper()
    return settle != instrument.base.upper()


@dataclass(frozen=True)
class Fill:
    """One fill as accounting sees it. ``qty`` in contracts; ``fee`` may be negative (a rebate)."""

    side: str
    qty: Decimal
    price: Decimal
    fee: Decimal = ZERO
    fee_currency: str = ""
    inferred: bool = False
    trade_id: str = ""  # for messages only

    def __post_init__(self):
        if self.side not in (BUY, SELL):
            raise AccountingInputError("side", BAD_SIDE)
        set_ = object.__setattr__
        set_(self, "qty", check_decimal(self.qty, "qty", positive=True))
        set_(self, "price", check_decimal(self.price, "price", non_negative=True))
        set_(self, "fee", check_decimal(self.fee, "fee"))
        set_(self, "fee_currency", (self.fee_currency or "").strip().upper())
        if self.fee != 0 and not self.fee_currency:
            raise AccountingInputError("fee_currency", FEE_CURRENCY_REQUIRED)


@dataclass(frozen=True)
class Adjustment:
    """A change made without a fill: the ``entry_price_mismatch`` repair (adopt the venue's
    entry price) or a quantity adopted from the venue. Realized P&L is never rewritten.
    Recorded and replayed in sequence with the fills so the rebuild agrees."""

    qty: Decimal | None = None
    entry_price: Decimal | None = None

    def __post_init__(self):
        if self.qty is None and self.entry_price is None:
            raise AccountingInputError("adjustment", EMPTY_ADJUSTMENT)
        if self.qty is not None:
            object.__setattr__(self, "qty", check_decimal(self.qty, "qty"))
        if self.entry_price is not None:
            price = check_decimal(self.entry_price, "entry_price", non_negative=True)
            object.__setattr__(self, "entry_price", price)


FeeMap = tuple[tuple[str, Decimal], ...]  # sorted by currency, no zero amounts


def fee_map(value: Mapping[str, object] | Iterable[tuple[str, object]] | None) -> FeeMap:
    """Canonical per-currency fees from a dict or pairs (amounts as Decimal or string)."""
    items = value.items() if isinstance(value, Mapping) else (value or ())
    totals: dict[str, Decimal] = {}
    for currency, amount in items:
        number = Decimal(amount) if isinstance(amount, str) else amount
        number = check_decimal(number, f"fees_other.{currency}")
        key = currency.strip().upper()
        totals[key] = totals.get(key, ZERO) + number
    return tuple(sorted((c, a) for c, a in totals.items() if a != 0))


def _add_fees(a: FeeMap, b: FeeMap) -> FeeMap:
    return fee_map([*a, *b]) if b else a


@dataclass(frozen=True)
class PositionState:
    """One position's accounting figures after a sequence of fills (immutable).

    ``qty`` signed contracts (long > 0); ``avg_entry_price`` None exactly when flat;
    ``realized_pnl`` gross, quote currency; ``fees_quote`` quote and base fees in the quote
    currency; ``fees_other`` fees in other currencies, unconverted; ``fills``,
    ``inferred_fills`` and ``adjustments`` count what the figures rest on.
    ``PositionState(**state.as_record())`` round-trips (the Position row's fields).
    """

    qty: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    fees_other: FeeMap = ()
    fills: int = 0
    inferred_fills: int = 0
    adjustments: int = 0

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "qty", check_decimal(self.qty, "qty"))
        set_(self, "realized_pnl", check_decimal(self.realized_pnl, "realized_pnl"))
        set_(self, "fees_quote", check_decimal(self.fees_quote, "fees_quote"))
        set_(self, "fees_other", fee_map(self.fees_other))
        if (self.qty == 0) != (self.avg_entry_price is None):
            raise AccountingInputError("avg_entry_price", AVG_IFF_OPEN)
        if self.avg_entry_price is not None:
            avg = check_decimal(self.avg_entry_price, "avg_entry_price", non_negative=True)
            set_(self, "avg_entry_price", avg)

    @property
    def is_flat(self) -> bool:
        return self.qty == 0

    @property
    def rests_on_inferred(self) -> bool:
        return self.inferred_fills > 0

    @property
    def fees_other_map(self) -> dict[str, Decimal]:
        return dict(self.fees_other)

    def base_qty(self, contract_size: Decimal) -> Decimal:
        """Signed quantity of the base asset (what ``ExchangePosition.qty`` holds)."""
        with localcontext(CONTEXT):
            return self.qty * contract_size

    def as_record(self) -> dict:
        """The fields to store; ``fees_other`` as ``{currency: "amount"}`` for a JSON column."""
        return {
            "qty": self.qty,
            "avg_entry_price": self.avg_entry_price,
            "realized_pnl": self.realized_pnl,
            "fees_quote": self.fees_quote,
            "fees_other": {c: format(a, "f") for c, a in self.fees_other},
            "fills": self.fills,
            "inferred_fills": self.inferred_fills,
            "adjustments": self.adjustments,
        }


FLAT = PositionState()


@dataclass(frozen=True)
class FillEffect:
    """What one fill (or adjustment) did: its own share of the figures. Store it with the fill
    for ``?since=``. ``closed_qty`` closed at the average, ``opened_qty`` added at the price."""

    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    fees_other: FeeMap = ()
    qty_delta: Decimal = ZERO
    closed_qty: Decimal = ZERO
    opened_qty: Decimal = ZERO
    inferred: bool = False
    adjustment: bool = False


def _signed_size(fill: Fill, instrument: InstrumentTerms) -> tuple[Decimal, Decimal, FeeMap]:
    """(signed contracts the fill moves, its fee in the quote currency, its other fees)."""
    size = fill.qty if fill.side == BUY else -fill.qty
    if fill.fee == 0:
        return size, ZERO, ()
    if fill.fee_currency == instrument.quote.upper():
        return size, fill.fee, ()
    if fill.fee_currency == instrument.base.upper():
        contracts = q18(fill.fee / instrument.contract_size)
        moved = size - contracts
        if moved == 0 or (moved > 0) != (size > 0):
            raise AccountingInputError("fee", BASE_FEE_TOO_LARGE)
        return moved, q18(fill.fee * fill.price), ()
    return size, ZERO, ((fill.fee_currency, fill.fee),)


def _apply_fill(state: PositionState, fill: Fill, instrument: InstrumentTerms):
    size, fee_quote, fee_other = _signed_size(fill, instrument)
    qty, avg, price = state.qty, state.avg_entry_price, fill.price
    new_qty = qty + size
    realized = closed = ZERO
    if qty == 0 or (qty > 0) == (size > 0):  # open or increase
        opened = abs(size)
        new_avg = q18(price if avg is None else (abs(qty) * avg + opened * price) / abs(new_qty))
    else:  # reduce, close or flip
        assert avg is not None
        closed = min(abs(size), abs(qty))
        opened = abs(size) - closed
        direction = 1 if qty > 0 else -1
        realized = q18((price - avg) * closed * direction * instrument.contract_size)
        new_avg = None if new_qty == 0 else (q18(price) if opened else avg)
    after = PositionState(
        qty=new_qty,
        avg_entry_price=new_avg,
        realized_pnl=state.realized_pnl + realized,
        fees_quote=state.fees_quote + fee_quote,
        fees_other=_add_fees(state.fees_other, fee_other),
        fills=state.fills + 1,
        inferred_fills=state.inferred_fills + (1 if fill.inferred else 0),
        adjustments=state.adjustments,
    )
    effect = FillEffect(realized, fee_quote, fee_other, size, closed, opened, fill.inferred)
    return after, effect


def _apply_adjustment(state: PositionState, adjustment: Adjustment):
    new_qty = state.qty if adjustment.qty is None else adjustment.qty
    if new_qty == 0:
        new_avg = None
    elif adjustment.entry_price is not None:
        new_avg = q18(adjustment.entry_price)
    elif state.qty != 0 and (state.qty > 0) == (new_qty > 0):
        new_avg = state.avg_entry_price
    else:
        raise AccountingInputError("entry_price", ENTRY_PRICE_REQUIRED)
    after = PositionState(
        qty=new_qty,
        avg_entry_price=new_avg,
        realized_pnl=state.realized_pnl,
        fees_quote=state.fees_quote,
        fees_other=state.fees_other,
        fills=state.fills,
        inferred_fills=state.inferred_fills,
        adjustments=state.adjustments + 1,
    )
    return after, FillEffect(qty_delta=new_qty - state.qty, adjustment=True)


def step(
    state: PositionState, event: Fill | Adjustment, instrument: InstrumentTerms
) -> tuple[PositionState, FillEffect]:
    """Apply one fill (or adjustment): the new state and what this event contributed."""
    if not supports(instrument):
        raise AccountingInputError("instrument", INVERSE_UNSUPPORTED)
    check_decimal(instrument.contract_size, "contract_size", positive=True)
    with localcontext(CONTEXT):
        if isinstance(event, Adjustment):
            return _apply_adjustment(state, event)
        return _apply_fill(state, event, instrument)


def apply_fill(
    state: PositionState, fill: Fill | Adjustment, instrument: InstrumentTerms
) -> PositionState:
    """The state after ``fill``: the incremental path of the fill service."""
    return step(state, fill, instrument)[0]


def replay_steps(
    events: Iterable[Fill | Adjustment],
    instrument: InstrumentTerms,
    start: PositionState = FLAT,
) -> list[tuple[PositionState, FillEffect]]:
    """Every intermediate state with its effect, in order (the rebuild stores both)."""
    out = []
    state = start
    for event in events:
        state, effect = step(state, event, instrument)
        out.append((state, effect))
    return out


def replay(
    events: Iterable[Fill | Adjustment],
    instrument: InstrumentTerms,
    start: PositionState = FLAT,
) -> PositionState:
    """The state after ``events`` in the order given (the order they were applied)."""
    state = start
    for event in events:
        state = step(state, event, instrument)[0]
    return state


@dataclass(frozen=True)
class Period:
    """Realized figures of a stretch of fills (``?since=``): sums of their effects."""

    realized_pnl: Decimal = ZERO
    fees_quote: Decimal = ZERO
    fees_other: FeeMap = ()
    fills: int = 0
    inferred_fills: int = 0

    def __post_init__(self):
        object.__setattr__(self, "fees_other", fee_map(self.fees_other))


def period(effects: Iterable[FillEffect]) -> Period:
    """Sum the effects of the fills in the period (adjustments contribute nothing)."""
    realized = fees = ZERO
    others: list[tuple[str, Decimal]] = []
    fills = inferred = 0
    with localcontext(CONTEXT):
        for effect in effects:
            realized += effect.realized_pnl
            fees += effect.fees_quote
            others.extend(effect.fees_other)
            fills += 0 if effect.adjustment else 1
            inferred += 1 if effect.inferred else 0
    return Period(realized, fees, fee_map(others), fills, inferred)


def period_between(earlier: PositionState, later: PositionState) -> Period:
    """The figures ``later`` added to ``earlier`` (a snapshot at T and now)."""
    with localcontext(CONTEXT):
        negated = [(c, -a) for c, a in earlier.fees_other]
        return Period(
            realized_pnl=later.realized_pnl - earlier.realized_pnl,
            fees_quote=later.fees_quote - earlier.fees_quote,
            fees_other=fee_map([*later.fees_other, *negated]),
            fills=later.fills - earlier.fills,
            inferred_fills=later.inferred_fills - earlier.inferred_fills,
        )


def entry_price_mismatch(
    local: Decimal | None,
    venue: Decimal | None,
    tolerance: Decimal = DEFAULT_ENTRY_PRICE_TOLERANCE,
) -> bool:
    """True when the venue's entry price differs from ours by more than ``tolerance``,
    relative to the venue's: ``|local - venue| > tolerance * venue``.

    No verdict (False) when the venue gives no entry price or zero (flat on most venues);
    True when the venue has one and we have none (adopting it is the repair).
    """
    tolerance = check_decimal(tolerance, "entry_price_tolerance", non_negative=True)
    if venue is None or venue == 0:
        return False
    if local is None:
        return True
    with localcontext(CONTEXT):
        return abs(local - venue) > tolerance * abs(venue)
