"""Fills (issue 14): every write of a Fill row, for bots and for the reconciler.

- ``fill_record``: a bot posts one fill (``POST .../fills/``), idempotent on the trade: the
  same trade again returns the existing fill, whether the bot or a reconciliation pass
  recorded it first; a trade the pass recorded with no order (it did not know the order
  yet) is attached to the bot's order.
- ``fills_record_from_venue``: the ``missing_fill`` repair, in bulk (and the inferred fill of
  an order the venue says filled but whose trades it no longer lists).
- ``fills_correct``: the ``fill_mismatch`` repair (the venue's quantity, price and fee).

Each fill moves its order (``rules.fills.order_after_fill``) and its position through the
accounting rules and their single writer (``services.accounting.position_accounting_apply``),
and is audited with the order and position before and after, in the same transaction.
Locks: Order rows, then Position rows, each in primary-key order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tradingstate.actors import Actor
from tradingstate.amounts import MAX_INTEGER_DIGITS, amount_fits, parse_amount
from tradingstate.db import fills as db_fills
from tradingstate.errors import ApplicationError, Conflict, NotFound, ValidationFailed
from tradingstate.locks import (
    locked_by_pk,
    order_qs_select_for_update,
    position_qs_select_for_update,
)
from tradingstate.models import AuditEntry, ExchangeAccount, Fill, Instrument, Order, Position
from tradingstate.rules import accounting
from tradingstate.rules import fills as rules
from tradingstate.rules.fills import FILL_CONFLICT, OVERFILL, Overfill  # noqa: F401
from tradingstate.services import accounting as accounting_services
from tradingstate.services import events
from tradingstate.services.audit import audit_snapshot
from tradingstate.services.bulk import rows_bulk_create, rows_bulk_update
from tradingstate.services.orders import ORDER_NOT_FOUND, validate_client_order_id

Action = AuditEntry.Action

EXECUTED_AT_RANGE = "executed_at must be within a year of now and not in the future."
RECORDED_MEANWHILE = "the trade was recorded meanwhile (by a bot or another pass)"
ORDER_CHANGED = "the order changed since the snapshot (a bot recorded fills meanwhile?)"
FILL_GONE = "the local fill no longer exists"
FILL_CHANGED = "the local fill changed since the snapshot"

ORDER_FILL_FIELDS = (
    "filled_qty",
    "fills_qty",
    "remaining_qty",
    "avg_fill_price",
    "status",
    "version",
    "updated_at",
)
POSITION_FIELDS = (
    "qty",
    "entry_price",
    "realized_pnl",
    "fees",
    "fees_other",
    "fill_count",
    "inferred_fills",
    "version",
    "updated_at",
)


fill_snapshot = events.fill_snapshot


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


# --- the order and position a fill moves ---------------------------------------------------
def _order_state(order: Order) -> rules.OrderFills:
    return rules.OrderFills(
        client_order_id=order.client_order_id,
        quantity=order.quantity,
        filled_qty=order.filled_qty,
        fills_qty=order.fills_qty,
        avg_fill_price=order.avg_fill_price,
        status=order.status,
        version=order.version,
    )


def _order_write(order: Order, state: rules.OrderFills, now: datetime) -> None:
    order.filled_qty = state.filled_qty
    order.fills_qty = state.fills_qty
    order.remaining_qty = state.remaining_qty
    order.avg_fill_price = state.avg_fill_price
    order.status = state.status
    order.version = state.version
    order.updated_at = now


def _order_view(order: Order | None) -> dict | None:
    return events.order_snapshot(order) | {"fills_qty": str(order.fills_qty)} if order else None


def _position_view(position: Position | None) -> dict | None:
    if position is None:
        return None
    return audit_snapshot(position, accounting_services.POSITION_ACCOUNTING_AUDIT_FIELDS)


def _terms(account: ExchangeAccount, symbols) -> dict[str, accounting.Terms]:
    known = {
        i.symbol: i for i in Instrument.objects.filter(account=account, symbol__in=list(symbols))
    }
    return {s: accounting_services.position_terms(s, known.get(s)) for s in symbols}


def _item_terms(parsed) -> dict[str, accounting.Terms] | None:
    """The instrument terms the reconciler's plan carries for each symbol (read with the
    pass's snapshot), or None when an item lacks them (then they are read here)."""
    out = {}
    for _, item, fill in parsed:
        terms = item.values.get("terms")
        if not terms or len(terms) != 3:
            return None
        base, quote, settle = terms
        out[fill.symbol] = accounting.Terms(base=base, quote=quote, settle=settle or "")
    return out


