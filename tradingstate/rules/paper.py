"""The paper venue's matching rules. Pure: no ORM, no I/O, no clock.

The paper venue (``exchange = "paper"``) is a small matching simulator whose state lives in
the database (``tradingstate.services.paper`` reads and writes it; this module decides).
Given the venue's book (its open orders) and a symbol's mark price, :func:`match` says which
orders execute, at what price, with what fee; :func:`position_after` and
:func:`balances_after` say how one execution moves the venue's position and balances;
:func:`walk_step` is the seeded random walk of a mark.

Matching (decided for issue 14, item 6)
    - Only ``market`` and ``limit`` orders are accepted (:func:`check_placeable`); every order
      executes in full, in one trade (no partial fills, no order book depth: the mark is
      the only price and it has unlimited size).
    - A **market** order executes on arrival at the mark (taker). With no mark for its
      symbol it cannot be priced and is refused (nothing is placed).
    - A **limit** order executes when the mark crosses it: a buy when ``mark <= limit``, a
      sell when ``mark >= limit``. An order that crosses on arrival (a marketable limit)
      executes at the mark, like a real venue's taker that gets the better price; an order
      that rests and is crossed by a later mark executes at its own limit price (maker),
      like a resting order a real venue fills at its price. With no mark, it rests.
    - The fee is ``quantity * price * fee_rate`` (config ``paper_fee_rate``) rounded to 18
      places (half even), charged in the quote currency (the settle currency on
      derivatives), for makers and takers alike.

Effects of one execution
    - Derivative accounts: the venue's position (signed, base units; contract size 1) moves
      by average cost (:mod:`tradingstate.rules.accounting`: increase averages the entry,
      reduce realizes ``(price - entry) * closed``, flip reopens at the price); the settle
      currency's balance moves by the realized P&L minus the fee.
    - Spot accounts: no position; a buy adds the quantity to the base balance and takes
      ``quantity * price + fee`` from the quote balance, a sell the reverse (``+ notional -
      fee``).
    - ``free`` and ``total`` move together; ``used`` (margin, reserved funds) is not simulated
      and stays as it is.
    - Spot: an execution the balances cannot pay for does not happen
      (:func:`funds_shortfall`): the venue rejects an arriving order and cancels a resting
      one, as a spot venue refuses an order without funds, and no balance goes below zero
      (the local books, and so reconciliation, cannot hold a negative balance). Funds are
      not reserved at placement: a resting order is checked when it executes.

The random walk
    ``walk_step(price, seed, symbol, n, max_step)`` is the mark after step ``n`` (1-based):
    ``price * (1 + u * max_step)`` with ``u`` uniform in [-1, 1] in steps of 1/10000, drawn
    from a generator seeded with ``(seed, symbol, n)`` only, so a seed gives the same path
    on every machine and run, and a step applied twice gives the same price.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from tradingstate.amounts import amount_str
from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.rules import accounting
from tradingstate.rules.money import CONTEXT, q18

MARKET = "market"
LIMIT = "limit"
BUY = "buy"
SELL = "sell"
MAKER = "maker"
TAKER = "taker"
PLACEABLE_TYPES = (MARKET, LIMIT)

TYPE_NOT_SUPPORTED = (
    "The paper venue takes market and limit orders only (got '{type}'); "
    "register the order with type 'market' or 'limit'."
)
NO_MARK = (
    "The paper venue has no mark price for {symbol}, so a market order cannot be priced; "
    "set one (admin: Paper venue mark prices) or use a limit order."
)
LIMIT_NEEDS_PRICE = "A limit order on the paper venue needs a price greater than zero."
FUNDS_SHORT = (
    "insufficient funds on the paper venue: the trade needs {need} {currency}, "
    "the free balance is {free}"
)
WALK_RESOLUTION = 10_000
DEFAULT_PRICE_PLACES = Decimal("1e-8")


@dataclass(frozen=True)
class BookOrder:
    """An order on the venue's book. ``arriving`` is True when it is being placed now."""

    order_id: str
    symbol: str
    side: str
    type: str
    amount: Decimal
    price: Decimal | None = None
    arriving: bool = False


@dataclass(frozen=True)
class Execution:
    """One order executing in full: one venue trade."""

    order_id: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: str  # MAKER | TAKER


@dataclass(frozen=True)
class VenuePosition:
    qty: Decimal = Decimal(0)
    entry_price: Decimal | None = None


@dataclass(frozen=True)
class VenueBalance:
    currency: str
    free: Decimal = Decimal(0)
    used: Decimal = Decimal(0)
    total: Decimal = Decimal(0)


# --- placement and matching ---------------------------------------------------------------
def check_placeable(*, type: str, price: Decimal | None) -> None:
    """Refuse what the venue cannot take, naming the field (nothing is placed)."""
    if type not in PLACEABLE_TYPES:
        message = TYPE_NOT_SUPPORTED.format(type=type)
        raise ValidationFailed(message, fields={"type": [message]})
    if type == LIMIT and not price:
        raise ValidationFailed(LIMIT_NEEDS_PRICE, fields={"price": [LIMIT_NEEDS_PRICE]})


