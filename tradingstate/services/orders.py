"""Order writes: registration (idempotent on client_order_id) and status transitions.

The rules (what a new order may be, which moves are legal, the quantity rules) are
``tradingstate.rules.orders``; the reconciler's bulk writes (``services.sync``) use the
same rules with ``source=Source.VENUE``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from tradingstate.actors import Actor
from tradingstate.db import orders as db_orders
from tradingstate.db.orders import Guard, Inserted, order_insert, order_update
from tradingstate.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    RecoveryInProgress,
    VersionConflict,
)
from tradingstate.locks import order_qs_select_for_update
from tradingstate.models import ExchangeAccount, Instrument, Order
from tradingstate.rules import Source, values
from tradingstate.rules import orders as rules
from tradingstate.rules.orders import (  # noqa: F401 (the error texts callers assert on)
    EXCHANGE_ID_CONFLICT,
    FILLED_NEEDS_FULL,
    FILLED_QTY_DECREASE,
    FILLED_QTY_OVER,
    LIMIT_NEEDS_PRICE,
    PARTIAL_NEEDS_RANGE,
    REGISTER_IDENTITY_FIELDS,
    UNKNOWN_SYMBOL,
)
from tradingstate.services import events
from tradingstate.services import paper as paper_venue
from tradingstate.services.bulk import rows_bulk_update
from tradingstate.services.events import ORDER_AUDIT_FIELDS  # noqa: F401 (re-exported)

RECOVERY_IN_PROGRESS = (
    "Account '{account}' is reconciling after a restart; new orders are refused until its "
    "first pass completes. Retry shortly."
)
ORDER_NOT_FOUND = "Order '{client_order_id}' not found on account '{account}'."
REGISTER_CONFLICT = (
    "Order '{client_order_id}' is already registered with different content: {fields}."
)
VERSION_MISMATCH = "Order '{client_order_id}' changed (version {actual}, expected {expected})."
TRANSITION_CONTENDED = (
    "Order '{client_order_id}' changed under {attempts} attempts in a row; read it and retry."
)
# the columns a transition writes (the bulk paths update exactly these)
TRANSITION_FIELDS = (
    "status",
    "filled_qty",
    "remaining_qty",
    "avg_fill_price",
    "exchange_order_id",
    "version",
    "updated_at",
)

validate_client_order_id = values.client_order_id


def order_get_or_404(*, account: ExchangeAccount, client_order_id: str) -> Order:
    """The order, read without a lock (for a compare-and-set write), or ``NotFound``."""
    order = db_orders.order_read(account_id=account.pk, client_order_id=client_order_id)
    if order is None:
        raise NotFound(
            ORDER_NOT_FOUND.format(client_order_id=client_order_id, account=account.name)
        )
    order.account = account  # the caller's row: no second read when the order names it
    return order


def order_get_for_update(*, account: ExchangeAccount, client_order_id: str) -> Order:
    try:
        order = order_qs_select_for_update().get(account=account, client_order_id=client_order_id)
    except Order.DoesNotExist:
        raise NotFound(
            ORDER_NOT_FOUND.format(client_order_id=client_order_id, account=account.name)
        ) from None
    order.account = account  # the caller's row: no second read when the order names it
    return order


def order_from_rule(account: ExchangeAccount, new: rules.NewOrder, *, origin: str) -> Order:
    """An unsaved Order holding exactly the row the creation rule produced."""
    return Order(
        account=account,
        client_order_id=new.client_order_id,
        exchange_order_id=new.exchange_order_id,
        symbol=new.symbol,
        side=new.side,
        type=new.type,
        quantity=new.quantity,
        price=new.price,
        filled_qty=new.filled_qty,
        remaining_qty=new.remaining_qty,
        avg_fill_price=new.avg_fill_price,
        status=new.status,
        strategy_id=new.strategy_id,
        origin=origin,
    )


def order_register(
    *,
    account: ExchangeAccount,
    client_order_id: str,
    symbol: str,
    side: str,
    quantity: object,
    actor: Actor,
    type: str = Order.Type.LIMIT,
    price: object = None,
    strategy_id: str = "",
    reason: str = "",
    recovery_gate: bool = False,
    savepoint: bool = True,
    guard: Guard | None = None,
) -> tuple[Order, bool]:
    """Register a bot's new order. Idempotent on ``client_order_id``.

    Returns ``(order, created)``. The same content again returns the existing order; different
    content raises ``Conflict`` naming the differing fields. Callers check the kill switch
    (``killswitch.services.trading_allowed``) before calling this. With ``recovery_gate``
    (the bots' API), an account in restart recovery refuses it (``RecoveryInProgress``,
    503), read in the inserting statement. ``savepoint=False``: inside a caller's
    transaction that a failure here aborts anyway (the kill switch's guarded
    registration), no savepoint is taken; nothing inside is retried (a duplicate is an
    ``ON CONFLICT`` no-op, not a caught error).

    ``guard`` (PostgreSQL, ``tradingstate.db.orders.guard_supported``): a precondition from
    the layer that owns it (the kill switch), read and share-locked in the inserting
    statement, which then needs no transaction: the registration is one round trip. When
    the guard refuses, a retry of an order already registered still gets it back (or the
    conflict); a new order raises ``GuardRefused`` carrying why, for the caller to answer.
    """
    if guard is not None:  # one statement, atomic on its own
        return _order_register(
            account=account,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            actor=actor,
            type=type,
            price=price,
            strategy_id=strategy_id,
            reason=reason,
            recovery_gate=recovery_gate,
            guard=guard,
        )
    with transaction.atomic(savepoint=savepoint):
        return _order_register(
            account=account,
            client_order_id=client_order_id,
            symbol=symbol,
            side=side,
            quantity=quantity,
            actor=actor,
            type=type,
            price=price,
            strategy_id=strategy_id,
            reason=reason,
            recovery_gate=recovery_gate,
        )


def _order_register(
    *,
    account,
    client_order_id,
    symbol,
    side,
    quantity,
    actor,
    type,
    price,
    strategy_id,
    reason,
    recovery_gate,
    guard=None,
) -> tuple[Order, bool]:
    new = rules.order_new(
        source=Source.BOT,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        type=type,
        quantity=quantity,
        price=price,
        strategy_id=strategy_id,
        known_symbol=None,  # checked by the inserting statement (tradingstate.db.orders)
        account_name=account.name,
    )
    origin = Order.Origin.BOT if actor.type == "bot" else Order.Origin.MANUAL
    order = order_from_rule(account, new, origin=origin)
    entry = events.order_registered_entry(order=order, actor=actor, reason=reason)
    # one statement on PostgreSQL: the symbol and recovery checks, the insert (a duplicate
    # client_order_id inserts nothing) and its audit row (tradingstate.db.orders)
    outcome = order_insert(order, entry, recovery_gate=recovery_gate, guard=guard)
    if outcome.inserted:
        return order, True
    if outcome.refused or outcome.guard_incomplete:
        # a retry of an order registered before the guard closed is not a new order
        existing = Order.objects.filter(account=account, client_order_id=new.client_order_id)
        found = existing.first() if outcome.refused else None
        if found is None:
            raise GuardRefused(outcome)
        _check_same_content(found, new)
        return found, False
    if outcome.recovering:
        raise RecoveryInProgress(RECOVERY_IN_PROGRESS.format(account=account.name))
    if not outcome.known_symbol:
        values.fail("symbol", UNKNOWN_SYMBOL.format(symbol=new.symbol, account=account.name))
    # a row with this client_order_id exists (a retry, or a concurrent registration)
    existing = Order.objects.get(account=account, client_order_id=new.client_order_id)
    _check_same_content(existing, new)
    return existing, False


class GuardRefused(Exception):
    """The registration's guard refused a new order (``outcome.refused``) or lacked rows
    (``outcome.guard_incomplete``): nothing was written. The guard's owner says why."""

    def __init__(self, outcome: Inserted):
        super().__init__("the registration's guard refused the order")
        self.outcome = outcome


