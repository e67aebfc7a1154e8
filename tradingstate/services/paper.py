"""The paper venue's writes: placing and cancelling orders, matching, mark prices.

The paper venue (accounts with ``exchange = "paper"``) is a small matching simulator whose
state lives in the ``Paper*`` tables; the reconciler reads it through
``tradingstate.exchanges.paper.PaperExchange`` like any venue. The rules (what it accepts,
when and at what price an order executes, the fee, how positions and balances move, the
random walk) are ``tradingstate.rules.paper``; this module reads, locks and writes.

How an order reaches the venue (issue 14, item 6): a bot registers an order on a paper
account and moves it to ``submitted``; the order transition services (single and bulk) call
:class:`VenueBatch` in the same transaction, before the order row is saved:

- ``pending -> submitted`` places the order on the venue. The venue assigns its order id
  (``PAPER-<16 hex digits>``) unless the caller gave an ``exchange_order_id`` (then that is the
  venue's id, unique per account); the local order learns it in the same transaction. A
  market order executes at once at the mark; a limit order that crosses the mark executes at
  once at the mark, else it rests until a mark change crosses it.
- ``submitted -> cancelled`` cancels the venue order if it is still open; if the venue has
  already filled it, the cancel is refused (409) and nothing changes: the bot reads the
  venue's trades and records them as fills, as it would on a real venue.
- What the venue refuses (a type other than market/limit, a market order with no mark, an
  exchange id already used) refuses the transition with a 4xx naming the field, and
  nothing changes. Other moves (and the reconciler's repairs) do not touch the venue.

Every venue write is audited in the caller's transaction: ``paper.order_place``,
``paper.order_cancel``, ``paper.trade`` (the trade with the venue order, position and
balances it moved) and ``paper.mark_set``, by the actor who caused it (the bot whose
transition executed, the staff member or ``demo`` who set a mark, ``system:paper-walk``).
The venue never writes the state of record: a bot learns its executions from the venue
(``GET /api/v1/accounts/{account}/paper/trades/``) and posts them as fills.

Lock order: the local Order rows (taken by the transition service), then the venue's
PaperMarkPrice rows (the book lock of a symbol), PaperOrder, PaperPosition and PaperBalance
rows, each in primary-key order. The walk and mark edits take no local locks.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from tradingstate import transitions
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str, parse_amount
from tradingstate.errors import Conflict, ValidationFailed, VersionConflict
from tradingstate.models import (
    AuditEntry,
    ExchangeAccount,
    Instrument,
    Order,
    PaperBalance,
    PaperMarkPrice,
    PaperOrder,
    PaperPosition,
    PaperTrade,
)
from tradingstate.rules import paper as rules
from tradingstate.rules import values
from tradingstate.rules.money import CONTEXT, q18
from tradingstate.services import events
from tradingstate.services.audit import require_reason

Action = AuditEntry.Action

PAPER = "paper"
ORDER_ID_PREFIX = "PAPER-"
TRADE_ID_PREFIX = "PT-"
VENUE_ID_MAX = 64
WALK_ACTOR = "paper-walk"
WALK_REASON = "random walk step {n} (seed {seed})"

EXCHANGE_ID_TAKEN = "The paper venue already has an order '{id}' on account '{account}'."
EXCHANGE_ID_TOO_LONG = f"must be at most {VENUE_ID_MAX} characters on the paper venue"
ALREADY_FILLED = (
    "The paper venue already filled order '{client_order_id}' ({exchange_order_id}), so it "
    "cannot be cancelled: read its trades (GET /api/v1/accounts/{account}/paper/trades/"
    "?order={client_order_id}) and record them as fills."
)
ONE_MOVE_PER_REQUEST = (
    "Order '{client_order_id}' already moves on the paper venue in this request; "
    "send its next move in another request."
)
NOT_PAPER = "Account '{account}' is not a paper account."
MARK_CREATED_CONCURRENTLY = "The mark of {symbol} was created concurrently; retry."


def is_paper(account: ExchangeAccount) -> bool:
    return account.exchange == PAPER


def venue_order_id(order: Order) -> str:
    """The id the venue gives a local order it places: ``PAPER-`` and 16 hex digits of a
    hash of the account and the client order id (unique per account, as the client order
    id is; the same on every database, whatever its sequences)."""
    digest = hashlib.sha256(f"{order.account_id}:{order.client_order_id}".encode()).hexdigest()
    return f"{ORDER_ID_PREFIX}{digest[:16].upper()}"


def new_trade_id() -> str:
    return f"{TRADE_ID_PREFIX}{uuid.uuid4().hex[:20].upper()}"


def _split_symbol(symbol: str) -> tuple[str, str, str]:
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return base, quote, settle


def _currencies(account: ExchangeAccount, symbols) -> dict[str, tuple[str, str]]:
    """``{symbol: (base, money)}``: money is the settle currency on derivatives (else the
    quote), from the account's instruments where listed, else from the symbol."""
    symbols = set(symbols)
    known = {
        row.symbol: row
        for row in Instrument.objects.filter(account=account, symbol__in=symbols).only(
            "symbol", "base", "quote", "settle"
        )
    }
    out = {}
    for symbol in symbols:
        row = known.get(symbol)
        base, quote, settle = (row.base, row.quote, row.settle) if row else _split_symbol(symbol)
        money = (settle or quote) if account.is_derivative else quote
        out[symbol] = (base, money)
    return out


