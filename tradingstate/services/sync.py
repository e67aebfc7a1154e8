"""Bringing local state to the exchange's truth: the writes behind reconciliation repairs.

Bulk by design: a pass repairing thousands of rows costs a handful of statements (one
locking read, one bulk write, one bulk insert of audit rows per kind). Each item names the
row ``version`` seen in the snapshot; a row changed since (a bot wrote meanwhile) is left
alone and reported as deferred, so a concurrent update is never overwritten.

Every new row comes from the same pure rules as the single-row services
(``tradingstate.rules``), with ``source=Source.VENUE`` for orders: a repair may walk
several legal moves at once, and nothing else differs. A venue report a rule refuses
(a fill above the order quantity, say) is not clamped: the item is deferred with the
rule's error and the discrepancy stays open (see ``tradingstate.rules.orders``).

``SYNC_BY_KIND`` maps each repair kind of a ``RepairPlan`` to its bulk function; every
function takes ``(account=, items=, actor=, run_id=, action=)`` and returns one
``SyncOutcome`` per item, in order: outcomes are kept by the item's place, never by its
``key`` (two items may share one), and an item is reported applied only when a row now
carries its change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from tradingstate.actors import Actor
from tradingstate.errors import ApplicationError
from tradingstate.locks import (
    locked_by_pk,
    order_qs_select_for_update,
    rows_qs_select_for_update,
)
from tradingstate.models import AuditEntry, Balance, ExchangeAccount, Instrument, Order, Position
from tradingstate.rules import Source
from tradingstate.rules import balances as balance_rules
from tradingstate.rules import orders as order_rules
from tradingstate.rules import positions as position_rules
from tradingstate.services import accounting as accounting_services
from tradingstate.services import events
from tradingstate.services import fills as fills_services
from tradingstate.services.audit import audit_snapshot
from tradingstate.services.books import (
    balance_apply,
    balance_state,
    position_apply,
    position_state,
)
from tradingstate.services.bulk import rows_bulk_create, rows_bulk_update
from tradingstate.services.events import BALANCE_AUDIT_FIELDS, POSITION_AUDIT_FIELDS
from tradingstate.services.orders import TRANSITION_FIELDS, order_apply_change, order_from_rule
from tradingstate.sync_kinds import RepairKind

Action = AuditEntry.Action

ROW_CHANGED = "the local row changed since the snapshot (version {actual}, expected {expected})"
ROW_APPEARED = "a local row appeared since the snapshot"
ROW_GONE = "the local row no longer exists"
ORDER_IN_BATCH = "another item of this batch creates client order id {client_order_id}"


@dataclass
class SyncItem:
    key: str
    values: dict
    target_id: int | None = None
    expected_version: int | None = None
    discrepancy_id: int | None = None
    reason: str = ""


@dataclass
class SyncOutcome:
    key: str
    applied: bool
    target_id: int | None = None
    before: dict | None = None
    after: dict | None = None
    error: str = ""
    discrepancy_id: int | None = None
    extra: dict = field(default_factory=dict)


def _audits(*, actor, action, account, run_id, pairs) -> None:
    events.entries_record(
        events.sync_entries(
            action=action,
            actor=actor,
            account=account,
            run_id=run_id,
            changes=[
                (obj, outcome.before, outcome.after, item.reason, item.discrepancy_id)
                for item, obj, outcome in pairs
            ],
        )
    )


@transaction.atomic(savepoint=False)
def orders_create_from_exchange(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
) -> list[SyncOutcome]:
    """Create local orders for orders open on the exchange that we did not know. A client
    order id a row already has is deferred (:data:`ROW_APPEARED`), and so is a second item
    of the batch naming one (:data:`ORDER_IN_BATCH`): one row, one order."""
    outcomes: dict[int, SyncOutcome] = {}  # by the item's place in ``items``
    coids = [item.values["client_order_id"] for item in items]
    taken = set(
        Order.objects.filter(account=account, client_order_id__any=coids).values_list(
            "client_order_id", flat=True
        )
    )
    in_batch: set[str] = set()
    now = timezone.now()
    new: list[tuple[int, SyncItem, Order]] = []
    for n, item in enumerate(items):
        v = item.values
        coid = v["client_order_id"]
        if coid in taken or coid in in_batch:
            error = ROW_APPEARED if coid in taken else ORDER_IN_BATCH.format(client_order_id=coid)
            outcomes[n] = SyncOutcome(item.key, False, error=error)
            continue
        try:
            order = order_from_rule(
                account, _new_order_from_venue(v), origin=Order.Origin.RECONCILIATION
            )
        except ApplicationError as exc:
            outcomes[n] = SyncOutcome(item.key, False, error=exc.message)
            continue
        order.created_at = order.updated_at = now
        in_batch.add(coid)
        new.append((n, item, order))
    if new:
        try:
            with transaction.atomic():
                rows_bulk_create(Order, [o for _, _, o in new])
        except IntegrityError:
            # a bot registered one of them between our check and the insert: one by one
            for _, _, order in new:
                order.pk = None
                order._state.adding = True
            new = _create_one_by_one(new, outcomes)
    pairs = []
    for n, item, order in new:
        outcome = SyncOutcome(
            item.key,
            True,
            target_id=order.pk,
            after=events.order_snapshot(order),
            discrepancy_id=item.discrepancy_id,
        )
        outcomes[n] = outcome
        pairs.append((item, order, outcome))
    _audits(actor=actor, action=action, account=account, run_id=run_id, pairs=pairs)
    return [outcomes[n] for n in range(len(items))]


def _new_order_from_venue(v: dict) -> order_rules.NewOrder:
    return order_rules.order_new(
        source=Source.VENUE,
        client_order_id=v.get("client_order_id"),
        symbol=v.get("symbol"),
        side=v.get("side"),
        type=v.get("type"),
        quantity=v.get("quantity"),
        price=v.get("price"),
        status=v.get("status"),
        filled_qty=v.get("filled_qty"),
        avg_fill_price=v.get("avg_fill_price"),
        exchange_order_id=v.get("exchange_order_id") or "",
    )


def _create_one_by_one(new, outcomes):
    created = []
    for n, item, order in new:
        try:
            with transaction.atomic():
                order.save(force_insert=True)
            created.append((n, item, order))
        except IntegrityError:
            outcomes[n] = SyncOutcome(item.key, False, error=ROW_APPEARED)
    return created


@transaction.atomic(savepoint=False)
def orders_sync_state(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
) -> list[SyncOutcome]:
    """Advance local orders to the exchange's status and filled quantity: the order rules
    with ``source=Source.VENUE`` (any state reachable by legal moves)."""
    locked = locked_by_pk(order_qs_select_for_update(), account, [i.target_id for i in items])
    outcomes = []
    pairs = []
    changed = []
    for item in items:
        order = locked.get(item.target_id)
        outcome = _sync_order(order, item)
        outcomes.append(outcome)
        if outcome.applied:
            changed.append(order)
            pairs.append((item, order, outcome))
    if changed:
        rows_bulk_update(Order, changed, TRANSITION_FIELDS)
    _audits(actor=actor, action=action, account=account, run_id=run_id, pairs=pairs)
    return outcomes


def _sync_order(order: Order | None, item: SyncItem) -> SyncOutcome:
    fail = SyncOutcome(item.key, False, target_id=item.target_id)
    if order is None:
        fail.error = ROW_GONE
        return fail
    if item.expected_version is not None and order.version != item.expected_version:
        fail.error = ROW_CHANGED.format(actual=order.version, expected=item.expected_version)
        return fail
    v = item.values
    before = events.order_snapshot(order)
    change = order_rules.OrderChange(
        status=v.get("status"),
        filled_qty=v.get("filled_qty"),
        avg_fill_price=v.get("avg_fill_price"),
        exchange_order_id=v.get("exchange_order_id"),
    )
    try:
        order_apply_change(order, change, source=Source.VENUE)
    except ApplicationError as exc:
        fail.error = exc.message
        return fail
    order.updated_at = timezone.now()
    return SyncOutcome(
        item.key,
        True,
        target_id=order.pk,
        before=before,
        after=events.order_snapshot(order),
        discrepancy_id=item.discrepancy_id,
        extra={"from": before["status"], "to": order.status},
    )


def _sync_rows(
    *,
    model,
    account: ExchangeAccount,
    items: list[SyncItem],
    key_field: str,
    audit_fields: tuple[str, ...],
    state_of,
    rule,
    write,
    actor: Actor,
    run_id: int | None,
    action: AuditEntry.Action,
    after_extra=None,
) -> list[SyncOutcome]:
    """Shared by positions and balances: lock, version-check, apply the row's rule
    (``rule(current_state_or_None, values) -> new state``), update or create, audit.
    ``after_extra(item) -> dict`` adds to each audit entry's ``after``."""
    existing = {
        getattr(row, key_field): row
        for row in rows_qs_select_for_update(model).filter(
            account=account, **{f"{key_field}__in": [i.values.get(key_field) for i in items]}
        )
    }
    for row in existing.values():
        row.account = account  # the audit's target_repr names it: no query per row
    outcomes, pairs, to_update, to_create = [], [], [], []
    now = timezone.now()
    for item in items:
        row = existing.get(item.values.get(key_field))
        fail = SyncOutcome(item.key, False, target_id=item.target_id)
        if item.target_id is None and row is not None:
            fail.error = ROW_APPEARED
        elif item.target_id is not None and row is None:
            fail.error = ROW_GONE
        elif row is not None and item.expected_version not in (None, row.version):
            fail.error = ROW_CHANGED.format(actual=row.version, expected=item.expected_version)
        if fail.error:
            outcomes.append(fail)
            continue
        try:
            new = rule(state_of(row), item.values)
        except ApplicationError as exc:
            fail.error = exc.message
            outcomes.append(fail)
            continue
        before = audit_snapshot(row, audit_fields) if row else None
        if row is None:
            row = model(account=account, **{key_field: getattr(new, key_field)})
            existing[getattr(new, key_field)] = row  # a second item for it: ROW_APPEARED
            to_create.append(row)
        else:
            to_update.append(row)
        write(row, new)
        row.updated_at = now
        outcome = SyncOutcome(item.key, True, before=before, discrepancy_id=item.discrepancy_id)
        outcomes.append(outcome)
        pairs.append((item, row, outcome))
    if to_update:
        fields = [f for f in audit_fields if f != key_field] + ["updated_at"]
        rows_bulk_update(model, to_update, fields)
    if to_create:
        model.objects.bulk_create(to_create)
    for _item, row, outcome in pairs:
        outcome.target_id = row.pk
        outcome.after = audit_snapshot(row, audit_fields)
        if after_extra is not None:
            outcome.after.update(after_extra(_item))
    _audits(actor=actor, action=action, account=account, run_id=run_id, pairs=pairs)
    return outcomes


