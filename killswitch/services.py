"""Every write of the kill switch, and the order guard.

``killswitch_activate`` / ``killswitch_deactivate`` change one scope (global, or one account)
under ``FOR UPDATE``, write a KillSwitchEvent and an AuditEntry in the same transaction and
log the contract lines. ``trading_allowed`` reads the state in one statement and fails
closed; ``order_register_guarded`` runs the guard and the registration in one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import cache

from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from killswitch.cancel import CANCEL_MAX_ROUNDS, cancel_open_orders
from killswitch.locks import killswitch_qs_select_for_update
from killswitch.models import KillSwitch, KillSwitchEvent
from tradingstate.actors import Actor
from tradingstate.db.orders import Guard, guard_supported
from tradingstate.errors import TradingHalted, ValidationFailed
from tradingstate.models import ExchangeAccount, Order
from tradingstate.services import order_register, require_reason
from tradingstate.services.audit import audit_snapshot
from tradingstate.services.events import killswitch_orders_cancelled, killswitch_switched
from tradingstate.services.notifications import notification_emit
from tradingstate.services.orders import GuardRefused

logger = logging.getLogger("killswitch")

STATE_AUDIT_FIELDS = ("account", "active", "reason", "activated_by", "activated_at", "version")

ALREADY_ACTIVE = "Kill switch already active ({scope})."
ALREADY_INACTIVE = "Kill switch already inactive ({scope})."
ACTIVATED = "Kill switch activated ({scope})."
DEACTIVATED = "Kill switch deactivated ({scope})."
STATE_UNAVAILABLE = "kill switch state unavailable: {error}"
ORDERS_REFUSED = "Orders are refused while the kill switch is active."

ACTIVATED_LOG = "KILL SWITCH ACTIVATED: reason=%s triggered_by=%s%s"
DEACTIVATED_LOG = "KILL SWITCH DEACTIVATED: reason=%s triggered_by=%s%s"


# --- Results -----------------------------------------------------------------------------
@dataclass
class KillSwitchResult:
    """What an activation or deactivation did. ``changed`` False is a no-op (already so)."""

    changed: bool
    active: bool
    scope: str  # "global" | "account"
    account: str | None
    message: str
    switch: KillSwitch
    event: KillSwitchEvent | None = None
    # set once cancel-all ran (after the activation committed), None when not requested
    cancel_summary: dict | None = field(default=None)


@dataclass(frozen=True)
class Decision:
    """The guard's answer. ``scope`` is "global", "account" or "unavailable"; "" if allowed."""

    allowed: bool
    reason: str = ""
    scope: str = ""

    def __bool__(self) -> bool:
        return self.allowed


# --- Activation / deactivation -------------------------------------------------------------
@transaction.atomic
def killswitch_activate(
    *,
    reason: str,
    actor: Actor,
    account: ExchangeAccount | None = None,
    cancel_open_orders: bool = False,
    cancel_accounts: list[ExchangeAccount] | None = None,
) -> KillSwitchResult:
    """Halt all trading (``account`` None) or one account's. ``reason`` is required.

    Already active: a no-op result (no event, no audit). With ``cancel_open_orders`` the
    scope's open orders are cancelled on the exchange after this transaction commits (also
    when the switch was already active), and the summary is recorded as its own event.
    ``cancel_accounts`` limits a global cancel-all to the accounts the actor may act on
    (a bot granted ``killswitch.activate_global`` halts everything, cancels only its own).
    Who may halt which scope is the entry point's decision (``killswitch.api``).
    """
    reason = require_reason(reason)
    switch = _lock_scope(account)
    _, scope_label = _scope(account)
    if switch.active:
        logger.info("Kill switch already active (%s): reason=%s", scope_label, _one_line(reason))
        result = _result(switch, account, changed=False, active=True, message=ALREADY_ACTIVE)
    else:
        event = _change_state(
            switch,
            active=True,
            reason=reason,
            actor=actor,
            account=account,
            cancel_open_orders=cancel_open_orders,
        )
        logger.critical(
            ACTIVATED_LOG,
            _one_line(reason),
            actor.name,
            _account_suffix(account),
            extra={"structured": _log_fields("activate", actor, account, reason)},
        )
        result = _result(switch, account, changed=True, active=True, message=ACTIVATED, event=event)
    if cancel_open_orders:
        transaction.on_commit(
            lambda: _cancel_after_commit(
                result, actor=actor, account=account, accounts=cancel_accounts
            )
        )
    return result


