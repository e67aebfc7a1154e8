"""The audit trail's typed writers: one function per event family (Saleor's order/events.py).

Every write service records its AuditEntry through exactly one of these, in its own
transaction; nothing else builds an AuditEntry. Each writer fixes its action(s) from
``AuditEntry.Action`` and the shape of ``before``/``after``, so a family's entries look
the same whichever path wrote them (a bot's request, staff in the console, a reconciliation
pass). The ``*_entry`` builders return unsaved entries for the bulk paths, which insert
them with ``entries_record`` in one statement.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models

from tradingstate.actors import Actor
from tradingstate.models import AuditEntry
from tradingstate.services.audit import audit_build, audit_bulk_record, audit_snapshot

Action = AuditEntry.Action

ACCOUNT_AUDIT_FIELDS = (
    "name",
    "exchange",
    "market_type",
    "api_key_env",
    "secret_env",
    "password_env",
    "ccxt_options",
    "sandbox",
    "enabled",
    "auto_repair",
    "reconciliation_interval_seconds",
    "balance_tolerance",
    "balance_tolerances",
    "stale_order_grace_seconds",
    "disabled_reason",
)
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
POSITION_AUDIT_FIELDS = ("symbol", "qty", "entry_price", "version")
BALANCE_AUDIT_FIELDS = ("currency", "free", "used", "total", "version")
FILL_AUDIT_FIELDS = (
    "trade_id",
    "symbol",
    "side",
    "client_order_id",
    "exchange_order_id",
    "quantity",
    "price",
    "fee",
    "fee_currency",
    "is_maker",
    "origin",
    "inferred",
    "executed_at",
)
PAPER_ORDER_AUDIT_FIELDS = (
    "exchange_order_id",
    "client_order_id",
    "symbol",
    "side",
    "type",
    "amount",
    "price",
    "filled",
    "average",
    "status",
)
PAPER_TRADE_AUDIT_FIELDS = (
    "trade_id",
    "exchange_order_id",
    "client_order_id",
    "symbol",
    "side",
    "quantity",
    "price",
    "fee",
    "fee_currency",
    "liquidity",
    "executed_at",
)
PAPER_MARK_AUDIT_FIELDS = ("symbol", "price", "walk", "walk_steps", "version")
PAPER_ORDER_ACTIONS = frozenset({Action.PAPER_ORDER_PLACE, Action.PAPER_ORDER_CANCEL})

POSITION_ACTIONS = frozenset({Action.POSITION_SET, Action.POSITION_CORRECT, Action.REPAIR_APPLY})
BALANCE_ACTIONS = frozenset({Action.BALANCE_SET, Action.BALANCE_CORRECT, Action.REPAIR_APPLY})


def _saved(entry: AuditEntry) -> AuditEntry:
    entry.save(force_insert=True)
    return entry


def _one_of(action: Action, allowed: frozenset[Action], family: str) -> Action:
    if action not in allowed:
        raise ValueError(f"{action!r} is not a {family} action ({sorted(allowed)})")
    return action


def entries_record(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Insert the bulk paths' entries (built by the ``*_entry`` functions) in one statement."""
    return audit_bulk_record(entries)


# --- snapshots ---------------------------------------------------------------------------
def account_snapshot(account) -> dict:
    return audit_snapshot(account, ACCOUNT_AUDIT_FIELDS)


def order_snapshot(order) -> dict:
    return audit_snapshot(order, ORDER_AUDIT_FIELDS)


def position_snapshot(position) -> dict:
    return audit_snapshot(position, POSITION_AUDIT_FIELDS)


def balance_snapshot(balance) -> dict:
    return audit_snapshot(balance, BALANCE_AUDIT_FIELDS)


def fill_snapshot(fill) -> dict:
    return audit_snapshot(fill, FILL_AUDIT_FIELDS)


# --- accounts and bots -------------------------------------------------------------------
def account_saved(*, account, before: dict | None, actor: Actor, reason: str = "") -> AuditEntry:
    """``account.create`` (no ``before``) or ``account.update``."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.ACCOUNT_CREATE if before is None else Action.ACCOUNT_UPDATE,
            target=account,
            account=account,
            before=before,
            after=account_snapshot(account),
            reason=reason,
        )
    )


def account_enabled_changed(*, account, before: dict, actor: Actor, reason: str) -> AuditEntry:
    """``account.enable`` or ``account.disable``, from the account's new ``enabled``."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.ACCOUNT_ENABLE if account.enabled else Action.ACCOUNT_DISABLE,
            target=account,
            account=account,
            before=before,
            after=account_snapshot(account),
            reason=reason,
        )
    )