class KnownSymbol:
    """``known_symbol`` for the rule: two indexed reads, only once the symbol is well formed
    (an account with no instruments listed accepts any well-formed symbol)."""

    def __init__(self, account: ExchangeAccount):
        self.account = account

    def __call__(self, symbol: str) -> bool:
        known = Instrument.objects.filter(account=self.account)
        return not known.exists() or known.filter(symbol=symbol).exists()


def _check_same_content(order: Order, wanted: rules.NewOrder) -> None:
    existing = {name: getattr(order, name) for name in REGISTER_IDENTITY_FIELDS}
    differing = rules.registration_differences(existing, wanted)
    if differing:
        message = REGISTER_CONFLICT.format(
            client_order_id=order.client_order_id, fields=", ".join(differing)
        )
        raise Conflict(
            message,
            fields={
                name: [
                    f"registered as {rules.show(existing[name])}, "
                    f"got {rules.show(getattr(wanted, name))}"
                ]
                for name in differing
            },
        )


@dataclass
class TransitionRequest:
    client_order_id: str
    status: str
    filled_qty: object = None
    avg_fill_price: object = None
    exchange_order_id: str | None = None
    expected_version: int | None = None
    reason: str = ""


def order_state(order: Order) -> rules.OrderState:
    return rules.OrderState(
        status=order.status,
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        avg_fill_price=order.avg_fill_price,
        exchange_order_id=order.exchange_order_id,
        version=order.version,
    )


