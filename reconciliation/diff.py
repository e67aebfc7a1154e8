"""The reconciliation diff: local snapshot + exchange snapshot -> findings. Pure: no ORM, no I/O.

Each finding carries the runbook's structured log fields (``detail``) and, when the local
state can be brought to the exchange's truth, a ``RepairPlan``. The rules (DESIGN §4):

- ``missing_local_order``: open on the exchange, unknown locally -> create it locally.
  A venue order is the local order of its exchange order id; else of its client order id,
  unless both carry an exchange order id and the two differ (then they are two orders: a
  venue may let two open orders share a client id, or reuse a finished order's). A venue
  order whose client id a local order or another venue order of the pass already names is
  tracked under ``ex-<exchange order id>``, as an order with no client id is, and its line
  names the venue's client id (``venue_client_order_id``). The open list is read once per
  exchange order id: a row the venue lists twice is one order (the furthest filled kept).
- ``stale_local_order``: active locally, not open on the exchange, untouched for the grace
  window, and a single-order query (``lookups``) told us its end state -> move it there;
  ``cancelled`` when the exchange does not know the order. No lookup, no verdict.
- ``order_state_mismatch``: known on both sides, status or filled quantity differ.
- ``position_mismatch``: signed quantities differ by more than the amount step (both ways).
- ``balance_mismatch``: totals differ by more than the tolerance (both ways).
- ``entry_price_mismatch`` (derivatives): quantities agree but the venue's entry price differs
  from ours by more than ``entry_price_tolerance`` (relative to the venue's) -> adopt it
  (an accounting adjustment: realized P&L is not rewritten).
- ``fetch_error``: an entity whose fetch failed or was incomplete; nothing of it is repaired.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from enum import StrEnum
from functools import cached_property
from typing import NamedTuple

from tradingstate import transitions as t
from tradingstate.amounts import CONTEXT, amount_str, quantize_amount
from tradingstate.exchanges import base as ex
from tradingstate.rules.accounting import DEFAULT_ENTRY_PRICE_TOLERANCE, entry_price_mismatch
from tradingstate.sync_kinds import RepairKind


class DiscrepancyType(StrEnum):
    """What a pass can find (defined once: ``Discrepancy.Type`` is built from it)."""

    MISSING_LOCAL_ORDER = "missing_local_order"
    STALE_LOCAL_ORDER = "stale_local_order"
    ORDER_STATE_MISMATCH = "order_state_mismatch"
    POSITION_MISMATCH = "position_mismatch"
    BALANCE_MISMATCH = "balance_mismatch"
    FETCH_ERROR = "fetch_error"
    ENTRY_PRICE_MISMATCH = "entry_price_mismatch"
    MISSING_FILL = "missing_fill"  # issue 14: a venue trade unknown locally
    FILL_MISMATCH = "fill_mismatch"  # issue 14: same trade id, other quantity/price/fee

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


MISSING_LOCAL_ORDER = DiscrepancyType.MISSING_LOCAL_ORDER
STALE_LOCAL_ORDER = DiscrepancyType.STALE_LOCAL_ORDER
ORDER_STATE_MISMATCH = DiscrepancyType.ORDER_STATE_MISMATCH
POSITION_MISMATCH = DiscrepancyType.POSITION_MISMATCH
BALANCE_MISMATCH = DiscrepancyType.BALANCE_MISMATCH
FETCH_ERROR = DiscrepancyType.FETCH_ERROR
ENTRY_PRICE_MISMATCH = DiscrepancyType.ENTRY_PRICE_MISMATCH
MISSING_FILL = DiscrepancyType.MISSING_FILL
FILL_MISMATCH = DiscrepancyType.FILL_MISMATCH

ORDERS, POSITIONS, BALANCES, FILLS = "orders", "positions", "balances", "fills"

# exchange end state -> local status
END_STATE = {
    ex.CLOSED: t.FILLED,
    ex.CANCELED: t.CANCELLED,
    ex.EXPIRED: t.EXPIRED,
    ex.REJECTED: t.REJECTED,
}
NOT_FOUND = "not_found"  # lookup result: the exchange does not know the order


class LocalOrder(NamedTuple):
    """An order as the pass read it. Immutable; a tuple rather than a frozen dataclass: a
    pass reads tens of thousands, and a frozen dataclass's ``__init__`` (one
    ``object.__setattr__`` a field) was a tenth of a clean pass."""

    id: int
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    status: str
    updated_at: datetime
    version: int
    # issue 14: the sum of the order's fills (None: not read; taken as ``filled_qty``) and
    # when it was created (the venue's order-query retention counts from it)
    fills_qty: Decimal | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class LocalFill:
    """A recorded fill the venue's trade list may name (issue 14)."""

    id: int
    symbol: str
    trade_id: str
    order_id: int | None
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    inferred: bool = False


