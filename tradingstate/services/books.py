"""Fills, positions and balances: the account's book.

Setting a position or a balance follows ``tradingstate.rules.positions`` /
``tradingstate.rules.balances``, the same rules the reconciler's bulk sync uses.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import IntegrityError, transaction

from tradingstate.actors import Actor
from tradingstate.errors import Conflict, VersionConflict
from tradingstate.locks import balance_qs_select_for_update, position_qs_select_for_update
from tradingstate.models import AuditEntry, Balance, ExchangeAccount, Position
from tradingstate.rules import balances as balance_rules
from tradingstate.rules import positions as position_rules
from tradingstate.services import events
from tradingstate.services.audit import require_reason
from tradingstate.services.events import (  # noqa: F401 (re-exported)
    BALANCE_AUDIT_FIELDS,
    FILL_AUDIT_FIELDS,
    POSITION_AUDIT_FIELDS,
)
from tradingstate.services.fills import (  # noqa: F401 (re-exported: fills live there now)
    EXECUTED_AT_RANGE,
    FILL_CONFLICT,
    OVERFILL,
    Overfill,
    fill_record,
)
from tradingstate.services.orders import (
    KnownSymbol,
)

Action = AuditEntry.Action

VERSION_MISMATCH = "{what} changed (version {actual}, expected {expected})."
CURRENCY_CASE_CLASH = (
    "the account holds this asset as '{held}': currency codes are compared without case"
)


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
    if not Position.objects.filter(account=account, symbol=symbol).exists():
        # a new position: its symbol must be one a bot's new order could use (issue 13, D7)
        position_rules.position_symbol_new(
            symbol, known_symbol=KnownSymbol(account), account_name=account.name
        )
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


def _refuse_case_clash(account: ExchangeAccount, currency: str) -> None:
    """A new balance row whose currency differs only in case from one the account holds
    is the same asset twice (``balance_unique_currency_any_case``): a 409 naming it."""
    held = (
        Balance.objects.filter(account=account, currency__iexact=currency)
        .exclude(currency=currency)
        .values_list("currency", flat=True)
        .first()
    )
    if held is not None:
        msg = CURRENCY_CASE_CLASH.format(held=held)
        raise Conflict(f"currency: {msg}", fields={"currency": [msg]})


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
        _refuse_case_clash(account, currency)
        balance = Balance(account=account, currency=currency)
    balance_apply(balance, new)
    try:
        with transaction.atomic():
            balance.save()
    except IntegrityError:
        _refuse_case_clash(account, currency)  # "eth" created beside "ETH" meanwhile
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