def _fee_rate() -> Decimal:
    return settings.TRADINGSTATE.paper_fee_rate


def _balance_snapshot(row: PaperBalance) -> dict:
    return {
        "free": amount_str(row.free),
        "used": amount_str(row.used),
        "total": amount_str(row.total),
    }


def _position_snapshot(row: PaperPosition | None) -> dict | None:
    """None for a position the venue does not hold yet."""
    if row is None or (row.pk is None and not getattr(row, "_paper_dirty", False)):
        return None
    return {"qty": amount_str(row.qty), "entry_price": amount_str(row.entry_price)}


# --- orders: the transition services' hook ---------------------------------------------------
@dataclass
class VenueBatch:
    """The paper venue's side of one transition request (one order, or a bulk request).

    Built once per request by :func:`venue_batch` (which reads and locks what the checks
    need); the transition service calls :meth:`check` before it applies each move (so a
    refusal leaves the order untouched), :meth:`moved` after, and :meth:`follow` once before
    it saves the orders."""

    account: ExchangeAccount
    actor: Actor
    marks: dict[str, PaperMarkPrice]
    taken_ids: set[str]
    venue_orders: dict[str, PaperOrder]  # by exchange order id, then "coid:<client id>"
    places: list[tuple[Order, str]] = field(default_factory=list)
    cancels: list[tuple[Order, str]] = field(default_factory=list)
    _seen: set[int] = field(default_factory=set)

    def _venue_order(self, order: Order) -> PaperOrder | None:
        if order.exchange_order_id and order.exchange_order_id in self.venue_orders:
            return self.venue_orders[order.exchange_order_id]
        return self.venue_orders.get(f"coid:{order.client_order_id}")

    def check(self, order: Order, to_status: object, exchange_order_id: object = None) -> None:
        """Refuse (raise) a move the venue cannot follow; nothing is written."""
        kind = _kind(order.status, to_status)
        if kind is None:
            return
        if order.pk in self._seen:
            message = ONE_MOVE_PER_REQUEST.format(client_order_id=order.client_order_id)
            raise Conflict(message, fields={"status": [message]})
        if kind == "place":
            rules.check_placeable(type=order.type, price=order.price)
            mark = self.marks.get(order.symbol)
            rules.check_market_priced(
                symbol=order.symbol, type=order.type, mark=mark.price if mark else None
            )
            wanted = exchange_order_id or order.exchange_order_id
            if wanted:
                if not isinstance(wanted, str) or len(wanted) > VENUE_ID_MAX:
                    raise ValidationFailed(
                        f"exchange_order_id: {EXCHANGE_ID_TOO_LONG}",
                        fields={"exchange_order_id": [EXCHANGE_ID_TOO_LONG]},
                    )
                if wanted in self.taken_ids:
                    message = EXCHANGE_ID_TAKEN.format(id=wanted, account=self.account.name)
                    raise Conflict(message, fields={"exchange_order_id": [message]})
                self.taken_ids.add(wanted)
        else:
            row = self._venue_order(order)
            if row is not None and row.status == PaperOrder.Status.CLOSED:
                message = ALREADY_FILLED.format(
                    client_order_id=order.client_order_id,
                    exchange_order_id=row.exchange_order_id,
                    account=self.account.name,
                )
                raise Conflict(message, fields={"status": [message]})
        self._seen.add(order.pk)

    def moved(self, order: Order, frm: str, reason: str = "") -> None:
        """Record that ``order`` moved from ``frm`` (to its current status)."""
        kind = _kind(frm, order.status)
        if kind == "place":
            if not order.exchange_order_id:
                order.exchange_order_id = venue_order_id(order)  # the local order learns it
            self.places.append((order, reason))
        elif kind == "cancel":
            self.cancels.append((order, reason))

    def follow(self) -> list[AuditEntry]:
        """Place and cancel on the venue what moved (``moved`` already gave each placed
        order the venue's ``exchange_order_id``; the caller saves the orders). Returns the
        venue's unsaved audit entries: the caller records them with its own."""
        entries = []
        if self.places:
            entries += _place(self.account, self.places, self.marks, self.actor)
        if self.cancels:
            entries += _cancel(self.account, self.cancels, self._venue_order, self.actor)
        self.places, self.cancels = [], []
        return entries