@transaction.atomic
def killswitch_activate_accounts(
    *,
    reason: str,
    actor: Actor,
    accounts: list[ExchangeAccount],
    cancel_open_orders: bool = False,
) -> list[KillSwitchResult]:
    """Halt each of ``accounts`` (a bot's own accounts) in one transaction, in pk order."""
    reason = require_reason(reason)
    return [
        killswitch_activate(
            reason=reason, actor=actor, account=account, cancel_open_orders=cancel_open_orders
        )
        for account in sorted(accounts, key=lambda a: a.pk)
    ]


@transaction.atomic
def killswitch_deactivate(
    *,
    actor: Actor,
    reason: str = "",
    account: ExchangeAccount | None = None,
) -> KillSwitchResult:
    """Resume trading for the scope. Already inactive: a no-op result (no event, no audit).

    Permission checks belong to the entry points (API, admin); the CLI is trusted.
    """
    reason = (reason or "").strip()
    switch = _lock_scope(account)
    _, scope_label = _scope(account)
    if not switch.active:
        logger.info("Kill switch already inactive (%s)", scope_label)
        return _result(switch, account, changed=False, active=False, message=ALREADY_INACTIVE)
    event = _change_state(switch, active=False, reason=reason, actor=actor, account=account)
    logger.warning(
        DEACTIVATED_LOG,
        _one_line(reason),
        actor.name,
        _account_suffix(account),
        extra={"structured": _log_fields("deactivate", actor, account, reason)},
    )
    return _result(switch, account, changed=True, active=False, message=DEACTIVATED, event=event)


def _result(switch, account, *, changed, active, message, event=None) -> KillSwitchResult:
    scope, scope_label = _scope(account)
    return KillSwitchResult(
        changed=changed,
        active=active,
        scope=scope,
        account=account.name if account else None,
        message=message.format(scope=scope_label),
        switch=switch,
        event=event,
    )


def _change_state(
    switch: KillSwitch, *, active: bool, reason: str, actor: Actor, account, **event_extra
) -> KillSwitchEvent:
    """Flip one scope's locked row; its KillSwitchEvent and AuditEntry in the same transaction."""
    before = audit_snapshot(switch, STATE_AUDIT_FIELDS)
    switch.active = active
    switch.reason = reason if active else ""
    switch.activated_by = actor.name[:150] if active else ""
    switch.activated_at = timezone.now() if active else None
    switch.updated_by = actor.name[:150]
    switch.version += 1
    switch.save(
        update_fields=[
            "active",
            "reason",
            "activated_by",
            "activated_at",
            "updated_by",
            "version",
            "updated_at",
        ]
    )
    action = KillSwitchEvent.Action.ACTIVATE if active else KillSwitchEvent.Action.DEACTIVATE
    event = _event(action=action, actor=actor, account=account, reason=reason, **event_extra)
    killswitch_switched(
        switch=switch,
        account=account,
        before=before,
        after=audit_snapshot(switch, STATE_AUDIT_FIELDS),
        actor=actor,
        reason=reason,
    )
    _notify(active=active, account=account, actor=actor, reason=reason)
    return event


def _notify(*, active: bool, account, actor: Actor, reason: str) -> None:
    """One message per change, sent after this transaction commits (tradingstate core)."""
    what = "ACTIVATED" if active else "deactivated"
    scope = f"account {account.name}" if account else "global"
    notification_emit(
        event="killswitch",
        key=f"account:{account.name}" if account else "global",
        state="active" if active else "inactive",
        title=f"tradingstate: kill switch {what} ({scope})",
        body=f"Kill switch {what} ({scope}) by {actor.name}: {reason or '(no reason)'}"
        + ("\nNew orders are refused (HTTP 423)." if active else "\nTrading may resume."),
    )


@transaction.atomic
def killswitch_record_cancel(
    *, actor: Actor, account: ExchangeAccount | None, summary: dict
) -> KillSwitchEvent:
    """Record a cancel-all's outcome: a KillSwitchEvent and an AuditEntry."""
    switch = _scope_row(account)
    event = _event(
        action=KillSwitchEvent.Action.CANCEL_ORDERS,
        actor=actor,
        account=account,
        reason=switch.reason,
        cancel_open_orders=True,
        cancel_summary=summary,
    )
    killswitch_orders_cancelled(
        switch=switch, account=account, summary=summary, actor=actor, reason=switch.reason
    )
    return event