def _accounting_fill(fill: Fill) -> accounting.Fill:
    return accounting.Fill(
        side=fill.side,
        qty=fill.quantity,
        price=fill.price,
        fee=fill.fee,
        fee_currency=fill.fee_currency,
        inferred=fill.inferred,
        trade_id=fill.trade_id,
    )


def _move_position(position: Position, fill: Fill, terms) -> None:
    """Apply ``fill`` to ``position`` (not saved) through the accounting rules and their one
    writer; the fill keeps its own share of the figures."""
    book = accounting_services.position_book(position)  # an unsaved row reads as flat
    new, effect = rules.book_after_fill(book, _accounting_fill(fill), terms)
    accounting_services.position_accounting_apply(position, new)
    fill.realized_pnl = effect.realized_pnl
    fill.fee_quote = effect.fees_quote


FIGURES_TOO_LARGE = (
    "this fill would make the {what} {value}: more than {digits} digits before the decimal "
    "point, beyond what an amount holds"
)


def _storable(*rows) -> None:
    """Refuse a bot's fill whose figures (the order's average price, the position's quantity,
    entry price and realized P&L, the fill's own share) would not fit the amount columns: a
    clear 400 naming the inputs that drive them, before anything is written (the database
    refused them with a 500)."""
    for row in filter(None, rows):
        for field in row._meta.concrete_fields:
            value = getattr(row, field.attname)
            if isinstance(value, Decimal) and not amount_fits(value):
                what = f"{row._meta.model_name} {field.name.replace('_', ' ')}"
                msg = FIGURES_TOO_LARGE.format(what=what, value=value, digits=MAX_INTEGER_DIGITS)
                raise ValidationFailed(msg, fields={"quantity": [msg], "price": [msg]})


def _position_for_update(account: ExchangeAccount, symbol: str) -> tuple[Position, dict | None]:
    position = position_qs_select_for_update().filter(account=account, symbol=symbol).first()
    if position is not None:
        return position, _position_view(position)
    try:
        with transaction.atomic():
            position = Position.objects.create(account=account, symbol=symbol, qty=Decimal(0))
        position.version = 0  # the first fill makes it version 1
        return position, None
    except IntegrityError:
        position = position_qs_select_for_update().get(account=account, symbol=symbol)
        return position, _position_view(position)


# --- a bot's fill ---------------------------------------------------------------------------
FILL_ATTEMPTS = 5  # compare-and-set tries before the locked path (a contended order)


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
    is_maker: bool | None = None,
    reason: str = "",
) -> tuple[Fill, bool]:
    """Record a fill: its order and position move together (one transaction, audited).

    Idempotent on the trade (account, the order's symbol, ``trade_id``): the same trade
    again returns ``(fill, False)``, also when a reconciliation pass recorded it first; the
    same trade id with another quantity or price is a conflict. A fill that would take the
    order's fills past its quantity is refused and changes nothing.

    On PostgreSQL the usual fill (the order's position exists, the trade is new) is read
    without locks and written back in one statement only if the order and the position
    still have the versions read (compare-and-set): two statements, no transaction. A
    concurrent change makes it read again and re-apply the rules; after ``FILL_ATTEMPTS``,
    and for every other case, the locked path decides (order, then position, locked in a
    transaction).
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
    if fee_amount != 0 and not fee_currency.strip():
        msg = accounting.FEE_CURRENCY_REQUIRED
        raise ValidationFailed(f"fee_currency: {msg}", fields={"fee_currency": [msg]})
    trade = _Trade(
        account=account,
        client_order_id=client_order_id,
        trade_id=trade_id,
        qty=qty,
        px=px,
        fee=fee_amount,
        fee_currency=fee_currency.strip().upper(),
        executed_at=executed,
        is_maker=is_maker,
        actor=actor,
        reason=reason,
    )
    if db_fills.checked_writes():
        recorded = _fill_record_checked(trade)
        if recorded is not None:
            return recorded
    with transaction.atomic():
        return _fill_record_locked(trade)


@dataclass(frozen=True)
class _Trade:
    """A bot's fill, its inputs checked."""

    account: ExchangeAccount
    client_order_id: str
    trade_id: str
    qty: Decimal
    px: Decimal
    fee: Decimal
    fee_currency: str
    executed_at: datetime
    is_maker: bool | None
    actor: Actor
    reason: str