def _position_rule(current, v: dict) -> position_rules.PositionState:
    return position_rules.position_set(
        current, symbol=v.get("symbol"), qty=v.get("qty"), entry_price=v.get("entry_price")
    )


def _balance_rule(current, v: dict) -> balance_rules.BalanceState:
    return balance_rules.balance_set(
        current,
        currency=v.get("currency"),
        free=v.get("free"),
        used=v.get("used"),
        total=v.get("total"),
    )


@transaction.atomic(savepoint=False)
def positions_sync(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
) -> list[SyncOutcome]:
    """Set local positions to the exchange's quantities."""
    return _sync_rows(
        model=Position,
        account=account,
        items=items,
        key_field="symbol",
        audit_fields=POSITION_AUDIT_FIELDS,
        state_of=position_state,
        rule=_position_rule,
        write=position_apply,
        actor=actor,
        run_id=run_id,
        action=action,
    )


@transaction.atomic(savepoint=False)
def balances_sync(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
) -> list[SyncOutcome]:
    """Set local balances (free/used/total) to the exchange's."""
    return _sync_rows(
        model=Balance,
        account=account,
        items=items,
        key_field="currency",
        audit_fields=BALANCE_AUDIT_FIELDS,
        state_of=balance_state,
        rule=_balance_rule,
        write=balance_apply,
        actor=actor,
        run_id=run_id,
        action=action,
    )