def killswitch_cancel_open_orders(
    *,
    actor: Actor,
    account: ExchangeAccount | None = None,
    accounts: list[ExchangeAccount] | None = None,
    max_rounds: int = CANCEL_MAX_ROUNDS,
    adapter_factory: Callable | None = None,
) -> dict:
    """Cancel open orders for ``account``, or every enabled account when None, and record
    the summary as a ``cancel_orders`` KillSwitchEvent plus an AuditEntry.

    Never raises (it runs after a committed activation); failures are in the summary:
    ``{"complete", "cancelled", "remaining", "accounts": {name: {...}}}``.
    """
    summary = cancel_open_orders(
        account=account, accounts=accounts, max_rounds=max_rounds, adapter_factory=adapter_factory
    )
    try:
        killswitch_record_cancel(actor=actor, account=account, summary=summary)
    except Exception:
        logger.exception("Kill switch cancel-all: could not record the summary")
    return summary


def _cancel_after_commit(result: KillSwitchResult, *, actor: Actor, account, accounts=None) -> None:
    result.cancel_summary = killswitch_cancel_open_orders(
        actor=actor, account=account, accounts=accounts
    )


def _lock_scope(account: ExchangeAccount | None) -> KillSwitch:
    """Lock the global row, then (per account) the account's row; create rows if missing.

    Every change locks the global row first, so one lock order holds everywhere and an
    account's first halt (an INSERT) still waits for registrations holding FOR SHARE on it.
    """
    glob = _get_or_create_locked(None)
    return glob if account is None else _get_or_create_locked(account)


def _get_or_create_locked(account: ExchangeAccount | None) -> KillSwitch:
    lookup = {"account__isnull": True} if account is None else {"account": account}
    row = killswitch_qs_select_for_update().filter(**lookup).first()
    if row is None:
        killswitch_row_ensure(account=account)
        row = killswitch_qs_select_for_update().get(**lookup)
    if account is not None:
        row.account = account
    return row


def killswitch_row_ensure(*, account: ExchangeAccount | int | None) -> None:
    """Make sure the scope's switch row exists (inactive when new). Idempotent, race-safe.

    Every account gets its row when it is created (``killswitch.apps`` connects this to the
    account's ``post_save``; migration ``0003`` created the rows of existing accounts), so the
    order guard's ``FOR SHARE`` always finds an existing row to wait on: an account's first
    halt is an UPDATE of that row, never an INSERT that a waiting guard's snapshot cannot see.
    Not audited: an inactive row records no decision, only that the scope exists.
    """
    account_id = account.pk if isinstance(account, ExchangeAccount) else account
    if KillSwitch.objects.filter(account_id=account_id).exists():
        return
    try:
        # a savepoint: a concurrent insert of the same scope waits here, then conflicts
        with transaction.atomic():
            KillSwitch.objects.create(account_id=account_id)
    except IntegrityError:
        pass  # a concurrent caller created it


def _scope_row(account: ExchangeAccount | None) -> KillSwitch:
    lookup = {"account__isnull": True} if account is None else {"account": account}
    row = KillSwitch.objects.filter(**lookup).first()
    return row if row is not None else _get_or_create_locked(account)


def _scope(account: ExchangeAccount | None) -> tuple[str, str]:
    return ("global", "global") if account is None else ("account", f"account {account.name}")


def _event(*, action, actor: Actor, account, reason: str, **extra) -> KillSwitchEvent:
    return KillSwitchEvent.objects.create(
        action=action,
        account=account,
        actor_type=actor.type,
        actor_name=actor.name[:150],
        actor_user_id=actor.user_id,
        correlation_id=(actor.correlation_id or "")[:64],
        reason=reason,
        **extra,
    )


def _one_line(text: str) -> str:
    # keep one log record on one line whatever the reason contains
    return " ".join((text or "").split())


def _account_suffix(account) -> str:
    return f" account={account.name}" if account is not None else ""