def _read(trade: _Trade, *, locked: bool):
    order, existing, position, instrument = db_fills.fill_read(
        account=trade.account,
        client_order_id=trade.client_order_id,
        trade_id=trade.trade_id,
        locked=locked,
    )
    if order is None:
        raise NotFound(
            ORDER_NOT_FOUND.format(
                client_order_id=trade.client_order_id, account=trade.account.name
            )
        )
    return order, existing, position, instrument


def _new_fill(trade: _Trade, order: Order) -> Fill:
    """The fill row, and the order moved by it (the fill rules; not saved)."""
    _order_write(
        order,
        rules.order_after_fill(
            _order_state(order), trade_id=trade.trade_id, qty=trade.qty, price=trade.px
        ),
        timezone.now(),
    )
    return Fill(
        account=trade.account,
        order=order,
        symbol=order.symbol,
        side=order.side,
        trade_id=trade.trade_id,
        client_order_id=order.client_order_id,
        exchange_order_id=order.exchange_order_id,
        quantity=trade.qty,
        price=trade.px,
        fee=trade.fee,
        fee_currency=trade.fee_currency,
        is_maker=trade.is_maker,
        origin=Fill.Origin.BOT if trade.actor.type == "bot" else Fill.Origin.MANUAL,
        executed_at=trade.executed_at,
    )


def _fill_onto(trade: _Trade, order: Order, position: Position, instrument) -> tuple:
    """The fill, its order and its existing position moved, and the audit row: not saved."""
    order_before = _order_view(order)
    fill = _new_fill(trade, order)
    position_before = _position_view(position)
    _move_position(position, fill, accounting_services.position_terms(order.symbol, instrument))
    _storable(order, position, fill)
    entry = events.fill_recorded_entry(
        fill=fill,
        order=order,
        position=position,
        order_before=order_before,
        position_before=position_before,
        actor=trade.actor,
        reason=trade.reason,
    )
    return fill, entry


def _fill_record_checked(trade: _Trade) -> tuple[Fill, bool] | None:
    """Up to ``FILL_ATTEMPTS`` compare-and-set tries: ``(fill, True)``, or None when the
    locked path must decide (the trade is known, the position does not exist yet, or every
    try lost its race)."""
    for _ in range(FILL_ATTEMPTS):
        order, existing, position, instrument = _read(trade, locked=False)
        if existing is not None or position is None:
            return None
        read_versions = (order.version, position.version)
        fill, entry = _fill_onto(trade, order, position, instrument)
        outcome = db_fills.fill_write_checked(
            fill=fill, order=order, position=position, audit=entry, read_versions=read_versions
        )
        if outcome == db_fills.WRITTEN:
            return fill, True
        if outcome == db_fills.RECORDED:
            return None
    return None


def _fill_record_locked(trade: _Trade) -> tuple[Fill, bool]:
    account = trade.account
    # Lock order: Order, then Position. The order lock serialises fills of one order, so a
    # duplicate delivered concurrently finds the first one here. One statement (issue 17):
    # the order and its position locked, the trade if recorded, the instrument's terms.
    order, existing, position, instrument = _read(trade, locked=True)
    if existing is not None:
        return _existing_fill(
            existing, order, trade.qty, trade.px, trade.actor, trade.reason
        ), False
    if position is not None:
        # the position exists (locked above): the writes and the audit row in one statement
        fill, entry = _fill_onto(trade, order, position, instrument)
        if db_fills.fill_write(fill=fill, order=order, position=position, audit=entry):
            return fill, True
        # the same trade recorded meanwhile (another order's fill, or a pass): nothing written
        return _recorded_meanwhile(trade, order), False
    # the account's first fill of this symbol: the position row is created here
    order_before = _order_view(order)
    fill = _new_fill(trade, order)
    position, position_before = _position_for_update(account, order.symbol)
    _move_position(position, fill, _terms(account, [order.symbol])[order.symbol])
    _storable(order, position, fill)
    try:
        with transaction.atomic():
            fill.save(force_insert=True)
    except IntegrityError:
        # the same trade recorded meanwhile (another order's fill, or a pass)
        return _recorded_meanwhile(trade, order), False
    order.save()
    position.save()
    events.fill_recorded(
        fill=fill,
        order=order,
        position=position,
        order_before=order_before,
        position_before=position_before,
        actor=trade.actor,
        reason=trade.reason,
    )
    return fill, True