@dataclass(frozen=True)
class LocalPosition:
    id: int | None
    symbol: str
    qty: Decimal
    entry_price: Decimal | None
    version: int


@dataclass(frozen=True)
class LocalBalance:
    id: int | None
    currency: str
    free: Decimal
    used: Decimal
    total: Decimal
    version: int


@dataclass
class LocalSnapshot:
    orders: list[LocalOrder] = field(default_factory=list)
    positions: list[LocalPosition] = field(default_factory=list)
    balances: list[LocalBalance] = field(default_factory=list)
    # issue 14: the recorded fills the venue's trades name, by (symbol, trade_id); and per
    # stale order, how many consecutive passes the venue has not found it, and when last
    fills: dict[tuple[str, str], LocalFill] = field(default_factory=dict)
    not_found: dict[str, tuple[int, datetime]] = field(default_factory=dict)


@dataclass
class ExchangeSnapshot:
    """``None`` for an entity means its fetch failed; ``errors`` says why.

    ``trades`` (issue 14): every trade since ``trades_from`` (older ones the venue cannot
    return are never "missing"); None when the fetch failed or was cut off (``errors["fills"]``)
    or the venue lists no trades (``trades_supported`` False)."""

    orders: list[ex.ExchangeOrder] | None = None
    positions: list[ex.ExchangePosition] | None = None
    balances: list[ex.ExchangeBalance] | None = None
    errors: dict[str, str] = field(default_factory=dict)
    trades: list[ex.ExchangeTrade] | None = None
    trades_supported: bool = False
    trades_from: datetime | None = None
    trades_watermark: datetime | None = None  # where the next pass reads from (plus overlap)


@dataclass(frozen=True)
class DiffConfig:
    now: datetime
    grace_seconds: int = 10
    balance_tolerance: Decimal = Decimal("0.01")
    balance_tolerances: Mapping[str, Decimal] = field(default_factory=dict)
    amount_steps: Mapping[str, Decimal] = field(default_factory=dict)
    check_positions: bool = True
    entry_price_tolerance: Decimal = DEFAULT_ENTRY_PRICE_TOLERANCE
    # issue 14: reconcile fills (missing_fill, fill_mismatch, inferred fills, the positions'
    # projection); off for callers that diff orders and books only
    fills: bool = False
    # symbol -> (base, quote, settle) of the account's instruments (the fill repairs value
    # fills with them; symbols without a row are read from the unified symbol)
    instrument_terms: Mapping[str, tuple[str, str, str]] = field(default_factory=dict)
    stale_not_found_passes: int = 1
    order_retention: ex.OrderRetention | None = None

    def tolerance(self, currency: str) -> Decimal:
        return self.balance_tolerances.get(currency, self.balance_tolerance)

    @cached_property
    def grace_cutoff(self) -> datetime:
        return self.now - timedelta(seconds=self.grace_seconds)

    def within_grace(self, moment: datetime | None) -> bool:
        return moment is not None and moment > self.grace_cutoff


Requirement = tuple[str, str]  # (discrepancy type, key) of another finding of the pass


@dataclass(frozen=True)
class RepairPlan:
    """``requires``: the findings of the same pass whose repairs this one builds on (a fill
    of an order the pass creates needs that order): it is applied only after they were, and
    deferred with their reason when they were not."""

    kind: RepairKind
    target_id: int | None
    expected_version: int | None
    values: dict
    requires: tuple[Requirement, ...] = ()

    def as_json(self) -> dict:
        out = {
            "kind": self.kind,
            "target_id": self.target_id,
            "expected_version": self.expected_version,
            "values": self.values,
        }
        if self.requires:
            out["requires"] = [list(r) for r in self.requires]
        return out


@dataclass(frozen=True)
class Finding:
    type: DiscrepancyType
    entity: str
    key: str
    detail: dict
    local: dict | None = None
    exchange: dict | None = None
    repair: RepairPlan | None = None
    payload: dict | None = None
    note: str = ""