def account_recovery_begun(*, account, before: dict, actor: Actor, reason: str) -> AuditEntry:
    return _saved(
        audit_build(
            actor=actor,
            action=Action.ACCOUNT_RECOVERY_BEGIN,
            target=account,
            account=account,
            before=before,
            after={"recovery_started_at": account.recovery_started_at.isoformat()},
            reason=reason,
        )
    )


def auto_repair_pause_snapshot(account) -> dict:
    until = account.auto_repair_paused_until
    return {
        "auto_repair": account.auto_repair,
        "auto_repair_paused_until": None if until is None else until.isoformat(),
        "auto_repair_paused_reason": account.auto_repair_paused_reason,
    }


def account_auto_repair_paused(*, account, before: dict, actor: Actor, reason: str) -> AuditEntry:
    """``account.auto_repair_pause`` (with its expiry) or ``account.auto_repair_resume``."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.ACCOUNT_AUTO_REPAIR_PAUSE
            if account.auto_repair_paused_until is not None
            else Action.ACCOUNT_AUTO_REPAIR_RESUME,
            target=account,
            account=account,
            before=before,
            after=auto_repair_pause_snapshot(account),
            reason=reason,
        )
    )


def bot_saved(
    *, profile, created: bool, before: dict | None, after: dict, actor: Actor, reason: str = ""
) -> AuditEntry:
    """``bot.create`` or ``bot.update`` (a new token, new grants)."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.BOT_CREATE if created else Action.BOT_UPDATE,
            target=profile,
            before=before,
            after=after,
            reason=reason,
        )
    )


# --- orders and fills --------------------------------------------------------------------
def order_registered(*, order, actor: Actor, reason: str = "") -> AuditEntry:
    return _saved(order_registered_entry(order=order, actor=actor, reason=reason))


def order_registered_entry(*, order, actor: Actor, reason: str = "") -> AuditEntry:
    """An unsaved ``order.register`` entry (the registration inserts it with the order, in
    one statement on PostgreSQL: ``tradingstate.db.orders``)."""
    return audit_build(
        actor=actor,
        action=Action.ORDER_REGISTER,
        target=order,
        account=order.account,
        after=order_snapshot(order),
        reason=reason,
    )


def order_transition_entry(
    *, order, account, before: dict, actor: Actor, reason: str = ""
) -> AuditEntry:
    """An unsaved ``order.transition`` entry (the bulk transition inserts them together)."""
    return audit_build(
        actor=actor,
        action=Action.ORDER_TRANSITION,
        target=order,
        account=account,
        before=before,
        after=order_snapshot(order),
        reason=reason,
    )


def order_transitioned(
    *, order, account, before: dict, actor: Actor, reason: str = ""
) -> AuditEntry:
    return _saved(
        order_transition_entry(
            order=order, account=account, before=before, actor=actor, reason=reason
        )
    )


def fill_recorded(
    *,
    fill,
    order,
    position,
    order_before: dict,
    position_before: dict | None,
    actor: Actor,
    reason: str = "",
) -> AuditEntry:
    """``fill.record``: the fill with the order and position it moved, before and after."""
    return _saved(
        fill_recorded_entry(
            fill=fill,
            order=order,
            position=position,
            order_before=order_before,
            position_before=position_before,
            actor=actor,
            reason=reason,
        )
    )


def fill_recorded_entry(
    *,
    fill,
    order,
    position,
    order_before: dict,
    position_before: dict | None,
    actor: Actor,
    reason: str = "",
) -> AuditEntry:
    """An unsaved ``fill.record`` entry: the fill with the order and position it moved."""
    return audit_build(
        actor=actor,
        action=Action.FILL_RECORD,
        target=fill,
        account=fill.account,
        before={"order": order_before, "position": position_before},
        after={
            "fill": fill_snapshot(fill),
            "order": order_snapshot(order),
            "position": position_snapshot(position),
        },
        reason=reason,
    )