@transaction.atomic(savepoint=False)
def positions_adopt_entry_price(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
) -> list[SyncOutcome]:
    """The ``entry_price_mismatch`` repair: adopt the venue's average entry price through the
    position rules (an accounting ``Adjustment``; quantity, realized P&L and fees unchanged).
    Each audit entry's ``after`` carries ``adjustment`` so a rebuild replays it in place."""
    instruments = {
        i.symbol: i
        for i in Instrument.objects.filter(
            account=account, symbol__in=[item.values.get("symbol") for item in items]
        )
    }

    def rule(current, v: dict) -> position_rules.PositionBook:
        symbol = v.get("symbol")
        terms = accounting_services.position_terms(symbol, instruments.get(symbol))
        return position_rules.position_adopt_entry_price(
            current, entry_price=v.get("entry_price"), terms=terms
        )

    return _sync_rows(
        model=Position,
        account=account,
        items=items,
        key_field="symbol",
        audit_fields=accounting_services.POSITION_ACCOUNTING_AUDIT_FIELDS,
        state_of=accounting_services.position_book,
        rule=rule,
        write=accounting_services.position_accounting_apply,
        actor=actor,
        run_id=run_id,
        action=action,
        after_extra=lambda item: {"adjustment": {"entry_price": item.values.get("entry_price")}},
    )


SYNC_BY_KIND = {
    RepairKind.FILL_RECORD: fills_services.fills_record_from_venue,
    RepairKind.FILL_CORRECT: fills_services.fills_correct,
    RepairKind.ORDER_CREATE: orders_create_from_exchange,
    RepairKind.ORDER_STATE: orders_sync_state,
    RepairKind.POSITION_SET: positions_sync,
    RepairKind.BALANCE_SET: balances_sync,
    RepairKind.POSITION_ENTRY_PRICE: positions_adopt_entry_price,
}
