"""Order writes: registration (idempotent on client_order_id) and status transitions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str, parse_amount
from tradingstate.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    TransitionNotAllowed,
    ValidationFailed,
    VersionConflict,
)
from tradingstate.locks import order_qs_select_for_update
from tradingstate.models import ExchangeAccount, Instrument, Order, client_order_id_validator
from tradingstate.services.audit import audit_build, audit_bulk_record, audit_snapshot
from tradingstate.services.bulk import rows_bulk_update

ORDER_AUDIT_FIELDS = (
    "client_order_id",
    "exchange_order_id",
    "symbol",
    "side",
    "type",
    "quantity",
    "price",
    "status",
    "filled_qty",
    "remaining_qty",
    "avg_fill_price",
    "strategy_id",
    "origin",
    "version",
)
# What "the same content" means for an idempotent re-registration.
REGISTER_IDENTITY_FIELDS = ("symbol", "side", "type", "quantity", "price", "strategy_id")

ORDER_NOT_FOUND = "Order '{client_order_id}' not found on account '{account}'."
REGISTER_CONFLICT = (
    "Order '{client_order_id}' is already registered with different content: {fields}."
)
UNKNOWN_SYMBOL = "Unknown symbol '{symbol}' for account '{account}'."
LIMIT_NEEDS_PRICE = "A limit order needs a price greater than zero."
FILLED_QTY_DECREASE = "filled_qty cannot decrease (from {old} to {new})."
FILLED_QTY_OVER = "filled_qty {new} exceeds the order quantity {qty}."
FILLED_NEEDS_FULL = "Status 'filled' needs filled_qty equal to the quantity {qty} (got {new})."
PARTIAL_NEEDS_RANGE = "Status 'partially_filled' needs 0 < filled_qty < quantity {qty} (got {new})."
EXCHANGE_ID_CONFLICT = "exchange_order_id is already '{old}' and cannot change to '{new}'."
VERSION_MISMATCH = "Order '{client_order_id}' changed (version {actual}, expected {expected})."


def _fail(field: str, message: str, cls=ValidationFailed):
    raise cls(message, fields={field: [message]})


def validate_client_order_id(value: object) -> str:
    if not isinstance(value, str):
        _fail("client_order_id", "must be a string")
    try:
        client_order_id_validator(value)
    except Exception:  # django ValidationError
        _fail("client_order_id", client_order_id_validator.message)
    return value


def _validate_choice(field: str, value: object, choices) -> str:
    allowed = [c.value for c in choices]
    if value not in allowed:
        _fail(field, f"must be one of {', '.join(allowed)} (got {value!r})")
    return str(value)


def _validate_symbol(account: ExchangeAccount, symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol or len(symbol) > 64 or symbol.strip() != symbol:
        _fail("symbol", "must be a ccxt unified symbol such as 'BTC/USDT' (1-64 characters)")
    known = Instrument.objects.filter(account=account)
    if known.exists() and not known.filter(symbol=symbol).exists():
        _fail("symbol", UNKNOWN_SYMBOL.format(symbol=symbol, account=account.name))
    return symbol


def order_get_for_update(*, account: ExchangeAccount, client_order_id: str) -> Order:
    try:
        return order_qs_select_for_update().get(account=account, client_order_id=client_order_id)
    except Order.DoesNotExist:
        raise NotFound(
            ORDER_NOT_FOUND.format(client_order_id=client_order_id, account=account.name)
        ) from None


@transaction.atomic
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
) -> tuple[Order, bool]:
    """Register a bot's new order. Idempotent on ``client_order_id``.

    Returns ``(order, created)``. The same content again returns the existing order; different
    content raises ``Conflict`` naming the differing fields. Callers check the kill switch
    (``killswitch.services.trading_allowed``) before calling this.
    """
    client_order_id = validate_client_order_id(client_order_id)
    wanted = {
        "symbol": _validate_symbol(account, symbol),
        "side": _validate_choice("side", side, Order.Side),
        "type": _validate_choice("type", type, Order.Type),
        "quantity": parse_amount(quantity, "quantity", positive=True),
        "price": None if price is None else parse_amount(price, "price", non_negative=True),
        "strategy_id": _validate_strategy(strategy_id),
    }
    if wanted["type"] == Order.Type.LIMIT and not wanted["price"]:
        _fail("price", LIMIT_NEEDS_PRICE)

    existing = Order.objects.filter(account=account, client_order_id=client_order_id).first()
    if existing is None:
        order = Order(
            account=account,
            client_order_id=client_order_id,
            remaining_qty=wanted["quantity"],
            origin=Order.Origin.BOT if actor.type == "bot" else Order.Origin.MANUAL,
            **wanted,
        )
        try:
            with transaction.atomic():
                order.save(force_insert=True)
        except IntegrityError:
            # a concurrent registration of the same client_order_id won the race
            existing = Order.objects.get(account=account, client_order_id=client_order_id)
        else:
            audit_build(
                actor=actor,
                action="order.register",
                target=order,
                account=account,
                after=audit_snapshot(order, ORDER_AUDIT_FIELDS),
                reason=reason,
            ).save(force_insert=True)
            return order, True
    _check_same_content(existing, wanted)
    return existing, False


def _validate_strategy(value: object) -> str:
    if not isinstance(value, str) or len(value) > 64:
        _fail("strategy_id", "must be a string of at most 64 characters")
    return value


def _check_same_content(order: Order, wanted: dict) -> None:
    differing = [name for name in REGISTER_IDENTITY_FIELDS if getattr(order, name) != wanted[name]]
    if differing:
        message = REGISTER_CONFLICT.format(
            client_order_id=order.client_order_id, fields=", ".join(differing)
        )
        raise Conflict(
            message,
            fields={
                name: [f"registered as {_show(getattr(order, name))}, got {_show(wanted[name])}"]
                for name in differing
            },
        )


def _show(value: object) -> str:
    return repr(amount_str(value)) if isinstance(value, Decimal) else repr(value)


@dataclass
class TransitionRequest:
    client_order_id: str
    status: str
    filled_qty: object = None
    avg_fill_price: object = None
    exchange_order_id: str | None = None
    expected_version: int | None = None
    reason: str = ""


def apply_transition(order: Order, req: TransitionRequest) -> None:
    """Move ``order`` (in memory) to ``req.status`` or raise, leaving ``order`` untouched.

    Shared by the single and the bulk path so both enforce exactly the same rules.
    """
    to = req.status
    if to not in transitions.STATUSES:
        _fail("status", transitions.UNKNOWN_STATUS.format(status=to))
    if req.expected_version is not None and req.expected_version != order.version:
        _fail(
            "version",
            VERSION_MISMATCH.format(
                client_order_id=order.client_order_id,
                actual=order.version,
                expected=req.expected_version,
            ),
            VersionConflict,
        )
    if not transitions.can_transition(order.status, to):
        _fail(
            "status",
            transitions.TRANSITION_NOT_ALLOWED.format(frm=order.status, to=to),
            TransitionNotAllowed,
        )
    filled = order.filled_qty
    if req.filled_qty is not None:
        filled = parse_amount(req.filled_qty, "filled_qty", non_negative=True)
    elif to == transitions.FILLED:
        filled = order.quantity
    if filled < order.filled_qty:
        _fail("filled_qty", FILLED_QTY_DECREASE.format(old=order.filled_qty, new=filled))
    if filled > order.quantity:
        _fail("filled_qty", FILLED_QTY_OVER.format(new=filled, qty=order.quantity))
    if to == transitions.FILLED and filled != order.quantity:
        _fail("filled_qty", FILLED_NEEDS_FULL.format(qty=order.quantity, new=filled))
    if to == transitions.PARTIALLY_FILLED and not (0 < filled < order.quantity):
        _fail("filled_qty", PARTIAL_NEEDS_RANGE.format(qty=order.quantity, new=filled))
    avg = order.avg_fill_price
    if req.avg_fill_price is not None:
        avg = parse_amount(req.avg_fill_price, "avg_fill_price", non_negative=True)
    exchange_order_id = order.exchange_order_id
    if req.exchange_order_id:
        new_id = str(req.exchange_order_id)
        if len(new_id) > 128:
            _fail("exchange_order_id", "must be at most 128 characters")
        if exchange_order_id and exchange_order_id != new_id:
            _fail(
                "exchange_order_id",
                EXCHANGE_ID_CONFLICT.format(old=exchange_order_id, new=new_id),
                Conflict,
            )
        exchange_order_id = new_id
    order.status = to
    order.filled_qty = filled
    order.remaining_qty = order.quantity - filled
    order.avg_fill_price = avg
    order.exchange_order_id = exchange_order_id
    order.version += 1


@transaction.atomic
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
) -> Order:
    """Move an order along the status machine; an illegal move changes nothing."""
    order = order_get_for_update(account=account, client_order_id=client_order_id)
    before = audit_snapshot(order, ORDER_AUDIT_FIELDS)
    apply_transition(
        order,
        TransitionRequest(
            client_order_id=client_order_id,
            status=to_status,
            filled_qty=filled_qty,
            avg_fill_price=avg_fill_price,
            exchange_order_id=exchange_order_id,
            expected_version=expected_version,
            reason=reason,
        ),
    )
    order.save()
    audit_build(
        actor=actor,
        action="order.transition",
        target=order,
        account=account,
        before=before,
        after=audit_snapshot(order, ORDER_AUDIT_FIELDS),
        reason=reason,
    ).save(force_insert=True)
    return order


@dataclass
class TransitionResult:
    client_order_id: str
    ok: bool
    order: Order | None = None
    error: Exception | None = None


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
    for req in requests:
        order = orders.get(req.client_order_id)
        if order is None:
            err = NotFound(
                ORDER_NOT_FOUND.format(client_order_id=req.client_order_id, account=account.name)
            )
            results.append(TransitionResult(str(req.client_order_id), False, error=err))
            continue
        before = audit_snapshot(order, ORDER_AUDIT_FIELDS)
        snapshot = {f: getattr(order, f) for f in ORDER_AUDIT_FIELDS}
        try:
            apply_transition(order, req)
        except Exception as exc:
            for f, v in snapshot.items():  # leave the in-memory order as it was
                setattr(order, f, v)
            if not isinstance(exc, ApplicationError):
                raise
            results.append(TransitionResult(req.client_order_id, False, error=exc))
            continue
        changed[order.pk] = order
        audits.append(
            audit_build(
                actor=actor,
                action="order.transition",
                target=order,
                account=account,
                before=before,
                after=audit_snapshot(order, ORDER_AUDIT_FIELDS),
                reason=req.reason,
            )
        )
        results.append(TransitionResult(req.client_order_id, True, order=order))
    if changed:
        now = timezone.now()
        for order in changed.values():
            order.updated_at = now
        rows_bulk_update(
            Order,
            list(changed.values()),
            [
                "status",
                "filled_qty",
                "remaining_qty",
                "avg_fill_price",
                "exchange_order_id",
                "version",
                "updated_at",
            ],
        )
        audit_bulk_record(audits)
    return results