def order_apply_change(order: Order, change: rules.OrderChange, *, source: Source) -> None:
    """Move ``order`` (in memory) as the transition rule says, or raise leaving it untouched.

    The one place an order row takes a transition's result: the bots' single and bulk
    paths and the reconciler's bulk sync all call it.
    """
    new = rules.order_transition(order_state(order), change, source=source)
    order.status = new.status
    order.filled_qty = new.filled_qty
    order.remaining_qty = new.remaining_qty
    order.avg_fill_price = new.avg_fill_price
    order.exchange_order_id = new.exchange_order_id
    order.version = new.version


def apply_transition(order: Order, req: TransitionRequest, *, source: Source = Source.BOT) -> None:
    """Check the caller's expected version, then apply ``req`` (see ``order_apply_change``)."""
    if req.expected_version is not None and req.expected_version != order.version:
        values.fail(
            "version",
            VERSION_MISMATCH.format(
                client_order_id=order.client_order_id,
                actual=order.version,
                expected=req.expected_version,
            ),
            VersionConflict,
        )
    order_apply_change(
        order,
        rules.OrderChange(
            status=req.status,
            filled_qty=req.filled_qty,
            avg_fill_price=req.avg_fill_price,
            exchange_order_id=req.exchange_order_id,
        ),
        source=source,
    )


def order_transition(
    *,
    account: ExchangeAccount,
    client_order_id: str,
    to_status: str,
    actor: Actor,
    filled_qty: object = None,
    avg_fill_price: object = None,
    exchange_order_id: str | None = None,
    expected_version: int | None = None,
    reason: str = "",
    source: Source = Source.BOT,
) -> Order:
    """Move an order along the status machine; an illegal move changes nothing.

    ``source=Source.VENUE`` applies the exchange's report (several legal steps at once);
    the API always uses the default, ``Source.BOT`` (one legal step).

    On PostgreSQL, off the paper venue, the order is read without a lock and written back
    only if its version is still the one read (compare-and-set, with its audit row, in one
    statement): no transaction, two statements. A concurrent change makes it read again
    and re-apply the rule, up to ``TRANSITION_ATTEMPTS`` times (then 409). Elsewhere the
    order is locked (``FOR UPDATE``) in a transaction.
    """
    req = TransitionRequest(
        client_order_id=client_order_id,
        status=to_status,
        filled_qty=filled_qty,
        avg_fill_price=avg_fill_price,
        exchange_order_id=exchange_order_id,
        expected_version=expected_version,
        reason=reason,
    )
    if connection.vendor == "postgresql" and not paper_venue.is_paper(account):
        return _order_transition_checked(account, req, actor=actor, source=source)
    with transaction.atomic():
        return _order_transition_locked(account, req, actor=actor, source=source)


TRANSITION_ATTEMPTS = 5