# --- positions and balances --------------------------------------------------------------
def position_changed(
    *,
    position,
    account,
    before: dict | None,
    action: Action,
    actor: Actor,
    reason: str = "",
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> AuditEntry:
    """``position.set`` (a bot's book), ``position.correct`` (staff) or ``repair.apply``."""
    return _saved(
        audit_build(
            actor=actor,
            action=_one_of(action, POSITION_ACTIONS, "position"),
            target=position,
            account=account,
            before=before,
            after=position_snapshot(position),
            reason=reason,
            run_id=run_id,
            discrepancy_id=discrepancy_id,
        )
    )


def balance_changed(
    *,
    balance,
    account,
    before: dict | None,
    action: Action,
    actor: Actor,
    reason: str = "",
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> AuditEntry:
    """``balance.set`` (a bot's book), ``balance.correct`` (staff) or ``repair.apply``."""
    return _saved(
        audit_build(
            actor=actor,
            action=_one_of(action, BALANCE_ACTIONS, "balance"),
            target=balance,
            account=account,
            before=before,
            after=balance_snapshot(balance),
            reason=reason,
            run_id=run_id,
            discrepancy_id=discrepancy_id,
        )
    )


# --- reconciliation ----------------------------------------------------------------------
def sync_entries(
    *,
    action: Action,
    actor: Actor,
    account,
    run_id: int | None,
    changes: Iterable[tuple[models.Model, dict | None, dict | None, str, int | None]],
) -> list[AuditEntry]:
    """Unsaved entries for a bulk sync (reconciliation repairs: ``repair.apply``), one per
    ``(row, before, after, reason, discrepancy_id)``; insert them with ``entries_record``."""
    return [
        audit_build(
            actor=actor,
            action=Action(action),
            target=row,
            account=account,
            before=before,
            after=after,
            reason=reason,
            run_id=run_id,
            discrepancy_id=discrepancy_id,
        )
        for row, before, after, reason, discrepancy_id in changes
    ]


def discrepancy_acknowledged(
    *, discrepancy, before: dict, after: dict, actor: Actor, reason: str
) -> AuditEntry:
    """Staff accepted a discrepancy as is (no local change)."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.DISCREPANCY_ACKNOWLEDGE,
            target=discrepancy,
            account=discrepancy.account,
            before=before,
            after=after,
            reason=reason,
            run_id=discrepancy.run_id,
            discrepancy_id=discrepancy.pk,
        )
    )


# --- the paper venue (the simulated exchange's side) -------------------------------------
def paper_order_snapshot(row) -> dict:
    return audit_snapshot(row, PAPER_ORDER_AUDIT_FIELDS)


def paper_mark_snapshot(row) -> dict:
    return audit_snapshot(row, PAPER_MARK_AUDIT_FIELDS)


def paper_order_entry(
    *, row, action: Action, before: dict | None, actor: Actor, reason: str = ""
) -> AuditEntry:
    """An unsaved ``paper.order_place`` or ``paper.order_cancel`` entry."""
    return audit_build(
        actor=actor,
        action=_one_of(action, PAPER_ORDER_ACTIONS, "paper order"),
        target=row,
        account=row.account,
        before=before,
        after=paper_order_snapshot(row),
        reason=reason,
    )


def paper_trade_entry(
    *, trade, before: dict, after: dict, actor: Actor, reason: str = ""
) -> AuditEntry:
    """An unsaved ``paper.trade`` entry: the trade, and the venue order, position and
    balances it moved (``before``/``after`` hold ``order``, ``position``, ``balances``)."""
    return audit_build(
        actor=actor,
        action=Action.PAPER_TRADE,
        target=trade,
        account=trade.account,
        before=before,
        after={"trade": audit_snapshot(trade, PAPER_TRADE_AUDIT_FIELDS), **after},
        reason=reason,
    )


def paper_mark_entry(*, row, before: dict | None, actor: Actor, reason: str = "") -> AuditEntry:
    """An unsaved ``paper.mark_set`` entry (staff, ``demo`` or the random walk)."""
    return audit_build(
        actor=actor,
        action=Action.PAPER_MARK_SET,
        target=row,
        account=row.account,
        before=before,
        after=paper_mark_snapshot(row),
        reason=reason,
    )


# --- kill switch -------------------------------------------------------------------------
def killswitch_switched(
    *, switch, account, before: dict, after: dict, actor: Actor, reason: str
) -> AuditEntry:
    """``killswitch.activate`` or ``killswitch.deactivate``, from the switch's new state."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.KILLSWITCH_ACTIVATE if switch.active else Action.KILLSWITCH_DEACTIVATE,
            target=switch,
            account=account,
            before=before,
            after=after,
            reason=reason,
        )
    )


def killswitch_orders_cancelled(
    *, switch, account, summary: dict, actor: Actor, reason: str
) -> AuditEntry:
    """``killswitch.cancel_open_orders``: what a cancel-all did, per account."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.KILLSWITCH_CANCEL_OPEN_ORDERS,
            target=switch,
            account=account,
            after=summary,
            reason=reason,
        )
    )


def paper_row_edited(*, row, before: dict | None, actor: Actor, reason: str) -> AuditEntry:
    """``paper.staff_edit``: staff changed or added a row of the paper venue (to stage a
    desync behind a bot's back), every column before and after."""
    return _saved(
        audit_build(
            actor=actor,
            action=Action.PAPER_STAFF_EDIT,
            target=row,
            account=row.account,
            before=before,
            after=paper_row_snapshot(row),
            reason=reason,
        )
    )


def paper_row_snapshot(row) -> dict:
    names = [f.attname for f in row._meta.concrete_fields if not f.primary_key]
    return audit_snapshot(row, names)