# --- helpers ------------------------------------------------------------------------------
def s(value: Decimal | None) -> str | None:
    return amount_str(value)


_SAFE_ID = re.compile(r"[^A-Za-z0-9_.:-]")


def local_id_for(order: ex.ExchangeOrder, taken: Container[str] = frozenset()) -> str:
    """The client_order_id a venue order gets locally: its own, else (none, not storable,
    or ``taken`` by another order) derived from its exchange order id."""
    coid = order.client_order_id
    if coid and len(coid) <= 64 and not _SAFE_ID.search(coid) and coid not in taken:
        return coid
    return ("ex-" + _SAFE_ID.sub("_", order.exchange_order_id))[:64]


def venue_orders_unique(orders: list[ex.ExchangeOrder]) -> list[ex.ExchangeOrder]:
    """The venue's open list with each exchange order id once, in list order: a row listed
    twice (a repeated page) is one order; of differing copies the furthest filled is kept
    (a filled quantity never goes back)."""
    at: dict[str, int] = {}  # exchange order id -> its place in ``out``
    out: list[ex.ExchangeOrder] = []
    for o in orders:
        n = at.get(o.exchange_order_id) if o.exchange_order_id else None
        if n is None:
            if o.exchange_order_id:
                at[o.exchange_order_id] = len(out)
            out.append(o)
        elif o.filled > out[n].filled:
            out[n] = o
    return out


def venue_trades_unique(trades: list[ex.ExchangeTrade]) -> list[ex.ExchangeTrade]:
    """The venue's trades with each (symbol, trade id) once, the first listed kept: a trade
    listed twice (overlapping pages) is one execution, never two fills."""
    seen: set[tuple[str, str]] = set()
    out = []
    for trade in trades:
        key = (trade.symbol, trade.trade_id)
        if key not in seen:
            seen.add(key)
            out.append(trade)
    return out


def same_order(mine: LocalOrder, venue: ex.ExchangeOrder) -> bool:
    """A client-id match is the same order unless both name an exchange order id, and
    different ones."""
    return not (
        mine.exchange_order_id
        and venue.exchange_order_id
        and mine.exchange_order_id != venue.exchange_order_id
    )


def match_venue_orders(
    local_orders: list[LocalOrder], venue_orders: list[ex.ExchangeOrder]
) -> list[tuple[ex.ExchangeOrder, LocalOrder | None]]:
    """Each venue order (``venue_orders_unique``) with its local order, or None. By exchange
    order id first; then by client order id where ``same_order`` allows and no other venue
    order took that local order (a local order is one venue order's, in list order)."""
    by_coid = {o.client_order_id: o for o in local_orders}
    by_exid = {o.exchange_order_id: o for o in local_orders if o.exchange_order_id}
    pairs: list[tuple[ex.ExchangeOrder, LocalOrder | None]] = []
    claimed: set[int] = set()
    for venue in venue_orders_unique(venue_orders):
        mine = by_exid.get(venue.exchange_order_id) if venue.exchange_order_id else None
        if mine is not None:
            claimed.add(mine.id)
        pairs.append((venue, mine))
    for n, (venue, mine) in enumerate(pairs):
        if mine is not None or not venue.client_order_id:
            continue
        mine = by_coid.get(venue.client_order_id)
        if mine is not None and mine.id not in claimed and same_order(mine, venue):
            claimed.add(mine.id)
            pairs[n] = (venue, mine)
    return pairs


def expected_active_status(filled: Decimal) -> str:
    return t.PARTIALLY_FILLED if filled > 0 else t.SUBMITTED


def reachable_status(frm: str, wanted: str) -> str | None:
    """The exchange's state if the machine can reach it, else the closest legal end state."""
    if t.transition_path(frm, wanted) is not None:
        return wanted
    if wanted in (t.EXPIRED, t.REJECTED) and t.transition_path(frm, t.CANCELLED) is not None:
        return t.CANCELLED
    return None


def _order_view(o: LocalOrder) -> dict:
    return {
        "status": o.status,
        "filled_qty": s(o.filled_qty),
        "quantity": s(o.quantity),
        "exchange_order_id": o.exchange_order_id,
        "version": o.version,
    }


