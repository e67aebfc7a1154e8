"""Order rules: creating an order and moving it along the status machine. Pure: no ORM.

The status machine itself is the contract table in ``tradingstate.transitions``. The bots'
services (``order_register``, ``order_transition``, ``order_bulk_transition``) and the
reconciler's bulk core (``orders_create_from_exchange``, ``orders_sync_state``) compute
every new order row here.

What ``source`` changes, and nothing else:

- **Transitions.** A bot moves one legal step at a time (``transitions.can_transition``).
  The venue reports where the order *is*: it may be several legal steps ahead (pending ->
  filled, through submitted) or in the same state with more filled (zero steps); any
  state reachable by legal moves is accepted (``transitions.transition_path``).
- **Creation.** A bot *requests* a new order: it starts ``pending`` with nothing filled,
  and its input is checked as a request (a limit order needs a price, the symbol must be
  one of the account's instruments when any are known, a strategy id of at most 64
  characters). An order found on the venue is recorded as the venue reports it: its
  status, filled quantity, average fill price and exchange id; a missing type is ``other``.

The same for both sources: the field checks (client order id, symbol, side, type,
quantity > 0, prices >= 0, exchange id of at most 128 characters, written once), and the
quantity rules:

- ``filled_qty`` never decreases and never exceeds the order ``quantity``;
- ``filled`` needs ``filled_qty`` equal to the quantity (it defaults to the quantity);
- ``partially_filled`` needs ``0 < filled_qty < quantity``;
- ``remaining_qty = quantity - filled_qty``; each accepted transition bumps ``version``.

Decision (issue 19): a venue report that breaks a quantity or identity rule is refused,
not clamped. Before, the reconciler silently clamped a venue fill above the order
quantity down to the quantity, raised a short ``filled`` to the full quantity, accepted
``partially_filled`` with nothing remaining, and kept the local exchange id over a
different one. Each of those hides a real desync (the local quantity or the order's
identity is wrong) and a clamped row would make the position and P&L wrong as well. Now
the repair is deferred with this module's error: the discrepancy stays open with a
``deferred`` repair naming the rule, the pass logs ``Auto-repair deferred: ...``, and
after ``persistent_desync_runs`` passes it is flagged as a persistent desync for staff.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext

from tradingstate import transitions
from tradingstate.amounts import amount_str, parse_amount
from tradingstate.errors import Conflict, TransitionNotAllowed
from tradingstate.rules import Source
from tradingstate.rules import values as v
from tradingstate.rules.money import CONTEXT

SIDES = ("buy", "sell")
TYPES = (
    "market",
    "limit",
    "stop",
    "stop_limit",
    "take_profit",
    "take_profit_limit",
    "trailing_stop",
    "other",
)
OTHER_TYPE = "other"
LIMIT_TYPE = "limit"

UNKNOWN_SYMBOL = v.UNKNOWN_SYMBOL
LIMIT_NEEDS_PRICE = "A limit order needs a price greater than zero."
STRATEGY_INVALID = "must be a string of at most 64 characters"
FILLED_QTY_DECREASE = "filled_qty cannot decrease (from {old} to {new})."
FILLED_QTY_OVER = "filled_qty {new} exceeds the order quantity {qty}."
FILLED_NEEDS_FULL = "Status 'filled' needs filled_qty equal to the quantity {qty} (got {new})."
PARTIAL_NEEDS_RANGE = "Status 'partially_filled' needs 0 < filled_qty < quantity {qty} (got {new})."
REJECTED_NEEDS_NONE = "Status 'rejected' means nothing traded: filled_qty must be 0 (got {new})."
CLOSED_NEEDS_REST = (
    "Status '{status}' ends an order with part of it unfilled: filled_qty must be below the "
    "quantity {qty} (got {new}); a fully filled order is 'filled'."
)
EXCHANGE_ID_CONFLICT = "exchange_order_id is already '{old}' and cannot change to '{new}'."
TRANSITION_NOT_REACHABLE = "Order status cannot reach '{to}' from '{frm}' by legal moves."

# What "the same content" means for an idempotent re-registration.
REGISTER_IDENTITY_FIELDS = ("symbol", "side", "type", "quantity", "price", "strategy_id")


@dataclass(frozen=True)
class OrderState:
    """The part of an order row its transitions change (plus what they depend on)."""

    status: str
    quantity: Decimal
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    exchange_order_id: str
    version: int

    @property
    def remaining_qty(self) -> Decimal:
        return remaining(self.quantity, self.filled_qty)


@dataclass(frozen=True)
class OrderChange:
    """A reported change: raw values as received (parsed and checked by the rule)."""

    status: object
    filled_qty: object = None
    avg_fill_price: object = None
    exchange_order_id: object = None


@dataclass(frozen=True)
class NewOrder:
    """A new order row, every field checked."""

    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    strategy_id: str
    status: str
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    exchange_order_id: str

    @property
    def remaining_qty(self) -> Decimal:
        return remaining(self.quantity, self.filled_qty)


def remaining(quantity: Decimal, filled: Decimal) -> Decimal:
    """``quantity - filled``, exact: in the money rules' wide context (Python's default 28
    digits rounded a 38-digit difference, to 1E+20 at the top, which no column holds)."""
    with localcontext(CONTEXT):
        return quantity - filled


# --- transitions ------------------------------------------------------------------------
def can_move(frm: str, to: str, *, source: Source) -> bool:
    """One legal step for a bot; any state reachable by legal moves for the venue."""
    if source is Source.VENUE:
        return transitions.transition_path(frm, to) is not None
    return transitions.can_transition(frm, to)


def order_transition(state: OrderState, change: OrderChange, *, source: Source) -> OrderState:
    """The order after ``change``, or raise naming the field; ``state`` is never modified."""
    to = change.status
    if to not in transitions.STATUSES:
        v.fail("status", transitions.UNKNOWN_STATUS.format(status=to))
    if not can_move(state.status, to, source=source):
        template = (
            TRANSITION_NOT_REACHABLE
            if source is Source.VENUE
            else transitions.TRANSITION_NOT_ALLOWED
        )
        v.fail("status", template.format(frm=state.status, to=to), TransitionNotAllowed)
    filled = state.filled_qty
    if change.filled_qty is not None:
        filled = parse_amount(change.filled_qty, "filled_qty", non_negative=True)
    elif to == transitions.FILLED:
        filled = state.quantity
    if filled < state.filled_qty:
        old, new = amount_str(state.filled_qty), amount_str(filled)
        v.fail("filled_qty", FILLED_QTY_DECREASE.format(old=old, new=new))
    check_fill(to, filled, state.quantity)
    avg = state.avg_fill_price
    if change.avg_fill_price is not None:
        avg = parse_amount(change.avg_fill_price, "avg_fill_price", non_negative=True)
    return replace(
        state,
        status=to,
        filled_qty=filled,
        avg_fill_price=avg,
        exchange_order_id=_exchange_id(state.exchange_order_id, change.exchange_order_id),
        version=state.version + 1,
    )


def check_fill(status: str, filled: Decimal, quantity: Decimal) -> None:
    """The quantity rules a row must satisfy in ``status`` (both sources). Amounts in the
    messages are canonical text (``amount_str``: no exponent, no trailing zeros)."""
    new, qty = amount_str(filled), amount_str(quantity)
    if filled > quantity:
        v.fail("filled_qty", FILLED_QTY_OVER.format(new=new, qty=qty))
    if status == transitions.FILLED and filled != quantity:
        v.fail("filled_qty", FILLED_NEEDS_FULL.format(qty=qty, new=new))
    if status == transitions.PARTIALLY_FILLED and not (0 < filled < quantity):
        v.fail("filled_qty", PARTIAL_NEEDS_RANGE.format(qty=qty, new=new))
    if status == transitions.REJECTED and filled != 0:
        v.fail("filled_qty", REJECTED_NEEDS_NONE.format(new=new))
    if status in (transitions.CANCELLED, transitions.EXPIRED) and filled == quantity:
        v.fail("filled_qty", CLOSED_NEEDS_REST.format(status=status, qty=qty, new=new))


def _exchange_id(old: str, reported: object) -> str:
    if not reported:
        return old
    new = v.exchange_order_id(reported)
    if old and old != new:
        message = EXCHANGE_ID_CONFLICT.format(old=old, new=new)
        v.fail("exchange_order_id", message, Conflict)
    return new


# --- creation ---------------------------------------------------------------------------
def order_new(
    *,
    source: Source,
    client_order_id: object,
    symbol: object,
    side: object,
    type: object,
    quantity: object,
    price: object = None,
    strategy_id: object = "",
    status: object = transitions.PENDING,
    filled_qty: object = None,
    avg_fill_price: object = None,
    exchange_order_id: object = "",
    known_symbol: Callable[[str], bool] | None = None,
    account_name: str = "",
) -> NewOrder:
    """A new order from a bot's registration or from the venue (see the module docstring).

    ``known_symbol`` (bots only) answers whether the account lists the symbol; ``None``
    when the account has no instruments loaded, so any well-formed symbol is accepted.
    """
    coid = v.client_order_id(client_order_id)
    if source is Source.BOT:
        symbol = v.symbol_new(symbol, known_symbol=known_symbol, account_name=account_name)
    else:
        symbol = v.symbol(symbol)
    side = v.choice("side", side, SIDES)
    if source is Source.VENUE and not type:
        type = OTHER_TYPE
    type = v.choice("type", type, TYPES)
    qty = parse_amount(quantity, "quantity", positive=True)
    px = None if price is None else parse_amount(price, "price", non_negative=True)
    if source is Source.BOT:
        if not isinstance(strategy_id, str) or len(strategy_id) > 64:
            v.fail("strategy_id", STRATEGY_INVALID)
        if type == LIMIT_TYPE and not px:
            v.fail("price", LIMIT_NEEDS_PRICE)
        if status != transitions.PENDING or filled_qty is not None or avg_fill_price is not None:
            raise ValueError("a bot's new order starts pending with nothing filled")
        zero = Decimal(0)
        return NewOrder(coid, symbol, side, type, qty, px, strategy_id, status, zero, None, "")
    if status not in transitions.STATUSES:
        v.fail("status", transitions.UNKNOWN_STATUS.format(status=status))
    filled = Decimal(0)
    if filled_qty is not None:
        filled = parse_amount(filled_qty, "filled_qty", non_negative=True)
    check_fill(str(status), filled, qty)
    avg = (
        None
        if avg_fill_price is None
        else parse_amount(avg_fill_price, "avg_fill_price", non_negative=True)
    )
    exid = v.exchange_order_id(exchange_order_id) if exchange_order_id else ""
    return NewOrder(coid, symbol, side, type, qty, px, "", str(status), filled, avg, exid)


def registration_differences(existing: Mapping[str, object], wanted: NewOrder) -> list[str]:
    """The identity fields where an already registered order differs from a new request."""
    return [name for name in REGISTER_IDENTITY_FIELDS if existing[name] != getattr(wanted, name)]


def show(value: object) -> str:
    return repr(amount_str(value)) if isinstance(value, Decimal) else repr(value)