def _kind(frm: str, to: object) -> str | None:
    if frm == transitions.PENDING and to == transitions.SUBMITTED:
        return "place"
    if to == transitions.CANCELLED and frm in (
        transitions.SUBMITTED,
        transitions.PARTIALLY_FILLED,
    ):
        return "cancel"
    return None


def venue_batch(
    *,
    account: ExchangeAccount,
    actor: Actor,
    moves: list[tuple[Order, object, object]],
) -> VenueBatch | None:
    """The venue's side of ``moves`` (``(order, to_status, exchange_order_id)``), or None
    when the account is not a paper account or no move reaches the venue (no query then)."""
    if not is_paper(account):
        return None
    places = [(o, x) for o, to, x in moves if _kind(o.status, to) == "place"]
    cancels = [o for o, to, _ in moves if _kind(o.status, to) == "cancel"]
    if not places and not cancels:
        return None
    symbols = sorted({o.symbol for o, _ in places})
    marks = {
        row.symbol: row
        for row in PaperMarkPrice.objects.select_for_update()
        .filter(account=account, symbol__in=symbols)
        .order_by("pk")
    }
    # a caller's id must be free on the venue; the venue's own ids are unique
    wanted = {x for _, x in places if isinstance(x, str) and x} | {
        o.exchange_order_id for o, _ in places if o.exchange_order_id
    }
    taken = set(
        PaperOrder.objects.filter(account=account, exchange_order_id__in=wanted).values_list(
            "exchange_order_id", flat=True
        )
    )
    venue_orders: dict[str, PaperOrder] = {}
    if cancels:
        ids = [o.exchange_order_id for o in cancels if o.exchange_order_id]
        coids = [o.client_order_id for o in cancels]
        rows = (
            PaperOrder.objects.select_for_update()
            .filter(account=account)
            .filter(_id_or_coid(ids, coids))
            .order_by("pk")
        )
        for row in rows:  # the newest row wins for a client order id
            venue_orders[row.exchange_order_id] = row
            if row.client_order_id:
                venue_orders[f"coid:{row.client_order_id}"] = row
    return VenueBatch(
        account=account, actor=actor, marks=marks, taken_ids=taken, venue_orders=venue_orders
    )


def _id_or_coid(ids, coids):
    return Q(exchange_order_id__in=ids) | Q(client_order_id__in=coids)