def _exchange_order_view(o: ex.ExchangeOrder) -> dict:
    return {
        "status": o.status,
        "filled": s(o.filled),
        "amount": s(o.amount),
        "exchange_order_id": o.exchange_order_id,
        "client_order_id": o.client_order_id,
        "symbol": o.symbol,
        "side": o.side,
        "price": s(o.price),
        "average": s(o.average),
    }


# --- orders ---------------------------------------------------------------------------------
def stale_candidates(
    local: LocalSnapshot,
    exchange: ExchangeSnapshot,
    cfg: DiffConfig,
    orders: list[LocalOrder] | None = None,
) -> list[LocalOrder]:
    """Local active orders the exchange's open list does not show, past the grace window,
    by client order id (of ``orders``, default: every local order).

    Each needs a single-order query before it may be declared stale.
    """
    if exchange.orders is None:
        return []
    # shown open: by its exchange order id; by its client order id only when it has no
    # exchange order id (one that names another is another order: ``same_order``)
    open_coids = {o.client_order_id for o in exchange.orders if o.client_order_id}
    open_exids = {o.exchange_order_id for o in exchange.orders}
    coids_without_exid = {
        o.client_order_id for o in exchange.orders if o.client_order_id and not o.exchange_order_id
    }
    out = []
    for order in local.orders if orders is None else orders:
        if order.exchange_order_id and order.exchange_order_id in open_exids:
            continue
        if order.client_order_id in (coids_without_exid if order.exchange_order_id else open_coids):
            continue
        if order.status not in t.ACTIVE or cfg.within_grace(order.updated_at):
            continue
        out.append(order)
    return sorted(out, key=lambda o: o.client_order_id)


def diff_orders(
    local: LocalSnapshot,
    exchange: ExchangeSnapshot,
    lookups: Mapping[str, ex.ExchangeOrder | str],
    cfg: DiffConfig,
    stale: list[LocalOrder] | None = None,
) -> list[Finding]:
    """``stale``: ``stale_candidates(local, exchange, cfg)`` when the caller has them."""
    if exchange.orders is None:
        return []
    findings: list[Finding] = []
    pairs = match_venue_orders(local.orders, exchange.orders)
    # the local ids in use (-> the exchange order id of the order using it): a venue order
    # created under one of them would be another's row
    taken = {o.client_order_id: o.exchange_order_id for o in local.orders}
    for venue, mine in pairs:
        if mine is None:
            coid = local_id_for(venue, taken)
            if cfg.within_grace(venue.timestamp):
                taken[coid] = venue.exchange_order_id  # its id, should the bot register it
                continue  # just placed: the bot's registration may be on its way
            holder = taken.get(venue.client_order_id) if coid != local_id_for(venue) else None
            findings.append(_missing(venue, coid, holder))
            taken[coid] = venue.exchange_order_id
        else:
            finding = _state_mismatch(mine, venue, cfg)
            if finding:
                findings.append(finding)
    findings.sort(key=lambda f: f.key)  # a stable order for logs and tests (few rows)
    traded = _traded_by_order(local, exchange)
    for order in stale_candidates(local, exchange, cfg) if stale is None else stale:
        evidence = traded.get(order.client_order_id)
        if not venue_can_tell(order, cfg):
            findings.append(_beyond_retention(order, evidence, cfg))
            continue
        result = lookups.get(order.client_order_id)
        if result is None:
            continue  # no single-order answer: never stale on the bulk list alone
        if isinstance(result, str) and result != NOT_FOUND:
            findings.append(
                Finding(
                    type=FETCH_ERROR,
                    entity=ORDERS,
                    key=f"order:{order.client_order_id}",
                    detail={
                        "type": FETCH_ERROR,
                        "entity": "order",
                        "client_order_id": order.client_order_id,
                        "error": result,
                    },
                    local=_order_view(order),
                )
            )
            continue
        if isinstance(result, ex.ExchangeOrder) and result.status == ex.OPEN:
            continue  # the open list missed it; it is alive
        if result == NOT_FOUND:
            findings.append(_not_found(order, evidence, local, cfg))
            continue
        findings.append(_stale(order, result))
    return findings


# --- stale orders the venue cannot prove an end state for (issue 14 item 5) -------------------
@dataclass(frozen=True)
class TradeEvidence:
    """What the venue's trades (and the local fills) say an order filled."""

    qty: Decimal
    average: Decimal | None


