"""Fills, positions and balances: the account's book."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str, parse_amount, quantize_amount
from tradingstate.errors import ApplicationError, Conflict, ValidationFailed, VersionConflict
from tradingstate.locks import balance_qs_select_for_update, position_qs_select_for_update
from tradingstate.models import Balance, ExchangeAccount, Fill, Order, Position
from tradingstate.services.audit import audit_build, audit_snapshot, require_reason
from tradingstate.services.orders import (
    ORDER_AUDIT_FIELDS,
    order_get_for_update,
    validate_client_order_id,
)

POSITION_AUDIT_FIELDS = ("symbol", "qty", "entry_price", "version")
BALANCE_AUDIT_FIELDS = ("currency", "free", "used", "total", "version")
FILL_AUDIT_FIELDS = ("trade_id", "quantity", "price", "fee", "fee_currency", "executed_at")

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
    order = order_get_for_update(account=account, client_order_id=client_order_id)
    existing = Fill.objects.filter(account=account, trade_id=trade_id).first()
    if existing is not None:
        _check_same_fill(existing, order, qty, px)
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

    order_before = audit_snapshot(order, ORDER_AUDIT_FIELDS)
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

    audit_build(
        actor=actor,
        action="fill.record",
        target=fill,
        account=account,
        before={"order": order_before, "position": position_before},
        after={
            "fill": audit_snapshot(fill, FILL_AUDIT_FIELDS),
            "order": audit_snapshot(order, ORDER_AUDIT_FIELDS),
            "position": audit_snapshot(position, POSITION_AUDIT_FIELDS),
        },
        reason=reason,
    ).save(force_insert=True)
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
        return position, audit_snapshot(position, POSITION_AUDIT_FIELDS)
    try:
        with transaction.atomic():
            position = Position.objects.create(account=account, symbol=symbol, qty=Decimal(0))
        return position, None
    except IntegrityError:
        position = position_qs_select_for_update().get(account=account, symbol=symbol)
        return position, audit_snapshot(position, POSITION_AUDIT_FIELDS)


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


def _symbol(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64 or value.strip() != value:
        msg = "must be a ccxt unified symbol such as 'BTC/USDT' (1-64 characters)"
        raise ValidationFailed(f"symbol: {msg}", fields={"symbol": [msg]})
    return value


def _currency(value: object) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 32
        or not value.replace("-", "").replace("_", "").replace(".", "").isalnum()
        or not value.isascii()
    ):
        msg = "must be a currency code such as 'USDT' (1-32 letters or digits)"
        raise ValidationFailed(f"currency: {msg}", fields={"currency": [msg]})
    return value


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
    action: str = "position.set",
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> Position:
    """Set the local position (the bot's book, a staff correction, or a repair)."""
    symbol = _symbol(symbol)
    new_qty = parse_amount(qty, "qty")
    new_entry = (
        None if entry_price is None else parse_amount(entry_price, "entry_price", non_negative=True)
    )
    position, before = _position_for_update(account, symbol)
    _check_version(f"Position {symbol}", position.version if before else 0, expected_version)
    position.qty = new_qty
    position.entry_price = new_entry if new_qty != 0 else None
    position.version += 1 if before else 0
    position.save()
    audit_build(
        actor=actor,
        action=action,
        target=position,
        account=account,
        before=before,
        after=audit_snapshot(position, POSITION_AUDIT_FIELDS),
        reason=reason,
        run_id=run_id,
        discrepancy_id=discrepancy_id,
    ).save(force_insert=True)
    return position


def position_correct(*, reason: str, **kwargs) -> Position:
    """A staff correction: like ``position_set`` but a non-empty reason is required."""
    return position_set(reason=require_reason(reason), action="position.correct", **kwargs)


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
    action: str = "balance.set",
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> Balance:
    """Set the local balance. ``total`` defaults to free + used; free to total - used."""
    currency = _currency(currency)
    used_amount = parse_amount("0" if used is None else used, "used", non_negative=True)
    if free is None and total is None:
        msg = "give total, free, or both"
        raise ValidationFailed(msg, fields={"total": [msg]})
    free_amount = None if free is None else parse_amount(free, "free")
    total_amount = None if total is None else parse_amount(total, "total")
    if total_amount is None:
        total_amount = free_amount + used_amount
    if free_amount is None:
        free_amount = total_amount - used_amount

    balance = balance_qs_select_for_update().filter(account=account, currency=currency).first()
    before = audit_snapshot(balance, BALANCE_AUDIT_FIELDS) if balance else None
    if balance is None:
        balance = Balance(account=account, currency=currency, version=0)
    _check_version(f"Balance {currency}", balance.version, expected_version)
    balance.free, balance.used, balance.total = free_amount, used_amount, total_amount
    balance.version += 1
    try:
        with transaction.atomic():
            balance.save()
    except IntegrityError:
        raise VersionConflict(
            f"Balance {currency} was created concurrently; retry.",
            fields={"currency": ["created concurrently; retry"]},
        ) from None
    audit_build(
        actor=actor,
        action=action,
        target=balance,
        account=account,
        before=before,
        after=audit_snapshot(balance, BALANCE_AUDIT_FIELDS),
        reason=reason,
        run_id=run_id,
        discrepancy_id=discrepancy_id,
    ).save(force_insert=True)
    return balance


def balance_correct(*, reason: str, **kwargs) -> Balance:
    """A staff correction: like ``balance_set`` but a non-empty reason is required."""
    return balance_set(reason=require_reason(reason), action="balance.correct", **kwargs)