def _place(account, places, marks, actor) -> list[AuditEntry]:
    rows = []
    for order, _reason in places:
        rows.append(
            PaperOrder(
                account=account,
                exchange_order_id=order.exchange_order_id,
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side,
                type=order.type,
                amount=order.quantity,
                price=order.price,
                status=PaperOrder.Status.OPEN,
            )
        )
    # the ids were checked free under the transition's locks; a row staged on the venue with
    # one of them between that check and this insert fails the whole request (IntegrityError)
    PaperOrder.objects.bulk_create(rows)
    if any(r.pk is None for r in rows):  # backends that do not return ids from bulk inserts
        by_id = dict(
            PaperOrder.objects.filter(
                account=account, exchange_order_id__in=[r.exchange_order_id for r in rows]
            ).values_list("exchange_order_id", "pk")
        )
        for r in rows:
            r.pk = r.id = by_id[r.exchange_order_id]
    entries = [
        events.paper_order_entry(
            row=row, action=Action.PAPER_ORDER_PLACE, before=None, actor=actor, reason=reason
        )
        for row, (_order, reason) in zip(rows, places, strict=True)
    ]
    reasons = {row.pk: reason for row, (_o, reason) in zip(rows, places, strict=True)}
    book = [
        rules.BookOrder(
            order_id=str(row.pk),
            symbol=row.symbol,
            side=row.side,
            type=row.type,
            amount=row.amount,
            price=row.price,
            arriving=True,
        )
        for row in rows
    ]
    by_pk = {row.pk: row for row in rows}
    prices = {symbol: mark.price for symbol, mark in marks.items()}
    entries += _execute(
        account, _matches(book, prices, account), by_pk, actor, reasons, arriving=True
    )
    return entries


def _matches(book: list[rules.BookOrder], prices: dict[str, Decimal], account):
    book = [o for o in book if prices.get(o.symbol) is not None]  # no mark: nothing executes
    currencies = _currencies(account, {o.symbol for o in book}) if book else {}
    grouped: dict[str, list[rules.BookOrder]] = defaultdict(list)
    for order in book:
        grouped[order.symbol].append(order)
    out = []
    for symbol, orders in grouped.items():
        out += rules.match(
            orders, prices.get(symbol), fee_rate=_fee_rate(), fee_currency=currencies[symbol][1]
        )
    return out


def _cancel(account, cancels, venue_order, actor) -> list[AuditEntry]:
    now = timezone.now()
    changed, entries = [], []
    for order, reason in cancels:
        row = venue_order(order)
        if row is None or row.status != PaperOrder.Status.OPEN:
            continue  # not on the venue, or already ended there: nothing to cancel
        before = events.paper_order_snapshot(row)
        row.status = PaperOrder.Status.CANCELED
        row.updated_at = now
        changed.append(row)
        entries.append(
            events.paper_order_entry(
                row=row,
                action=Action.PAPER_ORDER_CANCEL,
                before=before,
                actor=actor,
                reason=reason,
            )
        )
    if changed:
        PaperOrder.objects.bulk_update(changed, ["status", "updated_at"])
    return entries


