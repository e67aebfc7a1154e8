"""Fills, positions and balances: the account's book.

Setting a position or a balance follows ``tradingstate.rules.positions`` /
``tradingstate.rules.balances``, the same rules the reconciler's bulk sync uses.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str, parse_amount, quantize_amount
from tradingstate.db.fills import fill_read, fill_write
from tradingstate.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    ValidationFailed,
    VersionConflict,
)
from tradingstate.locks import balance_qs_select_for_update, position_qs_select_for_update
from tradingstate.models import AuditEntry, Balance, ExchangeAccount, Fill, Order, Position
from tradingstate.rules import balances as balance_rules
from tradingstate.rules import positions as position_rules
from tradingstate.services import events
from tradingstate.services.audit import require_reason
from tradingstate.services.events import (  # noqa: F401 (re-exported)
    BALANCE_AUDIT_FIELDS,
    FILL_AUDIT_FIELDS,
    POSITION_AUDIT_FIELDS,
)
from tradingstate.services.orders import ORDER_NOT_FOUND, validate_client_order_id

Action = AuditEntry.Action

OVERFILL = (
    "Fill {trade_id} of {qty} would overfill order '{client_order_id}' "
    "({filled} of {total} filled)."
)
FILL_CONFLICT = "Trade '{trade_id}' is already recorded with different content: {fields}."
EXECUTED_AT_RANGE = "executed_at must be within a year of now and not in the future."
VERSION_MISMATCH = "{what} changed (version {actual}, expected {expected})."


class Overfill(ApplicationError):
    code = "overfill"
    http_status = 409


def _trade_id(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 128 or value.strip() != value:
        msg = "must be 1-128 characters with no surrounding spaces"
        raise ValidationFailed(f"trade_id: {msg}", fields={"trade_id": [msg]})
    if any(ord(ch) < 32 for ch in value):
        msg = "must not contain control characters"
        raise ValidationFailed(f"trade_id: {msg}", fields={"trade_id": [msg]})
    return value


def _executed_at(value: datetime | None) -> datetime:
    now = timezone.now()
    if value is None:
        return now
    if timezone.is_naive(value):
        raise ValidationFailed(
            "executed_at needs a timezone", fields={"executed_at": ["must include a timezone"]}
        )
    if value > now + timedelta(minutes=5) or value < now - timedelta(days=366):
        raise ValidationFailed(EXECUTED_AT_RANGE, fields={"executed_at": [EXECUTED_AT_RANGE]})
    return value


@transaction.atomic
def fill_record(
    *,
    account: ExchangeAccount,
    client_order_id: str,
    trade_id: str,
    quantity: object,
    price: object,
    actor: Actor,
    fee: object = "0",
    fee_currency: str = "",
    executed_at: datetime | None = None,
    reason: str = "",
) -> tuple[Fill, bool]:
    """Record a fill: the order's filled quantity and the position move together.

    Idempotent on ``trade_id``: the same trade again is a no-op returning ``(fill, False)``;
    the same trade id with other content is a conflict. A fill that would take the order past
    its quantity is refused and changes nothing.
    """
    validate_client_order_id(client_order_id)
    trade_id = _trade_id(trade_id)
    qty = parse_amount(quantity, "quantity", positive=True)
    px = parse_amount(price, "price", non_negative=True)
    fee_amount = parse_amount(fee, "fee")
    executed = _executed_at(executed_at)
    if not isinstance(fee_currency, str) or len(fee_currency) > 32:
        raise ValidationFailed(
            "fee_currency too long", fields={"fee_currency": ["at most 32 characters"]}
        )

    # Lock order: Order, then Position. The order lock serialises fills of one order, so a
    # duplicate delivered concurrently finds the first one here.
    # one statement (tradingstate.db.fills): the order and its position locked, and the
    # fill already recorded under this trade id
    order, existing, position = fill_read(
        account=account, client_order_id=client_order_id, trade_id=trade_id
    )
    if order is None:
        raise NotFound(
            ORDER_NOT_FOUND.format(client_order_id=client_order_id, account=account.name)
        )
    if existing is not None:
        _check_same_fill(existing, order, qty, px)
        if existing.order_id == order.pk:
            existing.order = order
        return existing, False
    if order.filled_qty + qty > order.quantity:
        msg = OVERFILL.format(
            trade_id=trade_id,
            qty=amount_str(qty),
            client_order_id=order.client_order_id,
            filled=amount_str(order.filled_qty),
            total=amount_str(order.quantity),
        )
        raise Overfill(msg, fields={"quantity": [msg]})

    order_before = events.order_snapshot(order)
    new_filled = order.filled_qty + qty
    old_value = (order.avg_fill_price or Decimal(0)) * order.filled_qty
    order.avg_fill_price = quantize_amount((old_value + px * qty) / new_filled)
    order.filled_qty = new_filled
    order.remaining_qty = order.quantity - new_filled
    if order.status in transitions.ACTIVE:
        # a fill is evidence the order reached the exchange: walk the machine forward
        target = (
            transitions.FILLED if new_filled == order.quantity else transitions.PARTIALLY_FILLED
        )
        path = transitions.transition_path(order.status, target)
        if path is not None:
            order.status = target
    order.version += 1

    fill = Fill(
        account=account,
        order=order,
        trade_id=trade_id,
        quantity=qty,
        price=px,
        fee=fee_amount,
        fee_currency=fee_currency,
        executed_at=executed,
    )
    if position is not None:
        # the position exists (and is locked): the writes and the audit row in one statement
        position_before = events.position_snapshot(position)
        delta = qty if order.side == Order.Side.BUY else -qty
        _apply_position_delta(position, delta, px)
        entry = events.fill_recorded_entry(
            fill=fill,
            order=order,
            position=position,
            order_before=order_before,
            position_before=position_before,
            actor=actor,
            reason=reason,
        )
        if fill_write(fill=fill, order=order, position=position, audit=entry):
            return fill, True
        # the same trade id recorded against another order of this account meanwhile
        other = Fill.objects.get(account=account, trade_id=trade_id)
        _check_same_fill(other, order, qty, px)
        return other, False
    # the account's first fill of this symbol: the position row is created here
    try:
        with transaction.atomic():
            fill.save(force_insert=True)
    except IntegrityError:
        # the same trade id recorded against another order of this account meanwhile
        other = Fill.objects.get(account=account, trade_id=trade_id)
        _check_same_fill(other, order, qty, px)
        return other, False
    order.save()

    position, position_before = _position_for_update(account, order.symbol)
    delta = qty if order.side == Order.Side.BUY else -qty
    _apply_position_delta(position, delta, px)
    position.save()

    events.fill_recorded(
        fill=fill,
        order=order,
        position=position,
        order_before=order_before,
        position_before=position_before,
        actor=actor,
        reason=reason,
    )
    return fill, True


def _check_same_fill(existing: Fill, order: Order, qty: Decimal, px: Decimal) -> None:
    differing = []
    if existing.order_id != order.pk:
        differing.append("client_order_id")
    if existing.quantity != qty:
        differing.append("quantity")
    if existing.price != px:
        differing.append("price")
    if differing:
        msg = FILL_CONFLICT.format(trade_id=existing.trade_id, fields=", ".join(differing))
        raise Conflict(msg, fields={name: [msg] for name in differing})


def _position_for_update(account: ExchangeAccount, symbol: str) -> tuple[Position, dict | None]:
    position = position_qs_select_for_update().filter(account=account, symbol=symbol).first()
    if position is not None:
        return position, events.position_snapshot(position)
    try:
        with transaction.atomic():
            position = Position.objects.create(account=account, symbol=symbol, qty=Decimal(0))
        return position, None
    except IntegrityError:
        position = position_qs_select_for_update().get(account=account, symbol=symbol)
        return position, events.position_snapshot(position)


def _apply_position_delta(position: Position, delta: Decimal, price: Decimal) -> None:
    old = position.qty
    new = old + delta
    if new == 0:
        position.entry_price = None
    elif old == 0 or (old > 0) != (new > 0):
        position.entry_price = price  # opened, or flipped through zero
    elif abs(new) > abs(old):  # adding to the position: weighted average entry
        entry = position.entry_price if position.entry_price is not None else price
        position.entry_price = quantize_amount((entry * abs(old) + price * abs(delta)) / abs(new))
    position.qty = new
    position.version += 1


def _check_version(what: str, actual: int, expected: int | None) -> None:
    if expected is not None and expected != actual:
        msg = VERSION_MISMATCH.format(what=what, actual=actual, expected=expected)
        raise VersionConflict(msg, fields={"version": [msg]})


def position_state(position: Position | None) -> position_rules.PositionState | None:
    if position is None:
        return None
    return position_rules.PositionState(
        symbol=position.symbol,
        qty=position.qty,
        entry_price=position.entry_price,
        version=position.version,
    )


def position_apply(position: Position, new: position_rules.PositionState) -> None:
    position.qty = new.qty
    position.entry_price = new.entry_price
    position.version = new.version


@transaction.atomic
def position_set(
    *,
    account: ExchangeAccount,
    symbol: str,
    qty: object,
    actor: Actor,
    entry_price: object = None,
    reason: str = "",
    expected_version: int | None = None,
    action: AuditEntry.Action = Action.POSITION_SET,
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> Position:
    """Set the local position (the bot's book, a staff correction, or a repair)."""
    # checked before any row is touched (the rule runs again on the locked row)
    position_rules.position_set(None, symbol=symbol, qty=qty, entry_price=entry_price)
    position, before = _position_for_update(account, symbol)
    _check_version(f"Position {symbol}", position.version if before else 0, expected_version)
    current = position_state(position) if before else None
    position_apply(
        position,
        position_rules.position_set(current, symbol=symbol, qty=qty, entry_price=entry_price),
    )
    position.save()
    events.position_changed(
        position=position,
        account=account,
        before=before,
        action=action,
        actor=actor,
        reason=reason,
        run_id=run_id,
        discrepancy_id=discrepancy_id,
    )
    return position


def position_correct(*, reason: str, **kwargs) -> Position:
    """A staff correction: like ``position_set`` but a non-empty reason is required."""
    return position_set(reason=require_reason(reason), action=Action.POSITION_CORRECT, **kwargs)


def balance_state(balance: Balance | None) -> balance_rules.BalanceState | None:
    if balance is None:
        return None
    return balance_rules.BalanceState(
        currency=balance.currency,
        free=balance.free,
        used=balance.used,
        total=balance.total,
        version=balance.version,
    )


def balance_apply(balance: Balance, new: balance_rules.BalanceState) -> None:
    balance.free, balance.used, balance.total = new.free, new.used, new.total
    balance.version = new.version


@transaction.atomic
def balance_set(
    *,
    account: ExchangeAccount,
    currency: str,
    actor: Actor,
    total: object = None,
    free: object = None,
    used: object = None,
    reason: str = "",
    expected_version: int | None = None,
    action: AuditEntry.Action = Action.BALANCE_SET,
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> Balance:
    """Set the local balance. ``total`` defaults to free + used; free to total - used."""
    amounts = {"currency": currency, "total": total, "free": free, "used": used}
    balance_rules.balance_set(None, **amounts)  # checked before any row is locked
    balance = balance_qs_select_for_update().filter(account=account, currency=currency).first()
    before = events.balance_snapshot(balance) if balance else None
    _check_version(f"Balance {currency}", balance.version if balance else 0, expected_version)
    new = balance_rules.balance_set(balance_state(balance), **amounts)
    if balance is None:
        balance = Balance(account=account, currency=currency)
    balance_apply(balance, new)
    try:
        with transaction.atomic():
            balance.save()
    except IntegrityError:
        raise VersionConflict(
            f"Balance {currency} was created concurrently; retry.",
            fields={"currency": ["created concurrently; retry"]},
        ) from None
    events.balance_changed(
        balance=balance,
        account=account,
        before=before,
        action=action,
        actor=actor,
        reason=reason,
        run_id=run_id,
        discrepancy_id=discrepancy_id,
    )
    return balance


def balance_correct(*, reason: str, **kwargs) -> Balance:
    """A staff correction: like ``balance_set`` but a non-empty reason is required."""
    return balance_set(reason=require_reason(reason), action=Action.BALANCE_CORRECT, **kwargs)