def _recorded_meanwhile(trade: _Trade, order: Order) -> Fill:
    other = Fill.objects.get(account=trade.account, symbol=order.symbol, trade_id=trade.trade_id)
    order.refresh_from_db()
    return _existing_fill(other, order, trade.qty, trade.px, trade.actor, trade.reason)


def _existing_fill(existing: Fill, order: Order, qty, px, actor: Actor, reason: str) -> Fill:
    """The same trade posted again. A trade recorded with no order (the pass saw it before
    the bot's order was known) is attached to this order: the order's fills count it, the
    position already does."""
    differing = rules.fill_differences(existing, quantity=qty, price=px)
    if existing.order_id is None:
        differing[:0] = rules.attach_differences(existing, order)
    elif existing.order_id != order.pk:
        differing.insert(0, "client_order_id")
    if differing:
        msg = FILL_CONFLICT.format(trade_id=existing.trade_id, fields=", ".join(differing))
        raise Conflict(msg, fields={name: [msg] for name in differing})
    if existing.order_id is not None:
        return existing
    order_before = _order_view(order)
    _order_write(
        order,
        rules.order_after_fill(
            _order_state(order), trade_id=existing.trade_id, qty=existing.quantity, price=px
        ),
        timezone.now(),
    )
    existing.order = order
    existing.client_order_id = order.client_order_id
    existing.save(update_fields=["order", "client_order_id"])
    order.save()
    position = Position.objects.filter(account=order.account_id, symbol=order.symbol).first()
    events.fill_recorded(
        fill=existing,
        order=order,
        position=position,
        order_before=order_before,
        position_before=_position_view(position),
        actor=actor,
        reason=reason or "the trade was recorded by reconciliation; attached to its order",
    )
    return existing


# --- the reconciler's fills (bulk) ----------------------------------------------------------
@dataclass
class _Pending:
    n: int
    item: object
    fill: Fill
    order: Order | None
    order_before: dict | None
    position_before: dict | None


def _venue_fill(account: ExchangeAccount, v: dict) -> Fill:
    executed = v.get("executed_at")
    if isinstance(executed, str):
        executed = parse_datetime(executed)
    if executed is None and v.get("inferred"):
        executed = timezone.now()  # the venue no longer says when: recorded when inferred
    if executed is None or timezone.is_naive(executed):
        raise ValidationFailed("executed_at: must be a timezone-aware time")
    fee = parse_amount(v.get("fee") or "0", "fee")
    fee_currency = (v.get("fee_currency") or "").strip().upper()
    if fee != 0 and not fee_currency:
        msg = accounting.FEE_CURRENCY_REQUIRED
        raise ValidationFailed(f"fee_currency: {msg}", fields={"fee_currency": [msg]})
    side = v.get("side")
    if side not in (Order.Side.BUY, Order.Side.SELL):
        raise ValidationFailed("side: must be 'buy' or 'sell'", fields={"side": ["buy or sell"]})
    # the venue's position after the pass (derivatives), adopted once its fills are applied
    for field in ("position_qty", "position_entry_price"):
        if v.get(field) is not None:
            parse_amount(v[field], field)
    return Fill(
        account=account,
        symbol=v["symbol"],
        side=side,
        trade_id=_trade_id(v.get("trade_id")),
        client_order_id=(v.get("client_order_id") or "")[:64],
        exchange_order_id=(v.get("exchange_order_id") or "")[:128],
        quantity=parse_amount(v.get("quantity"), "quantity", positive=True),
        price=parse_amount(v.get("price"), "price", non_negative=True),
        fee=fee,
        fee_currency=fee_currency,
        is_maker=v.get("is_maker"),
        origin=Fill.Origin.RECONCILIATION,
        inferred=bool(v.get("inferred")),
        executed_at=executed,
    )


def _orders_for(account, items) -> tuple[dict, dict]:
    """The local orders the items name (their local client order id, else the venue's
    exchange or client order id), locked in primary-key order: (by coid, by exid)."""
    coids, exids = set(), set()
    for item in items:
        v = item.values
        for coid in (v.get("order"), v.get("client_order_id")):
            if coid:
                coids.add(coid)
        if v.get("exchange_order_id"):
            exids.add(v["exchange_order_id"])
    if not coids and not exids:
        return {}, {}
    q = Q()
    if coids:
        q |= Q(client_order_id__any=sorted(coids))
    if exids:
        q |= Q(exchange_order_id__any=sorted(exids))
    rows = list(order_qs_select_for_update().filter(account=account).filter(q))
    by_coid = {o.client_order_id: o for o in rows}
    by_exid = {o.exchange_order_id: o for o in rows if o.exchange_order_id}
    return by_coid, by_exid