def _traded_by_order(local: LocalSnapshot, exchange: ExchangeSnapshot) -> dict[str, TradeEvidence]:
    """Per local order: its fills (recorded) plus the venue's trades not recorded yet. Only
    when the trade list was read completely; else {} (no trades is never evidence)."""
    if exchange.trades is None:
        return {}
    by_exid = {o.exchange_order_id: o for o in local.orders if o.exchange_order_id}
    by_coid = {o.client_order_id: o for o in local.orders}
    qty: dict[str, Decimal] = {}
    value: dict[str, Decimal] = {}
    for trade in venue_trades_unique(exchange.trades):
        order = by_exid.get(trade.exchange_order_id) if trade.exchange_order_id else None
        if order is None and trade.client_order_id:
            order = by_coid.get(trade.client_order_id)
        if order is None or order.symbol != trade.symbol:
            continue
        if (trade.symbol, trade.trade_id) in local.fills:
            continue  # already in fills_qty
        qty[order.client_order_id] = qty.get(order.client_order_id, Decimal(0)) + trade.quantity
        value[order.client_order_id] = (
            value.get(order.client_order_id, Decimal(0)) + trade.quantity * trade.price
        )
    out = {}
    for o in local.orders:
        recorded = o.filled_qty if o.fills_qty is None else o.fills_qty
        total = recorded + qty.get(o.client_order_id, Decimal(0))
        if total <= 0:
            continue
        new_value = value.get(o.client_order_id, Decimal(0))
        old_value = (o.avg_fill_price or Decimal(0)) * recorded
        out[o.client_order_id] = TradeEvidence(
            total, quantize_amount((old_value + new_value) / total)
        )
    return out


def venue_can_tell(order: LocalOrder, cfg: DiffConfig) -> bool:
    """Can the venue still answer a single-order query about ``order`` (its retention)?"""
    if cfg.order_retention is None or order.created_at is None:
        return True
    return cfg.order_retention.venue_can_tell(
        order.created_at, now=cfg.now, filled=order.filled_qty > 0
    )


def _by_trades(order: LocalOrder, evidence: TradeEvidence | None, base: Finding) -> Finding:
    """The trades prove the order filled: ``filled`` with its fills (recorded in the same
    pass by the fills diff), whatever the single-order query said."""
    assert evidence is not None
    target = reachable_status(order.status, t.FILLED)
    return replace(
        base,
        repair=RepairPlan(
            kind=RepairKind.ORDER_STATE,
            target_id=order.id,
            expected_version=order.version,
            values={
                "status": target,
                "filled_qty": s(order.quantity),
                "avg_fill_price": s(evidence.average),
                "exchange_order_id": order.exchange_order_id,
            },
        )
        if target is not None
        else None,
        note="" if target is not None else f"no legal move from {order.status} to filled",
    )


def _stale_base(order: LocalOrder, exchange_view: dict) -> Finding:
    """The runbook's fields in ``detail`` (its log line); what the venue said, and how many
    passes it has said so, in ``exchange`` (the discrepancy's ``exchange_value``)."""
    return Finding(
        type=STALE_LOCAL_ORDER,
        entity=ORDERS,
        key=order.client_order_id,
        detail={
            "type": STALE_LOCAL_ORDER,
            "client_order_id": order.client_order_id,
            "local_status": order.status,
        },
        local=_order_view(order),
        exchange=exchange_view,
    )


VENUE_CANNOT_SAY = (
    "venue cannot say: the order is older than the venue's order-query retention ({source}); "
    "staff review (its trades decide it when they sum to its quantity)"
)


def _beyond_retention(
    order: LocalOrder, evidence: TradeEvidence | None, cfg: DiffConfig
) -> Finding:
    """Older than the venue's order-query retention: "not found" would prove nothing. Its
    trades decide it when they sum to its quantity; otherwise staff decide."""
    base = _stale_base(order, {"status": "venue_cannot_say", "venue_cannot_say": True})
    if evidence is not None and evidence.qty == order.quantity:
        return _by_trades(order, evidence, base)
    source = cfg.order_retention.source if cfg.order_retention else ""
    return replace(base, note=VENUE_CANNOT_SAY.format(source=source))


NOT_FOUND_WAITING = "not found in {n} of {needed} consecutive passes; cancelled after {needed}"