def _order_transition_checked(account, req: TransitionRequest, *, actor, source) -> Order:
    for _ in range(TRANSITION_ATTEMPTS):
        order = order_get_or_404(account=account, client_order_id=req.client_order_id)
        read_at = order.version
        before = events.order_snapshot(order)
        apply_transition(order, req, source=source)
        entry = events.order_transition_entry(
            order=order, account=account, before=before, actor=actor, reason=req.reason
        )
        if order_update(order, TRANSITION_FIELDS, entry, if_version=read_at):
            return order
    values.fail(
        "version",
        TRANSITION_CONTENDED.format(
            client_order_id=req.client_order_id, attempts=TRANSITION_ATTEMPTS
        ),
        VersionConflict,
    )


def _order_transition_locked(account, req: TransitionRequest, *, actor, source) -> Order:
    order = order_get_for_update(account=account, client_order_id=req.client_order_id)
    before = events.order_snapshot(order)
    frm = order.status
    # a bot's move on a paper account may reach the paper venue (services.paper)
    venue = (
        paper_venue.venue_batch(
            account=account, actor=actor, moves=[(order, req.status, req.exchange_order_id)]
        )
        if source is Source.BOT
        else None
    )
    if venue is not None:
        venue.check(order, req.status, req.exchange_order_id)
    apply_transition(order, req, source=source)
    if venue is not None:
        venue.moved(order, frm, req.reason)
        events.entries_record(venue.follow())
        order.save()
        events.order_transitioned(
            order=order, account=account, before=before, actor=actor, reason=req.reason
        )
        return order
    # the columns a transition writes and its audit row: one statement on PostgreSQL
    entry = events.order_transition_entry(
        order=order, account=account, before=before, actor=actor, reason=req.reason
    )
    order_update(order, TRANSITION_FIELDS, entry)
    return order


@dataclass
class TransitionResult:
    """One item's outcome. ``status``, ``version`` and ``filled_qty`` are the order's as this
    item left it: an order named twice in one batch is one instance, which the later item
    moves on (``order`` is that instance)."""

    client_order_id: str
    ok: bool
    order: Order | None = None
    error: Exception | None = None
    status: str = ""
    version: int | None = None
    filled_qty: Decimal | None = None


@transaction.atomic
def order_bulk_transition(
    *, account: ExchangeAccount, requests: list[TransitionRequest], actor: Actor
) -> list[TransitionResult]:
    """Apply many transitions in one transaction: valid ones applied, each result reported.

    A handful of statements whatever the size: one locking read, one bulk update, one bulk
    insert of audit rows.
    """
    ids = sorted({r.client_order_id for r in requests if isinstance(r.client_order_id, str)})
    orders = {
        o.client_order_id: o
        for o in order_qs_select_for_update().filter(account=account, client_order_id__in=ids)
    }
    results: list[TransitionResult] = []
    changed: dict[int, Order] = {}
    audits = []
    # bots' moves on a paper account may reach the paper venue (services.paper)
    venue = paper_venue.venue_batch(
        account=account,
        actor=actor,
        moves=[
            (orders[r.client_order_id], r.status, r.exchange_order_id)
            for r in requests
            if isinstance(r.client_order_id, str) and r.client_order_id in orders
        ],
    )
    for req in requests:
        order = orders.get(req.client_order_id)
        if order is None:
            err = NotFound(
                ORDER_NOT_FOUND.format(client_order_id=req.client_order_id, account=account.name)
            )
            results.append(TransitionResult(str(req.client_order_id), False, error=err))
            continue
        before = events.order_snapshot(order)
        frm = order.status
        try:
            if venue is not None:
                venue.check(order, req.status, req.exchange_order_id)
            apply_transition(order, req)  # leaves the order untouched when it raises
        except ApplicationError as exc:
            results.append(TransitionResult(req.client_order_id, False, error=exc))
            continue
        if venue is not None:
            venue.moved(order, frm, req.reason)
        changed[order.pk] = order
        audits.append(
            events.order_transition_entry(
                order=order, account=account, before=before, actor=actor, reason=req.reason
            )
        )
        results.append(
            TransitionResult(
                req.client_order_id,
                True,
                order=order,
                status=order.status,
                version=order.version,
                filled_qty=order.filled_qty,
            )
        )
    if venue is not None:
        audits += venue.follow()
    if changed:
        now = timezone.now()
        for order in changed.values():
            order.updated_at = now
        rows_bulk_update(Order, list(changed.values()), TRANSITION_FIELDS)
        events.entries_record(audits)
    return results