def check_market_priced(*, symbol: str, type: str, mark: Decimal | None) -> None:
    if type == MARKET and mark is None:
        message = NO_MARK.format(symbol=symbol)
        raise Conflict(message, fields={"symbol": [message]})


def crosses(order: BookOrder, mark: Decimal) -> bool:
    if order.type == MARKET:
        return True
    if order.type != LIMIT or order.price is None:
        return False
    return mark <= order.price if order.side == BUY else mark >= order.price


def fill_price(order: BookOrder, mark: Decimal) -> tuple[Decimal, str]:
    """(price, liquidity) of an order the mark crosses (see the module docstring)."""
    if order.type == MARKET or order.arriving:
        return mark, TAKER
    assert order.price is not None
    return order.price, MAKER


def fee_for(quantity: Decimal, price: Decimal, fee_rate: Decimal) -> Decimal:
    with localcontext(CONTEXT):
        return q18(quantity * price * fee_rate)


def match(
    orders: Iterable[BookOrder], mark: Decimal | None, *, fee_rate: Decimal, fee_currency: str
) -> list[Execution]:
    """The executions ``mark`` causes among ``orders`` (in the order given; none without a
    mark). Each crossed order executes in full."""
    if mark is None:
        return []
    out = []
    for order in orders:
        if not crosses(order, mark):
            continue
        price, liquidity = fill_price(order, mark)
        out.append(
            Execution(
                order_id=order.order_id,
                symbol=order.symbol,
                side=order.side,
                quantity=order.amount,
                price=price,
                fee=fee_for(order.amount, price, fee_rate),
                fee_currency=fee_currency,
                liquidity=liquidity,
            )
        )
    return out


# --- effects ------------------------------------------------------------------------------
def position_after(position: VenuePosition, execution: Execution) -> tuple[VenuePosition, Decimal]:
    """The venue's position after ``execution`` and the P&L it realized (quote currency).

    A position without an entry price (staged by hand) is valued at the execution's price.
    """
    qty = position.qty
    entry = position.entry_price if qty != 0 else None
    if qty != 0 and entry is None:
        entry = execution.price
    state = accounting.PositionState(qty=qty, avg_entry_price=entry)
    # base units, contract size 1; fees are the balances' concern, not the position's
    terms = accounting.Terms(base="BASE", quote="QUOTE")
    fill = accounting.Fill(side=execution.side, qty=execution.quantity, price=execution.price)
    after, effect = accounting.step(state, fill, terms)
    return VenuePosition(qty=after.qty, entry_price=after.avg_entry_price), effect.realized_pnl


def balances_after(
    balances: Mapping[str, VenueBalance],
    execution: Execution,
    *,
    derivative: bool,
    base: str,
    quote: str,
    realized_pnl: Decimal = Decimal(0),
) -> dict[str, VenueBalance]:
    """The balances ``execution`` changes, keyed by currency (others are not returned).

    ``quote`` is the quote currency on spot and the settle currency on derivatives."""
    with localcontext(CONTEXT):
        if derivative:
            deltas = {quote: realized_pnl - execution.fee}
        else:
            notional = execution.quantity * execution.price
            sign = 1 if execution.side == BUY else -1
            deltas = {
                base: sign * execution.quantity,
                quote: -sign * notional - execution.fee,
            }
        out = {}
        for currency, delta in deltas.items():
            current = balances.get(currency) or VenueBalance(currency=currency)
            out[currency] = replace(
                current, free=q18(current.free + delta), total=q18(current.total + delta)
            )
        return out


def funds_shortfall(before: Mapping[str, VenueBalance], after: Mapping[str, VenueBalance]) -> str:
    """Why a spot execution cannot happen: the first balance (by currency) it would take
    below zero, as a message; "" when the balances pay for it. ``after``: ``balances_after``."""
    for currency in sorted(after):
        if after[currency].free < 0:
            free = before[currency].free if currency in before else Decimal(0)
            with localcontext(CONTEXT):
                need = free - after[currency].free
            return FUNDS_SHORT.format(
                need=amount_str(need), currency=currency, free=amount_str(free)
            )
    return ""


# --- the random walk ----------------------------------------------------------------------
def walk_step(
    price: Decimal,
    *,
    seed: int,
    symbol: str,
    n: int,
    max_step: Decimal,
    price_step: Decimal = Decimal(0),
) -> Decimal:
    """The mark after the walk's step ``n`` from ``price`` (deterministic; never <= 0)."""
    draw = random.Random(f"{seed}:{symbol}:{n}").randint(-WALK_RESOLUTION, WALK_RESOLUTION)
    with localcontext(CONTEXT):
        moved = price * (1 + Decimal(draw) * max_step / WALK_RESOLUTION)
        tick = price_step if price_step > 0 else DEFAULT_PRICE_PLACES
        new = (moved / tick).quantize(Decimal(1), rounding=ROUND_HALF_EVEN) * tick
        if new <= 0:
            new = tick
        return q18(new)