def _not_found(
    order: LocalOrder, evidence: TradeEvidence | None, local: LocalSnapshot, cfg: DiffConfig
) -> Finding:
    """The venue does not know the order. Its trades summing to its quantity prove it
    filled; otherwise it is cancelled only after ``stale_not_found_passes`` consecutive
    "not found" passes at least the grace window apart (the count is on the discrepancy)."""
    previous = local.not_found.get(order.client_order_id)
    if previous is None:
        passes, at = 1, cfg.now
    elif cfg.now - previous[1] >= timedelta(seconds=cfg.grace_seconds):
        passes, at = previous[0] + 1, cfg.now
    else:
        passes, at = previous  # too soon after the last: the same evidence
    base = _stale_base(
        order,
        {"status": NOT_FOUND, "not_found_passes": passes, "not_found_at": at.isoformat()},
    )
    if evidence is not None and evidence.qty == order.quantity:
        return _by_trades(order, evidence, base)
    if passes < cfg.stale_not_found_passes:
        return replace(
            base, note=NOT_FOUND_WAITING.format(n=passes, needed=cfg.stale_not_found_passes)
        )
    finding = _stale(order, NOT_FOUND)
    if evidence is not None and evidence.qty > order.filled_qty and finding.repair is not None:
        values = {**finding.repair.values, "filled_qty": s(evidence.qty)}
        values["avg_fill_price"] = s(evidence.average)
        finding = replace(finding, repair=replace(finding.repair, values=values))
    return replace(finding, exchange=base.exchange)


CLIENT_ID_TAKEN = (
    "client order id {venue_coid} already names exchange order {holder}; exchange order "
    "{exid} is tracked as {coid}"
)


def _missing(venue: ex.ExchangeOrder, coid: str, holder: str | None = None) -> Finding:
    """``coid``: its local id (``local_id_for``, given the ids in use); ``holder``: when
    that is not the venue's own client id, the exchange order id of the order using it."""
    status = expected_active_status(venue.filled)
    detail = {
        "type": MISSING_LOCAL_ORDER,
        "client_order_id": coid,
        "exchange_status": venue.status,
    }
    note = ""
    if holder is not None:  # its own client id is another order's
        detail["venue_client_order_id"] = venue.client_order_id
        note = CLIENT_ID_TAKEN.format(
            venue_coid=venue.client_order_id,
            holder=holder or "(not acknowledged yet)",
            exid=venue.exchange_order_id,
            coid=coid,
        )
    return Finding(
        type=MISSING_LOCAL_ORDER,
        entity=ORDERS,
        key=coid,
        detail=detail,
        note=note,
        exchange=_exchange_order_view(venue),
        repair=RepairPlan(
            kind=RepairKind.ORDER_CREATE,
            target_id=None,
            expected_version=None,
            values={
                "client_order_id": coid,
                "exchange_order_id": venue.exchange_order_id,
                "symbol": venue.symbol,
                "side": venue.side,
                "type": venue.type,
                "quantity": s(venue.amount),
                "price": s(venue.price),
                "filled_qty": s(venue.filled),
                "avg_fill_price": s(venue.average),
                "status": status,
            },
        ),
        payload=venue.raw or None,
    )


def _state_mismatch(mine: LocalOrder, venue: ex.ExchangeOrder, cfg: DiffConfig) -> Finding | None:
    want = expected_active_status(venue.filled)
    if mine.status == want and mine.filled_qty == venue.filled:
        return None
    if cfg.within_grace(mine.updated_at):
        return None  # a bot update may be in flight
    repair = None
    note = ""
    if mine.status in t.TERMINAL:
        note = f"local order is {mine.status} (terminal) but open on the exchange; staff review"
    elif venue.filled < mine.filled_qty:
        note = "the exchange reports less filled than local; filled quantity never decreases"
    else:
        repair = RepairPlan(
            kind=RepairKind.ORDER_STATE,
            target_id=mine.id,
            expected_version=mine.version,
            values={
                "status": want,
                "filled_qty": s(venue.filled),
                "avg_fill_price": s(venue.average),
                "exchange_order_id": venue.exchange_order_id,
            },
        )
    return Finding(
        type=ORDER_STATE_MISMATCH,
        entity=ORDERS,
        key=mine.client_order_id,
        detail={
            "type": ORDER_STATE_MISMATCH,
            "client_order_id": mine.client_order_id,
            "local_status": mine.status,
            "exchange_status": venue.status,
            "local_filled": s(mine.filled_qty),
            "exchange_filled": s(venue.filled),
        },
        local=_order_view(mine),
        exchange=_exchange_order_view(venue),
        repair=repair,
        payload=venue.raw or None,
        note=note,
    )