def _log_fields(action: str, actor: Actor, account, reason: str) -> dict:
    return {
        "type": f"killswitch_{action}",
        "message": (ACTIVATED_LOG if action == "activate" else DEACTIVATED_LOG)
        % (_one_line(reason), actor.name, _account_suffix(account)),
        "reason": reason,
        "triggered_by": actor.name,
        "account": account.name if account is not None else None,
    }


# --- The order guard -------------------------------------------------------------------------
def trading_allowed(account: ExchangeAccount | int | None, *, lock: bool = False) -> Decision:
    """May a new order be registered for ``account``? One SQL statement; fails closed.

    Reads the global row and the account's row together. Nothing is cached: every call reads
    the committed state. ``lock=True`` inside a transaction on PostgreSQL takes ``FOR SHARE``
    on those rows, so a concurrent activation (``FOR UPDATE``) and this transaction serialise;
    ``order_register_guarded`` uses it. Any error reading the state refuses the order.
    """
    try:
        rows = _halt_rows(account, lock=lock)
    except Exception as exc:  # fail closed on anything, and say so loudly
        logger.error(
            "Kill switch state unavailable; refusing new orders (%s: %s)",
            type(exc).__name__,
            exc,
            exc_info=True,
        )
        return Decision(
            allowed=False,
            reason=STATE_UNAVAILABLE.format(error=type(exc).__name__),
            scope="unavailable",
        )
    halted = {account_id: reason for account_id, active, reason in rows if active}
    if None in halted:
        return Decision(allowed=False, reason=halted[None] or ORDERS_REFUSED, scope="global")
    if halted:
        return Decision(
            allowed=False, reason=next(iter(halted.values())) or ORDERS_REFUSED, scope="account"
        )
    return Decision(allowed=True)


def _halt_rows(account, *, lock: bool) -> list[tuple[int | None, bool, str]]:
    account_id = account.pk if isinstance(account, ExchangeAccount) else account
    if not lock:
        return _read_halt_rows(account_id, lock=False)
    # Where the read takes share locks (PostgreSQL, in a transaction) it runs in a savepoint:
    # if a row is missing, rolling back to it gives back the locks on the rows that were
    # found, so none is held while a row is created (a halt creating the global row would
    # wait on them while we wait on it). Elsewhere nothing is locked and no savepoint is
    # needed. Either way: create what is missing, then read again, in lock order.
    for _ in range(3):
        try:
            with transaction.atomic() if _locks_rows() else nullcontext():
                rows = _read_halt_rows(account_id, lock=True)
                if not _complete(rows, account_id):
                    raise _RowMissing
                return rows
        except _RowMissing:
            _ensure_rows(account_id)
    raise KillSwitch.DoesNotExist("the kill switch rows kept disappearing")


class _RowMissing(Exception):
    pass


def _complete(rows, account_id: int | None) -> bool:
    scopes = {r[0] for r in rows}
    return None in scopes and (account_id is None or account_id in scopes)


def _ensure_rows(account_id: int | None) -> None:
    # No row for the scope (created outside the ORM, say). Without one, a concurrent first
    # halt would INSERT a row a locking read's snapshot never sees. Create it (or wait for a
    # concurrent creator), then read again: a new statement, a new snapshot.
    killswitch_row_ensure(account=None)
    if account_id is not None:
        killswitch_row_ensure(account=account_id)


def _locks_rows() -> bool:
    return connection.vendor == "postgresql" and connection.in_atomic_block


def _read_halt_rows(account_id: int | None, *, lock: bool) -> list[tuple[int | None, bool, str]]:
    scope = Q(account__isnull=True)
    if account_id is not None:
        scope |= Q(account_id=account_id)
    qs = (
        KillSwitch.objects.filter(scope)
        # the global row first, then the account's: the order activation locks them in
        # (by scope, never by pk: a global row re-created later would sort after accounts)
        .order_by(F("account_id").asc(nulls_first=True))
        .values_list("account_id", "active", "reason")
    )
    if lock and _locks_rows():
        # Django has no FOR SHARE; shared row locks do not block each other, so concurrent
        # registrations do not serialise among themselves, only against a change of state.
        sql, params = qs.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"{sql} FOR SHARE", params)
            return [tuple(row) for row in cursor.fetchall()]
    return list(qs)