def _match_order(v: dict, symbol: str, by_coid: dict, by_exid: dict) -> Order | None:
    candidates = [by_coid.get(v.get("order") or "")]
    if v.get("exchange_order_id"):
        candidates.append(by_exid.get(v["exchange_order_id"]))
    if v.get("client_order_id"):
        candidates.append(by_coid.get(v["client_order_id"]))
    for order in candidates:
        if order is not None and order.symbol == symbol:
            return order
    return None


@transaction.atomic(savepoint=False)
def fills_record_from_venue(
    *,
    account: ExchangeAccount,
    items: list,
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
):
    """Record venue trades unknown locally (``missing_fill``), in bulk: each with the venue's
    quantity, price, fee, fee currency and time, ``origin=reconciliation``, against the local
    order matched by the item's ``order``, exchange order id or client order id, else against
    no order (an external/manual trade: ``order`` is None, the position still counts it).

    A trade recorded meanwhile (a bot posted it) is not recorded twice: its item is deferred
    with :data:`RECORDED_MEANWHILE`. A fill the order's rules refuse (overfill) is deferred
    with the rule's words. Statements: a fixed number whatever the item count.
    """
    from tradingstate.services.sync import SyncOutcome  # sync imports this module

    now = timezone.now()
    outcomes: dict[int, SyncOutcome] = {}
    parsed: list[tuple[int, object, Fill]] = []
    for n, item in enumerate(items):
        try:
            parsed.append((n, item, _venue_fill(account, item.values)))
        except ApplicationError as exc:
            outcomes[n] = SyncOutcome(item.key, False, error=exc.message)
    by_coid, by_exid = _orders_for(account, [item for _, item, _ in parsed])
    # A trade of an order the snapshot knew: the order's version tells whether a bot wrote
    # (a fill) since; one of an order this pass created: nobody else knows it. Only the
    # rest (external trades, orders that appeared meanwhile) are looked up by trade id.
    seen_versions: dict[int, int] = {}
    unsure = []
    for n, item, fill in parsed:
        order = _match_order(item.values, fill.symbol, by_coid, by_exid)
        v = item.values
        if order is not None and v.get("order_id") == order.pk and v.get("order_version"):
            seen_versions.setdefault(order.pk, order.version)
            if seen_versions[order.pk] != v["order_version"]:
                outcomes[n] = SyncOutcome(item.key, False, error=ORDER_CHANGED)
        elif not (order is not None and v.get("order_created")):
            unsure.append(fill.trade_id)
    known = (
        set(
            Fill.objects.filter(account=account, trade_id__any=sorted(set(unsure))).values_list(
                "symbol", "trade_id"
            )
        )
        if unsure
        else set()
    )
    parsed = [p for p in parsed if p[0] not in outcomes]
    symbols = sorted({f.symbol for _, _, f in parsed})
    positions = {
        p.symbol: p
        for p in position_qs_select_for_update().filter(account=account, symbol__in=symbols)
    }
    terms = _item_terms(parsed) or (_terms(account, symbols) if symbols else {})
    position_before: dict[str, dict | None] = {}
    versions: dict[str, int] = {}
    pending: list[_Pending] = []
    new_positions: list[Position] = []
    parsed.sort(key=lambda p: (p[2].executed_at, p[2].symbol, p[2].trade_id))
    for n, item, fill in parsed:
        key = (fill.symbol, fill.trade_id)
        if key in known:
            outcomes[n] = SyncOutcome(item.key, False, error=RECORDED_MEANWHILE)
            continue
        order = _match_order(item.values, fill.symbol, by_coid, by_exid)
        order_before = _order_view(order)
        position = positions.get(fill.symbol)
        if position is None:
            position = Position(account=account, symbol=fill.symbol, qty=Decimal(0), version=0)
        elif fill.symbol not in position_before:
            position.account = account
        p_before = _position_view(position) if position.pk else None
        # the rows as they are: an item refused below leaves them so for the next item
        kept = (dict(order.__dict__) if order is not None else None, dict(position.__dict__))
        try:
            if order is not None:
                state = rules.order_after_fill(
                    _order_state(order), trade_id=fill.trade_id, qty=fill.quantity, price=fill.price
                )
                _order_write(order, state, now)
            _move_position(position, fill, terms[fill.symbol])
            # a figure the amount columns cannot hold defers this item, not the pass
            _storable(order, position, fill)
        except ApplicationError as exc:
            if order is not None:
                order.__dict__.update(kept[0])
            position.__dict__.update(kept[1])
            outcomes[n] = SyncOutcome(item.key, False, error=exc.message)
            continue
        if order is not None:
            fill.order = order
            fill.client_order_id = fill.client_order_id or order.client_order_id
        if fill.symbol not in positions:
            positions[fill.symbol] = position
            new_positions.append(position)
            position_before[fill.symbol] = None
        elif fill.symbol not in position_before:
            position_before[fill.symbol] = p_before
            versions[fill.symbol] = kept[1]["version"]
        position.updated_at = now
        known.add(key)
        pending.append(_Pending(n, item, fill, order, order_before, p_before))
    _adopt_venue_quantities(parsed, pending, positions, terms)
    if new_positions:
        Position.objects.bulk_create(new_positions)
    rows_bulk_create(Fill, [p.fill for p in pending])
    orders = {p.order.pk: p.order for p in pending if p.order is not None}
    if orders:
        rows_bulk_update(Order, list(orders.values()), ORDER_FILL_FIELDS)
    touched = [positions[s] for s in {p.fill.symbol for p in pending}]
    existing = [p for p in touched if p not in new_positions]
    if existing:
        rows_bulk_update(Position, existing, POSITION_FIELDS)
    entries = []
    for p in pending:
        position = positions[p.fill.symbol]
        after = {
            "fill": fill_snapshot(p.fill),
            "order": _order_view(p.order),
            "position": _position_view(position),
        }
        before = {"order": p.order_before, "position": p.position_before}
        entries.append((p.fill, before, after, p.item.reason, p.item.discrepancy_id))
        outcomes[p.n] = SyncOutcome(
            p.item.key,
            True,
            target_id=p.fill.pk,
            before=before,
            after=after,
            discrepancy_id=p.item.discrepancy_id,
            extra={
                "trade_id": p.fill.trade_id,
                "symbol": p.fill.symbol,
                "position_version": (versions.get(p.fill.symbol), position.version),
                "position_id": position.pk,
            },
        )
    events.entries_record(
        events.sync_entries(
            action=action, actor=actor, account=account, run_id=run_id, changes=entries
        )
    )
    return [outcomes[n] for n in range(len(items))]