def _stale(order: LocalOrder, result: ex.ExchangeOrder | str) -> Finding:
    if isinstance(result, ex.ExchangeOrder):
        wanted = END_STATE.get(result.status, t.CANCELLED)
        filled = max(result.filled, order.filled_qty)
        if wanted == t.FILLED and filled < order.quantity:
            wanted = t.CANCELLED  # closed with a partial fill: cancelled after partial fill
        exchange_view = _exchange_order_view(result)
        average = result.average if result.average is not None else order.avg_fill_price
        payload = result.raw or None
    else:
        wanted, filled, average, payload = t.CANCELLED, order.filled_qty, order.avg_fill_price, None
        exchange_view = {"status": NOT_FOUND}
    # not clamped to the local quantity: a venue fill above it is refused by the order rules
    # (tradingstate.rules.orders) and stays open for staff, rather than hidden
    target = reachable_status(order.status, wanted)
    repair = None
    note = ""
    if target is None:
        note = f"no legal move from {order.status} to {wanted}"
    else:
        repair = RepairPlan(
            kind=RepairKind.ORDER_STATE,
            target_id=order.id,
            expected_version=order.version,
            values={
                "status": target,
                "filled_qty": s(filled),
                "avg_fill_price": s(average),
                "exchange_order_id": order.exchange_order_id
                or (result.exchange_order_id if isinstance(result, ex.ExchangeOrder) else ""),
            },
        )
    return replace(_stale_base(order, exchange_view), repair=repair, payload=payload, note=note)


# --- positions and balances ------------------------------------------------------------
def diff_positions(
    local: LocalSnapshot,
    exchange: ExchangeSnapshot,
    cfg: DiffConfig,
    fill_deltas: Mapping[str, Decimal] | None = None,
) -> list[Finding]:
    """``fill_deltas``: what this pass's fill repairs move each symbol by (issue 14). The
    local quantity compared is the one before them (a fill repair on a derivative account
    ends with the position at the venue's quantity: see ``reconciliation.diff_fills``), so
    a position that agreed is not reported; its entry price is checked next pass."""
    if not cfg.check_positions or exchange.positions is None:
        return []
    fill_deltas = fill_deltas or {}
    mine = {p.symbol: p for p in local.positions}
    theirs: dict[str, ex.ExchangePosition] = {}
    for p in exchange.positions:
        if p.symbol in theirs:  # hedge mode: both legs of one symbol net out
            prev = theirs[p.symbol]  # (and the net has no one entry price)
            theirs[p.symbol] = replace(prev, qty=prev.qty + p.qty, entry_price=None)
        else:
            theirs[p.symbol] = p
    findings = []
    for symbol in sorted(set(mine) | set(theirs)):
        lp, xp = mine.get(symbol), theirs.get(symbol)
        lq = lp.qty if lp else Decimal(0)
        xq = xp.qty if xp else Decimal(0)
        step = cfg.amount_steps.get(symbol, Decimal(0))
        moved = fill_deltas.get(symbol, Decimal(0))
        if abs(lq - xq) <= step:
            finding = _entry_price(lp, xp, cfg) if not moved else None
            if finding is not None:
                findings.append(finding)
            continue
        findings.append(
            Finding(
                type=POSITION_MISMATCH,
                entity=POSITIONS,
                key=symbol,
                detail={
                    "type": POSITION_MISMATCH,
                    "symbol": symbol,
                    "local_qty": s(lq),
                    "exchange_qty": s(xq),
                    "detail": "Quantity mismatch",
                    **({"pass_fills_qty": s(moved)} if moved else {}),
                },
                local={"qty": s(lq), "entry_price": s(lp.entry_price) if lp else None},
                exchange={"qty": s(xq), "entry_price": s(xp.entry_price) if xp else None},
                repair=RepairPlan(
                    kind=RepairKind.POSITION_SET,
                    target_id=lp.id if lp else None,
                    expected_version=lp.version if lp else None,
                    values={
                        "symbol": symbol,
                        "qty": s(xq),
                        "entry_price": s(xp.entry_price) if xp and xq != 0 else None,
                    },
                ),
                payload=(xp.raw or None) if xp else None,
            )
        )
    return findings


