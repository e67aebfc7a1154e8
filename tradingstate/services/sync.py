"""Bringing local state to the exchange's truth: the writes behind reconciliation repairs.

Bulk by design: a pass repairing thousands of rows costs a handful of statements (one
locking read, one bulk write, one bulk insert of audit rows per kind). Each item names the
row ``version`` seen in the snapshot; a row changed since (a bot wrote meanwhile) is left
alone and reported as deferred, so a concurrent update is never overwritten. The order
status machine still holds: a repair walks only legal moves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.amounts import parse_amount
from tradingstate.errors import ApplicationError
from tradingstate.locks import order_qs_select_for_update, rows_qs_select_for_update
from tradingstate.models import Balance, ExchangeAccount, Order, Position
from tradingstate.services.audit import audit_build, audit_bulk_record, audit_snapshot
from tradingstate.services.books import BALANCE_AUDIT_FIELDS, POSITION_AUDIT_FIELDS
from tradingstate.services.bulk import rows_bulk_create, rows_bulk_update
from tradingstate.services.orders import ORDER_AUDIT_FIELDS, validate_client_order_id
from tradingstate.sync_kinds import RepairKind

ROW_CHANGED = "the local row changed since the snapshot (version {actual}, expected {expected})"
ROW_APPEARED = "a local row appeared since the snapshot"
ROW_GONE = "the local row no longer exists"
NO_LEGAL_MOVE = "no legal status move from {frm} to {to}"
FILLED_DECREASE = "filled quantity would decrease from {old} to {new}"


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


def _amount(values: dict, name: str, **rules) -> Decimal | None:
    raw = values.get(name)
    return None if raw is None else parse_amount(raw, name, **rules)


def _audits(*, actor, action, account, run_id, pairs) -> None:
    audit_bulk_record(
        [
            audit_build(
                actor=actor,
                action=action,
                target=obj,
                account=account,
                before=outcome.before,
                after=outcome.after,
                reason=item.reason,
                run_id=run_id,
                discrepancy_id=item.discrepancy_id,
            )
            for item, obj, outcome in pairs
        ]
    )


@transaction.atomic(savepoint=False)
def orders_create_from_exchange(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: str = "repair.apply",
) -> list[SyncOutcome]:
    """Create local orders for orders open on the exchange that we did not know."""
    outcomes: dict[str, SyncOutcome] = {}
    coids = [item.values["client_order_id"] for item in items]
    taken = set(
        Order.objects.filter(account=account, client_order_id__any=coids).values_list(
            "client_order_id", flat=True
        )
    )
    now = timezone.now()
    new: list[tuple[SyncItem, Order]] = []
    for item in items:
        v = item.values
        coid = v["client_order_id"]
        if coid in taken:
            outcomes[item.key] = SyncOutcome(item.key, False, error=ROW_APPEARED)
            continue
        try:
            validate_client_order_id(coid)
            quantity = _amount(v, "quantity", positive=True)
            filled = _amount(v, "filled_qty", non_negative=True) or Decimal(0)
            if filled > quantity:
                raise ApplicationError(f"filled {filled} exceeds quantity {quantity}")
            order = Order(
                account=account,
                client_order_id=coid,
                exchange_order_id=v.get("exchange_order_id") or "",
                symbol=v["symbol"],
                side=v["side"],
                type=v.get("type") or Order.Type.OTHER,
                quantity=quantity,
                price=_amount(v, "price", non_negative=True),
                filled_qty=filled,
                remaining_qty=quantity - filled,
                avg_fill_price=_amount(v, "avg_fill_price", non_negative=True),
                status=v["status"],
                origin=Order.Origin.RECONCILIATION,
                created_at=now,
                updated_at=now,
            )
        except ApplicationError as exc:
            outcomes[item.key] = SyncOutcome(item.key, False, error=exc.message)
            continue
        taken.add(coid)
        new.append((item, order))
    if new:
        try:
            with transaction.atomic():
                rows_bulk_create(Order, [o for _, o in new])
        except IntegrityError:
            # a bot registered one of them between our check and the insert: one by one
            for _, order in new:
                order.pk = None
                order._state.adding = True
            new = _create_one_by_one(new, outcomes)
    pairs = []
    for item, order in new:
        outcome = SyncOutcome(
            item.key,
            True,
            target_id=order.pk,
            after=audit_snapshot(order, ORDER_AUDIT_FIELDS),
            discrepancy_id=item.discrepancy_id,
        )
        outcomes[item.key] = outcome
        pairs.append((item, order, outcome))
    _audits(actor=actor, action=action, account=account, run_id=run_id, pairs=pairs)
    return [outcomes[item.key] for item in items]


def _create_one_by_one(new, outcomes):
    created = []
    for item, order in new:
        try:
            with transaction.atomic():
                order.save(force_insert=True)
            created.append((item, order))
        except IntegrityError:
            outcomes[item.key] = SyncOutcome(item.key, False, error=ROW_APPEARED)
    return created


@transaction.atomic(savepoint=False)
def orders_sync_state(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: str = "repair.apply",
) -> list[SyncOutcome]:
    """Advance local orders to the exchange's status and filled quantity (legal moves only)."""
    locked = {
        o.pk: o
        for o in order_qs_select_for_update().filter(
            account=account, pk__any=[i.target_id for i in items]
        )
    }
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
        rows_bulk_update(
            Order,
            changed,
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
    to = v["status"]
    if transitions.transition_path(order.status, to) is None:
        fail.error = NO_LEGAL_MOVE.format(frm=order.status, to=to)
        return fail
    try:
        filled = _amount(v, "filled_qty", non_negative=True)
        avg = _amount(v, "avg_fill_price", non_negative=True)
    except ApplicationError as exc:
        fail.error = exc.message
        return fail
    filled = order.filled_qty if filled is None else filled
    if filled < order.filled_qty:
        fail.error = FILLED_DECREASE.format(old=order.filled_qty, new=filled)
        return fail
    filled = min(filled, order.quantity)
    if to == transitions.FILLED:
        filled = order.quantity
    before = audit_snapshot(order, ORDER_AUDIT_FIELDS)
    order.status = to
    order.filled_qty = filled
    order.remaining_qty = order.quantity - filled
    if avg is not None:
        order.avg_fill_price = avg
    if v.get("exchange_order_id") and not order.exchange_order_id:
        order.exchange_order_id = v["exchange_order_id"]
    order.version += 1
    order.updated_at = timezone.now()
    return SyncOutcome(
        item.key,
        True,
        target_id=order.pk,
        before=before,
        after=audit_snapshot(order, ORDER_AUDIT_FIELDS),
        discrepancy_id=item.discrepancy_id,
        extra={"from": before["status"], "to": to},
    )


def _sync_rows(
    *,
    model,
    account: ExchangeAccount,
    items: list[SyncItem],
    key_field: str,
    audit_fields: tuple[str, ...],
    apply,
    actor: Actor,
    run_id: int | None,
    action: str,
) -> list[SyncOutcome]:
    """Shared by positions and balances: lock, version-check, update or create, audit."""
    existing = {
        getattr(row, key_field): row
        for row in rows_qs_select_for_update(model).filter(
            account=account, **{f"{key_field}__in": [i.values[key_field] for i in items]}
        )
    }
    for row in existing.values():
        row.account = account  # the audit's target_repr names it: no query per row
    outcomes, pairs, to_update, to_create = [], [], [], []
    now = timezone.now()
    for item in items:
        key = item.values[key_field]
        row = existing.get(key)
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
        before = audit_snapshot(row, audit_fields) if row else None
        if row is None:
            row = model(account=account, **{key_field: key}, version=0)
            to_create.append(row)
        else:
            to_update.append(row)
        try:
            apply(row, item.values)
        except ApplicationError as exc:
            (to_create if before is None else to_update).remove(row)
            fail.error = exc.message
            outcomes.append(fail)
            continue
        row.version += 1
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
    _audits(actor=actor, action=action, account=account, run_id=run_id, pairs=pairs)
    return outcomes


def _apply_position(row: Position, v: dict) -> None:
    row.qty = parse_amount(v["qty"], "qty")
    entry = v.get("entry_price")
    row.entry_price = (
        parse_amount(entry, "entry_price", non_negative=True)
        if entry is not None and row.qty != 0
        else None
    )


def _apply_balance(row: Balance, v: dict) -> None:
    row.free = parse_amount(v["free"], "free")
    row.used = parse_amount(v["used"], "used", non_negative=True)
    row.total = parse_amount(v["total"], "total")


@transaction.atomic(savepoint=False)
def positions_sync(
    *,
    account: ExchangeAccount,
    items: list[SyncItem],
    actor: Actor,
    run_id: int | None = None,
    action: str = "repair.apply",
) -> list[SyncOutcome]:
    """Set local positions to the exchange's quantities."""
    return _sync_rows(
        model=Position,
        account=account,
        items=items,
        key_field="symbol",
        audit_fields=POSITION_AUDIT_FIELDS,
        apply=_apply_position,
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
    action: str = "repair.apply",
) -> list[SyncOutcome]:
    """Set local balances (free/used/total) to the exchange's."""
    return _sync_rows(
        model=Balance,
        account=account,
        items=items,
        key_field="currency",
        audit_fields=BALANCE_AUDIT_FIELDS,
        apply=_apply_balance,
        actor=actor,
        run_id=run_id,
        action=action,
    )


SYNC_BY_KIND = {
    RepairKind.ORDER_CREATE: orders_create_from_exchange,
    RepairKind.ORDER_STATE: orders_sync_state,
    RepairKind.POSITION_SET: positions_sync,
    RepairKind.BALANCE_SET: balances_sync,
}