def _adopt_venue_quantities(parsed, pending, positions, terms) -> None:
    """Derivative accounts: the venue's position is the truth after the pass. Items carry the
    venue's quantity for their symbol (``position_qty``); once the pass's fills of a symbol
    are applied, the position adopts it through the accounting rules (an adjustment: realized
    P&L is not rewritten), so a fill the position already counted is not counted twice."""
    targets: dict[str, tuple[Decimal, Decimal | None]] = {}
    for _, item, fill in parsed:
        v = item.values
        if v.get("position_qty") is not None:
            entry = v.get("position_entry_price")
            targets[fill.symbol] = (Decimal(v["position_qty"]), Decimal(entry) if entry else None)
    moved = {p.fill.symbol for p in pending}
    for symbol in sorted(moved & set(targets)):
        position = positions[symbol]
        qty, entry = targets[symbol]
        book = accounting_services.position_book(position)
        if book.qty == qty:
            continue
        new = rules.book_adopt_quantity(
            book,
            qty=qty,
            venue_entry_price=entry,
            fallback_price=pending[-1].fill.price,
            terms=terms[symbol],
        )
        accounting_services.position_accounting_apply(position, new)


@transaction.atomic(savepoint=False)
def fills_correct(
    *,
    account: ExchangeAccount,
    items: list,
    actor: Actor,
    run_id: int | None = None,
    action: AuditEntry.Action = Action.REPAIR_APPLY,
):
    """Correct recorded fills to the venue's quantity, price and fee (``fill_mismatch``),
    audited with before/after; the order's fills and the position move by the difference.
    Each item names the fill (``target_id``) and the values the diff saw (``seen``): a fill
    changed since is left alone (deferred)."""
    from tradingstate.services.sync import SyncOutcome

    fills = locked_by_pk(
        Fill.objects.select_for_update().order_by("pk"), account, [i.target_id for i in items]
    )
    order_ids = sorted({f.order_id for f in fills.values() if f.order_id})
    orders = {o.pk: o for o in order_qs_select_for_update().filter(pk__in=order_ids)}
    symbols = sorted({f.symbol for f in fills.values()})
    positions = {
        p.symbol: p
        for p in position_qs_select_for_update().filter(account=account, symbol__in=symbols)
    }
    terms = _terms(account, symbols) if symbols else {}
    versions = {symbol: p.version for symbol, p in positions.items()}
    now = timezone.now()
    outcomes = []
    entries = []
    changed_fills, changed_orders, changed_positions = [], {}, {}
    for item in items:
        v = item.values
        fill = fills.get(item.target_id)
        fail = SyncOutcome(item.key, False, target_id=item.target_id)
        if fill is None:
            fail.error = FILL_GONE
            outcomes.append(fail)
            continue
        seen = v.get("seen") or {}
        if seen and rules.fill_differences(
            fill,
            quantity=Decimal(seen["quantity"]),
            price=Decimal(seen["price"]),
            fee=Decimal(seen["fee"]),
        ):
            fail.error = FILL_CHANGED
            outcomes.append(fail)
            continue
        try:
            qty = parse_amount(v.get("quantity"), "quantity", positive=True)
            px = parse_amount(v.get("price"), "price", non_negative=True)
            fee = parse_amount(v.get("fee") or "0", "fee")
            fee_currency = (v.get("fee_currency") or "").strip().upper()
            order = orders.get(fill.order_id)
            before = {
                "fill": fill_snapshot(fill),
                "order": _order_view(order),
                "position": _position_view(positions.get(fill.symbol)),
            }
            if order is not None:
                state = rules.order_after_fill_change(
                    _order_state(order), trade_id=fill.trade_id, old_qty=fill.quantity, new_qty=qty
                )
            old_fee_quote = fill.fee_quote
            new_fill = Fill(
                side=fill.side,
                quantity=qty,
                price=px,
                fee=fee,
                fee_currency=fee_currency,
                trade_id=fill.trade_id,
                inferred=fill.inferred,
            )
            fee_quote = accounting.step(
                accounting.FLAT, _accounting_fill(new_fill), terms[fill.symbol]
            )[1].fees_quote
            position = positions.get(fill.symbol)
            if position is not None:
                book = accounting_services.position_book(position)
                new_book = rules.book_after_fill_change(
                    book,
                    side=fill.side,
                    qty_delta=qty - fill.quantity,
                    fee_quote_delta=fee_quote - old_fee_quote,
                    price=px,
                    terms=terms[fill.symbol],
                )
        except ApplicationError as exc:
            fail.error = exc.message
            outcomes.append(fail)
            continue
        if order is not None:
            _order_write(order, state, now)
            changed_orders[order.pk] = order
        if position is not None:
            accounting_services.position_accounting_apply(position, new_book)
            position.updated_at = now
            position.account = account
            changed_positions[position.pk] = position
        fill.quantity, fill.price, fill.fee, fill.fee_currency = qty, px, fee, fee_currency
        fill.fee_quote = fee_quote
        changed_fills.append(fill)
        after = {
            "fill": fill_snapshot(fill),
            "order": _order_view(order),
            "position": _position_view(position),
        }
        entries.append((fill, before, after, item.reason, item.discrepancy_id))
        outcomes.append(
            SyncOutcome(
                item.key,
                True,
                target_id=fill.pk,
                before=before,
                after=after,
                discrepancy_id=item.discrepancy_id,
                extra={
                    "trade_id": fill.trade_id,
                    "symbol": fill.symbol,
                    "position_version": (
                        None if position is None else versions.get(fill.symbol),
                        None if position is None else position.version,
                    ),
                    "position_id": None if position is None else position.pk,
                },
            )
        )
    if changed_fills:
        rows_bulk_update(
            Fill, changed_fills, ["quantity", "price", "fee", "fee_currency", "fee_quote"]
        )
    if changed_orders:
        rows_bulk_update(Order, list(changed_orders.values()), ORDER_FILL_FIELDS)
    if changed_positions:
        rows_bulk_update(Position, list(changed_positions.values()), POSITION_FIELDS)
    events.entries_record(
        events.sync_entries(
            action=action, actor=actor, account=account, run_id=run_id, changes=entries
        )
    )
    return outcomes