# --- executions -------------------------------------------------------------------------------
def _execute(
    account: ExchangeAccount,
    executions: list[rules.Execution],
    orders: dict[int, PaperOrder],
    actor: Actor,
    reasons: dict[int, str],
    *,
    arriving: bool = False,
) -> list[AuditEntry]:
    """Write ``executions``: trades, venue orders closed, positions and balances moved.
    Returns the unsaved audit entries (``paper.trade``, one per trade; ``paper.order_cancel``
    for an order the spot balances could not pay for: rejected when ``arriving``, else
    cancelled)."""
    if not executions:
        return []
    now = timezone.now()
    derivative = account.is_derivative
    currencies = _currencies(account, {e.symbol for e in executions})
    positions: dict[str, PaperPosition] = {}
    if derivative:
        positions = {
            row.symbol: row
            for row in PaperPosition.objects.select_for_update()
            .filter(account=account, symbol__in=sorted(currencies))
            .order_by("pk")
        }
    wanted = sorted({c for pair in currencies.values() for c in pair if c})
    balances = {
        row.currency: row
        for row in PaperBalance.objects.select_for_update()
        .filter(account=account, currency__in=wanted)
        .order_by("pk")
    }
    trades, audit_parts, refusals = [], [], []
    for ex in executions:
        row = orders[int(ex.order_id)]
        base, money = currencies[ex.symbol]
        before = {"order": events.paper_order_snapshot(row)}
        after = {}
        realized = Decimal(0)
        if derivative:
            position = positions.get(ex.symbol)
            if position is None:
                position = PaperPosition(account=account, symbol=ex.symbol, qty=Decimal(0))
                positions[ex.symbol] = position
            before["position"] = _position_snapshot(position)
            new, realized = rules.position_after(
                rules.VenuePosition(position.qty, position.entry_price), ex
            )
            position.qty, position.entry_price = new.qty, new.entry_price
            position._paper_dirty = True
        held = {
            c: rules.VenueBalance(c, b.free, b.used, b.total)
            for c, b in balances.items()
            if c in (base, money)
        }
        touched = rules.balances_after(
            held, ex, derivative=derivative, base=base, quote=money, realized_pnl=realized
        )
        short = "" if derivative else rules.funds_shortfall(held, touched)
        if short:  # the venue refuses it: rejected on arrival, cancelled when resting
            row.status = PaperOrder.Status.REJECTED if arriving else PaperOrder.Status.CANCELED
            row.updated_at = now
            refusals.append(
                events.paper_order_entry(
                    row=row,
                    action=Action.PAPER_ORDER_CANCEL,
                    before=before["order"],
                    actor=actor,
                    reason=short,
                )
            )
            continue
        before["balances"] = {
            c: _balance_snapshot(balances[c]) if c in balances else None for c in touched
        }
        for currency, value in touched.items():
            balance = balances.get(currency)
            if balance is None:
                balance = PaperBalance(account=account, currency=currency)
                balances[currency] = balance
            balance.free, balance.used, balance.total = value.free, value.used, value.total
            balance._paper_dirty = True
        prior = row.filled  # an order staged partly filled executes its remainder
        row.status = PaperOrder.Status.CLOSED
        row.filled = prior + ex.quantity
        if prior and row.average is not None:
            with localcontext(CONTEXT):
                row.average = q18((row.average * prior + ex.price * ex.quantity) / row.filled)
        else:
            row.average = ex.price
        row.updated_at = now
        after["order"] = events.paper_order_snapshot(row)
        if derivative:
            after["position"] = _position_snapshot(positions[ex.symbol])
        after["balances"] = {c: _balance_snapshot(balances[c]) for c in touched}
        trades.append(
            PaperTrade(
                account=account,
                trade_id=new_trade_id(),
                paper_order=row,
                exchange_order_id=row.exchange_order_id,
                client_order_id=row.client_order_id,
                symbol=ex.symbol,
                side=ex.side,
                quantity=ex.quantity,
                price=ex.price,
                fee=ex.fee,
                fee_currency=ex.fee_currency,
                liquidity=ex.liquidity,
                executed_at=now,
            )
        )
        audit_parts.append((before, after, reasons.get(row.pk, "")))
    PaperOrder.objects.bulk_update(
        [orders[int(e.order_id)] for e in executions],
        ["status", "filled", "average", "updated_at"],
    )
    for row in [*positions.values(), *balances.values()]:
        if getattr(row, "_paper_dirty", False):
            row.save()
    PaperTrade.objects.bulk_create(trades)
    if any(t.pk is None for t in trades):
        by_id = dict(
            PaperTrade.objects.filter(
                account=account, trade_id__in=[t.trade_id for t in trades]
            ).values_list("trade_id", "pk")
        )
        for t in trades:
            t.pk = t.id = by_id[t.trade_id]
    return refusals + [
        events.paper_trade_entry(trade=t, before=b, after=a, actor=actor, reason=r)
        for t, (b, a, r) in zip(trades, audit_parts, strict=True)
    ]


def _match_resting(
    account: ExchangeAccount, prices: dict[str, Decimal], actor: Actor, reason: str
) -> list[AuditEntry]:
    """Execute the open orders the new ``prices`` cross (the caller holds the mark rows)."""
    if not prices:
        return []
    rows = list(
        PaperOrder.objects.select_for_update()
        .filter(account=account, status=PaperOrder.Status.OPEN, symbol__in=sorted(prices))
        .order_by("pk")
    )
    if not rows:
        return []
    book = [
        rules.BookOrder(
            order_id=str(row.pk),
            symbol=row.symbol,
            side=row.side,
            type=row.type,
            amount=row.amount - row.filled,
            price=row.price,
        )
        for row in rows
        if row.amount > row.filled
    ]
    by_pk = {row.pk: row for row in rows}
    executions = _matches(book, prices, account)
    return _execute(account, executions, by_pk, actor, {pk: reason for pk in by_pk})