def _entry_price(
    lp: LocalPosition | None, xp: ex.ExchangePosition | None, cfg: DiffConfig
) -> Finding | None:
    """Quantities agree; does the venue's average entry price differ beyond the tolerance?"""
    if lp is None or xp is None or lp.id is None or lp.qty == 0 or xp.qty == 0:
        return None
    if not entry_price_mismatch(lp.entry_price, xp.entry_price, cfg.entry_price_tolerance):
        return None
    return Finding(
        type=ENTRY_PRICE_MISMATCH,
        entity=POSITIONS,
        key=lp.symbol,
        detail={
            "type": ENTRY_PRICE_MISMATCH,
            "symbol": lp.symbol,
            "local_entry_price": s(lp.entry_price),
            "exchange_entry_price": s(xp.entry_price),
            "detail": "Entry price mismatch",
        },
        local={"qty": s(lp.qty), "entry_price": s(lp.entry_price)},
        exchange={"qty": s(xp.qty), "entry_price": s(xp.entry_price)},
        repair=RepairPlan(
            kind=RepairKind.POSITION_ENTRY_PRICE,
            target_id=lp.id,
            expected_version=lp.version,
            values={"symbol": lp.symbol, "entry_price": s(xp.entry_price)},
        ),
        payload=xp.raw or None,
    )


def diff_balances(
    local: LocalSnapshot, exchange: ExchangeSnapshot, cfg: DiffConfig
) -> list[Finding]:
    if exchange.balances is None:
        return []
    mine = {b.currency: b for b in local.balances}
    theirs = {b.currency: b for b in exchange.balances}
    zero = Decimal(0)
    findings = []
    for currency in sorted(set(mine) | set(theirs)):
        lb, xb = mine.get(currency), theirs.get(currency)
        lt = lb.total if lb else zero
        xt = xb.total if xb else zero
        if abs(lt - xt) <= cfg.tolerance(currency):
            continue
        xfree, xused = (xb.free, xb.used) if xb else (zero, zero)
        findings.append(
            Finding(
                type=BALANCE_MISMATCH,
                entity=BALANCES,
                key=currency,
                detail={
                    "type": BALANCE_MISMATCH,
                    "currency": currency,
                    "local_total": s(lt),
                    "exchange_total": s(xt),
                    "detail": f"Difference of {s(abs(xt - lt))}",
                },
                local={"free": s(lb.free), "used": s(lb.used), "total": s(lt)} if lb else None,
                exchange={"free": s(xfree), "used": s(xused), "total": s(xt)},
                repair=RepairPlan(
                    kind=RepairKind.BALANCE_SET,
                    target_id=lb.id if lb else None,
                    expected_version=lb.version if lb else None,
                    values={
                        "currency": currency,
                        "free": s(xfree),
                        "used": s(xused),
                        "total": s(xt),
                    },
                ),
                payload=(xb.raw or None) if xb else None,
            )
        )
    return findings


def fetch_errors(exchange: ExchangeSnapshot) -> list[Finding]:
    return [
        Finding(
            type=FETCH_ERROR,
            entity=entity,
            key=entity,
            detail={"type": FETCH_ERROR, "entity": entity, "error": message},
        )
        for entity, message in sorted(exchange.errors.items())
    ]


def diff(
    local: LocalSnapshot,
    exchange: ExchangeSnapshot,
    cfg: DiffConfig,
    lookups: Mapping[str, ex.ExchangeOrder | str] | None = None,
    stale: list[LocalOrder] | None = None,
) -> list[Finding]:
    """``stale``: ``stale_candidates(local, exchange, cfg)`` when the caller has them (a
    pass asks the venue about them first: the diff need not find them again)."""
    from reconciliation.diff_fills import diff_fills  # it builds on this module

    # amounts have 38 digits: sums, differences and averages in the wide context (Python's
    # default 28 digits rounds them, or refuses to quantize them, and fails the pass)
    with localcontext(CONTEXT):
        orders = diff_orders(local, exchange, lookups or {}, cfg, stale)
        fills, deltas = diff_fills(local, exchange, cfg, orders)
        return [
            *fetch_errors(exchange),
            *orders,
            *fills,
            *diff_positions(local, exchange, cfg, deltas),
            *diff_balances(local, exchange, cfg),
        ]