def order_guard(account: ExchangeAccount | int | None, *, lock: bool = False) -> Decision:
    """Raise ``TradingHalted`` (HTTP 423, ``kill_switch_active``) unless trading is allowed."""
    decision = trading_allowed(account, lock=lock)
    if not decision.allowed:
        raise TradingHalted(decision.reason, reason=decision.reason, scope=decision.scope)
    return decision


def order_register_guarded(**kwargs) -> tuple[Order, bool]:
    """``order_register`` behind the kill switch: no order is accepted once a halt commits.

    PostgreSQL: ONE statement (``halt_guard``): the global and account switch rows are read
    and share-locked in the statement that inserts the order, which needs no transaction
    around it. An activation that committed first is seen (a ``FOR SHARE`` that waited reads
    the row's newest version); an activation that starts meanwhile waits (``FOR UPDATE``)
    until the registration has committed. Elsewhere (SQLite, one writer at a time), and
    when a switch row is missing: the guard's read, then the registration, in one
    transaction.

    A retry of an order registered before the halt is not a new order: it gets the existing
    order back (or the conflict), so a bot can learn whether its first attempt landed.
    Takes exactly ``order_register``'s keyword arguments.
    """
    account = kwargs.get("account")
    if guard_supported() and account is not None:
        try:
            return _register_in_one_statement(account, kwargs)
        except ValidationFailed:
            # the order's own checks ran before the statement that reads the switch: answer
            # as the transaction below would, where the guard comes first
            _refuse_new_order_while_halted(trading_allowed(account), kwargs)
            raise
        except GuardRefused as refused:
            if refused.outcome.refused:
                decision = trading_allowed(account)
                if not decision.allowed:
                    raise TradingHalted(
                        decision.reason, reason=decision.reason, scope=decision.scope
                    ) from None
            # a switch row is missing, or the halt ended meanwhile: decide in a transaction
        except DatabaseError as exc:
            # nothing was written (one statement); the guard's own read below fails closed
            # if the state is what cannot be read, or the error comes back as it is
            logger.warning(
                "Guarded registration statement failed (%s: %s); deciding in a transaction",
                type(exc).__name__,
                exc,
            )
    with transaction.atomic():
        # the guard first; the retry check runs only when the guard refuses, so an
        # allowed registration costs no extra read (a retry that is allowed finds its order
        # through the insert's ON CONFLICT in order_register)
        _refuse_new_order_while_halted(trading_allowed(account, lock=True), kwargs)
        return order_register(savepoint=False, **kwargs)  # this block is its transaction


def _refuse_new_order_while_halted(decision: Decision, kwargs: dict) -> None:
    """Raise ``TradingHalted`` unless trading is allowed or the registration is a retry of
    an order registered before the halt (which then answers as a retry: the order, or the
    conflict or content error)."""
    if decision.allowed:
        return
    retry = (
        decision.scope != "unavailable"
        and Order.objects.filter(
            account=kwargs.get("account"), client_order_id=kwargs.get("client_order_id")
        ).exists()
    )
    if not retry:
        raise TradingHalted(decision.reason, reason=decision.reason, scope=decision.scope)


def _register_in_one_statement(account, kwargs) -> tuple[Order, bool]:
    guard = halt_guard(account)
    if connection.in_atomic_block:
        # inside a caller's transaction, a failed statement must not abort it: a savepoint
        # (API requests run in autocommit, where the statement is its own transaction)
        with transaction.atomic():
            return order_register(guard=guard, **kwargs)
    return order_register(guard=guard, **kwargs)


def halt_guard(account: ExchangeAccount | int) -> Guard:
    """The kill switch as a registration's guard (``tradingstate.db.orders.Guard``): the
    global row and the account's, in the order activations lock them, share-locked; a row
    refuses when it is active. The same rows and rule as ``trading_allowed``."""
    account_id = account.pk if isinstance(account, ExchangeAccount) else account
    return Guard(sql=_guard_sql(), params=(account_id,), rows=2)


@cache
def _guard_sql() -> str:
    qn = connection.ops.quote_name
    table = qn(KillSwitch._meta.db_table)
    account = qn(KillSwitch._meta.get_field("account").column)
    return (
        f"SELECT {qn('active')} FROM {table} "  # noqa: S608
        f"WHERE {account} IS NULL OR {account} = %s "
        f"ORDER BY {account} ASC NULLS FIRST FOR SHARE"
    )