# --- mark prices -----------------------------------------------------------------------------
@transaction.atomic
def paper_mark_set(
    *,
    account: ExchangeAccount,
    symbol: str,
    price: object,
    actor: Actor,
    reason: str = "",
    walk: bool | None = None,
) -> PaperMarkPrice:
    """Set the venue's mark of ``symbol`` (staff, ``demo``, a test): resting orders it
    crosses execute in the same transaction. ``walk`` turns the random walk on or off for
    this mark (None: unchanged; new marks walk)."""
    if not is_paper(account):
        message = NOT_PAPER.format(account=account.name)
        raise ValidationFailed(message, fields={"account": [message]})
    symbol = values.symbol(symbol)
    px = parse_amount(price, "price", positive=True)
    now = timezone.now()
    row = PaperMarkPrice.objects.select_for_update().filter(account=account, symbol=symbol).first()
    if row is None:
        row = PaperMarkPrice(
            account=account,
            symbol=symbol,
            price=px,
            updated_at=now,
            walk=True if walk is None else walk,
        )
        before = None
        try:
            with transaction.atomic():
                row.save(force_insert=True)
        except IntegrityError:
            message = MARK_CREATED_CONCURRENTLY.format(symbol=symbol)
            raise VersionConflict(message, fields={"symbol": [message]}) from None
    else:
        before = events.paper_mark_snapshot(row)
        row.price = px
        if walk is not None:
            row.walk = walk
        row.version += 1
        row.updated_at = now
        row.save()
    entries = [events.paper_mark_entry(row=row, before=before, actor=actor, reason=reason)]
    entries += _match_resting(account, {symbol: px}, actor, reason)
    events.entries_record(entries)
    return row


def paper_marks_walk(*, tick: int, actor: Actor | None = None) -> int:
    """One step of the seeded random walk for every walking mark of every enabled paper
    account not yet at ``tick``; resting orders the new marks cross execute. Idempotent per
    tick (a tick delivered twice moves nothing the second time). Returns the marks moved."""
    actor = actor or Actor.system(WALK_ACTOR, tick)
    accounts = (
        ExchangeAccount.objects.filter(
            exchange=PAPER,
            enabled=True,
            paper_marks__walk=True,
            paper_marks__walk_tick__lt=tick,
        )
        .distinct()
        .order_by("pk")
    )
    return sum(_walk_account(account, tick, actor) for account in accounts)


@transaction.atomic
def _walk_account(account: ExchangeAccount, tick: int, actor: Actor) -> int:
    cfg = settings.TRADINGSTATE
    rows = list(
        PaperMarkPrice.objects.select_for_update()
        .filter(account=account, walk=True, walk_tick__lt=tick)
        .order_by("pk")
    )
    if not rows:
        return 0
    steps = dict(
        Instrument.objects.filter(account=account, symbol__in=[r.symbol for r in rows]).values_list(
            "symbol", "price_step"
        )
    )
    now = timezone.now()
    entries = []
    for row in rows:
        before = events.paper_mark_snapshot(row)
        n = row.walk_steps + 1
        row.price = rules.walk_step(
            row.price,
            seed=cfg.paper_walk_seed,
            symbol=row.symbol,
            n=n,
            max_step=cfg.paper_walk_max_step,
            price_step=steps.get(row.symbol) or Decimal(0),
        )
        row.walk_steps, row.walk_tick = n, tick
        row.version += 1
        row.updated_at = now
        reason = WALK_REASON.format(n=n, seed=cfg.paper_walk_seed)
        entries.append(events.paper_mark_entry(row=row, before=before, actor=actor, reason=reason))
    PaperMarkPrice.objects.bulk_update(
        rows, ["price", "walk_steps", "walk_tick", "version", "updated_at"]
    )
    entries += _match_resting(
        account, {r.symbol: r.price for r in rows}, actor, f"random walk (tick {tick})"
    )
    events.entries_record(entries)
    return len(rows)


@transaction.atomic
def paper_row_edit(*, row, actor: Actor, reason: str):
    """Staff change (or add) a row of the paper venue: its order, position, balance or trade
    tables, to stage what a real venue might do behind a bot's back. With a reason, audited
    (``paper.staff_edit``, every column before and after); the row's own constraints hold."""
    reason = require_reason(reason)
    model = type(row)
    stored = model.objects.select_for_update().filter(pk=row.pk).first() if row.pk else None
    before = events.paper_row_snapshot(stored) if stored is not None else None
    row.full_clean()
    row.save()
    events.paper_row_edited(row=row, before=before, actor=actor, reason=reason)
    return row
