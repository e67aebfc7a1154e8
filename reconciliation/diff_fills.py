"""The fills diff (issue 14): venue trades + local fills + the pass's order plans -> findings.
Pure: no ORM, no I/O.

- ``missing_fill``: a venue trade unknown locally (by symbol and trade id; a trade the venue
  lists twice is one trade) -> record it
  (``RepairKind.FILL_RECORD``) against the local order matched by exchange order id or client
  order id, else against no order (an external/manual trade, flagged ``external``). A trade
  of an order the pass does not move, younger than the grace window, is left for the bot
  that may be posting it.
- ``fill_mismatch``: the same trade with another quantity, price or fee -> correct it to the
  venue's (``RepairKind.FILL_CORRECT``).
- inferred ``missing_fill`` (``inferred: true``): after this pass's order repairs and missing
  fills, an order's filled quantity is still above the sum of its fills (the venue says it
  filled but lists no trades for it: history expired) -> one fill of the difference at the
  venue's average price, flagged inferred. Not when
  the trade fetch failed: a failed fetch is never "no trades".

Repairs that build on an order repair of the pass name it (``RepairPlan.requires``): every
fill of an order the pass creates requires its ``missing_local_order`` (without the row it
would be recorded as an external trade), and an inferred fill of an order the pass moves
requires that move (its quantity is the gap the move opens). The pass applies them only
after their prerequisite was applied, else defers them with its reason.

Positions: a recorded fill moves the local position (buy adds, sell subtracts). On
derivative accounts the venue's position is the truth after the pass, so the two repairs
combine like this: ``position_mismatch`` compares the local position *before* the pass's
fills with the venue's (as without fills); each fill repair carries the venue's quantity for
its symbol (``position_qty``) and, once the pass's fills of the symbol are applied, the fill
service adopts that quantity (an accounting adjustment: realized P&L is not rewritten);
``position_mismatch``'s own repair, applied after the fills (``REPAIR_ORDER``), sets the same
quantity. Whatever the order of bot fills, venue trades and passes, the position after a
completed pass is the venue's and no fill is counted twice (the property test in
``tests/unit/test_fills_properties.py``). Spot accounts have no venue positions: the fills
move the position, and a base-currency fee reduces it (balances carry the truth).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from reconciliation import diff as d
from tradingstate.exchanges import base as ex
from tradingstate.rules.fills import inferred_trade_id, position_delta
from tradingstate.rules.marks import symbol_parts
from tradingstate.sync_kinds import RepairKind

s = d.s


@dataclass(frozen=True)
class OrderPlan:
    """What an order will look like after this pass's order repairs (for the fills' gap)."""

    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    filled_qty: Decimal  # after the pass's order repair, if any
    fills_qty: Decimal
    avg_fill_price: Decimal | None
    moved: bool  # the pass repairs this order (grace does not hold its trades back)
    updated_at: object = None
    id: int | None = None  # the local row (None: created by this pass)
    version: int | None = None  # the local row's version in the snapshot
    planned_by: d.Requirement | None = None  # the order finding whose repair makes this plan


class _Plans:
    """The pass's order plans. An order the pass neither moves nor creates keeps its
    snapshot's values: its plan is made only when asked for (a trade names the order, or
    its fills fall short of its filled quantity), not for each of ten thousand orders."""

    def __init__(self, local: d.LocalSnapshot, order_findings: list[d.Finding]):
        self.local = local
        self.orders = {o.client_order_id: o for o in local.orders}
        self.moved: dict[str, OrderPlan] = {}  # orders this pass moves or creates
        self._made: dict[str, OrderPlan] = {}
        for f in order_findings:
            if f.repair is None:
                continue
            v = f.repair.values
            if f.repair.kind == RepairKind.ORDER_CREATE:
                self.moved[v["client_order_id"]] = OrderPlan(
                    client_order_id=v["client_order_id"],
                    exchange_order_id=v.get("exchange_order_id") or "",
                    symbol=v["symbol"],
                    side=v["side"],
                    filled_qty=Decimal(v.get("filled_qty") or "0"),
                    fills_qty=Decimal(0),
                    avg_fill_price=(
                        Decimal(v["avg_fill_price"]) if v.get("avg_fill_price") else None
                    ),
                    moved=True,
                    planned_by=(f.type, f.key),
                )
            elif f.repair.kind == RepairKind.ORDER_STATE:
                plan = self.get(f.key)
                if plan is None:
                    continue
                filled = Decimal(v["filled_qty"]) if v.get("filled_qty") else plan.filled_qty
                average = Decimal(v["avg_fill_price"]) if v.get("avg_fill_price") else None
                self.moved[f.key] = OrderPlan(
                    client_order_id=plan.client_order_id,
                    exchange_order_id=plan.exchange_order_id or v.get("exchange_order_id") or "",
                    symbol=plan.symbol,
                    side=plan.side,
                    filled_qty=max(filled, plan.filled_qty),
                    fills_qty=plan.fills_qty,
                    avg_fill_price=average or plan.avg_fill_price,
                    moved=True,
                    updated_at=plan.updated_at,
                    id=plan.id,
                    version=plan.version,
                    planned_by=(f.type, f.key),
                )

    def get(self, coid: str | None) -> OrderPlan | None:
        plan = self.moved.get(coid) or self._made.get(coid)
        if plan is None and coid in self.orders:
            plan = self._made[coid] = _snapshot_plan(self.orders[coid])
        return plan

    def by_exid(self) -> dict[str, str]:
        """Exchange order id -> client order id over every plan, the last one of an id
        winning in plan order (the snapshot's orders, then the orders the pass creates)."""
        out = {}
        for o in self.local.orders:
            plan = self.moved.get(o.client_order_id)
            exid = plan.exchange_order_id if plan is not None else o.exchange_order_id
            if exid:
                out[exid] = o.client_order_id
        for coid, plan in self.moved.items():
            if coid not in self.orders and plan.exchange_order_id:
                out[plan.exchange_order_id] = coid
        return out

    def short_of_fills(self, added: dict[str, Decimal]) -> list[OrderPlan]:
        """Every plan whose filled quantity may exceed its fills and the pass's new ones,
        by client order id: the moved and created ones, and the others that do."""
        out = list(self.moved.values())
        zero = Decimal(0)
        for o in self.local.orders:
            coid = o.client_order_id
            if coid in self.moved:
                continue
            recorded = o.filled_qty if o.fills_qty is None else o.fills_qty
            if o.filled_qty - recorded - added.get(coid, zero) > 0:
                out.append(self.get(coid))
        return sorted(out, key=lambda p: p.client_order_id)


def _snapshot_plan(o: d.LocalOrder) -> OrderPlan:
    return OrderPlan(
        client_order_id=o.client_order_id,
        exchange_order_id=o.exchange_order_id,
        symbol=o.symbol,
        side=o.side,
        filled_qty=o.filled_qty,
        fills_qty=o.filled_qty if o.fills_qty is None else o.fills_qty,
        avg_fill_price=o.avg_fill_price,
        moved=False,
        updated_at=o.updated_at,
        id=o.id,
        version=o.version,
    )


def _trade_view(t: ex.ExchangeTrade) -> dict:
    return {
        "trade_id": t.trade_id,
        "symbol": t.symbol,
        "side": t.side,
        "quantity": s(t.quantity),
        "price": s(t.price),
        "fee": s(t.fee),
        "fee_currency": t.fee_currency,
        "executed_at": t.executed_at.isoformat(),
        "exchange_order_id": t.exchange_order_id,
        "client_order_id": t.client_order_id,
        "liquidity": t.liquidity,
    }


def fill_key(symbol: str, trade_id: str) -> str:
    return f"{symbol}:{trade_id}"[:128]


def _delta(side: str, qty: Decimal, fee: Decimal, fee_currency: str, symbol: str) -> Decimal:
    return position_delta(
        side=side, qty=qty, fee=fee, fee_currency=fee_currency, base=symbol_parts(symbol)[0]
    )


def diff_fills(
    local: d.LocalSnapshot,
    exchange: d.ExchangeSnapshot,
    cfg: d.DiffConfig,
    order_findings: list[d.Finding],
) -> tuple[list[d.Finding], dict[str, Decimal]]:
    """(findings, the signed quantity this pass's fill repairs move each symbol by)."""
    if not cfg.fills:
        return [], {}
    findings: list[d.Finding] = []
    deltas: dict[str, Decimal] = defaultdict(Decimal)
    added: dict[str, Decimal] = defaultdict(Decimal)
    targets = _position_targets(exchange, cfg)
    trades = exchange.trades
    if trades is None:  # orders only: no plan is needed
        return findings, {}
    trades = d.venue_trades_unique(trades)
    plans = _Plans(local, order_findings)
    by_exid = plans.by_exid() if any(t.exchange_order_id for t in trades) else {}
    if trades:
        for t in sorted(trades, key=lambda t: (t.executed_at, t.symbol, t.trade_id)):
            plan = plans.get(by_exid.get(t.exchange_order_id)) if t.exchange_order_id else None
            if plan is None and t.client_order_id:
                plan = plans.get(t.client_order_id)
            if plan is not None and plan.symbol != t.symbol:
                plan = None
            known = local.fills.get((t.symbol, t.trade_id))
            if known is not None:
                finding = _mismatch(known, t)
                if finding is not None:
                    findings.append(finding)
                    deltas[t.symbol] += _delta(
                        t.side, t.quantity, t.fee, t.fee_currency, t.symbol
                    ) - _delta(t.side, known.quantity, known.fee, known.fee_currency, t.symbol)
                continue
            if exchange.trades_from is not None and t.executed_at < exchange.trades_from:
                continue  # older than what the venue can return: never "missing"
            if (plan is None or not plan.moved) and cfg.within_grace(t.executed_at):
                continue  # a bot may be posting this fill right now
            findings.append(_missing(t, plan))
            deltas[t.symbol] += _delta(t.side, t.quantity, t.fee, t.fee_currency, t.symbol)
            if plan is not None:
                added[plan.client_order_id] += t.quantity
    # inferred only beside a complete trade list: a failed fetch is never "no trades", and a
    # venue adapter that lists no trades at all (a test double) reconciles orders alone
    if trades is not None:
        for plan in plans.short_of_fills(added):
            gap = plan.filled_qty - plan.fills_qty - added[plan.client_order_id]
            if gap <= 0:
                continue
            if not plan.moved and cfg.within_grace(plan.updated_at):
                continue  # the bot's fills may be on their way
            findings.append(_inferred(plan, gap))
            deltas[plan.symbol] += _delta(plan.side, gap, Decimal(0), "", plan.symbol)
    for f in findings:
        if f.repair is None:
            continue
        symbol = f.repair.values["symbol"]
        f.repair.values["terms"] = list(cfg.instrument_terms.get(symbol) or symbol_parts(symbol))
        target = targets.get(symbol)
        if target is not None:
            f.repair.values["position_qty"] = s(target[0])
            f.repair.values["position_entry_price"] = s(target[1])
    return findings, dict(deltas)


def _position_targets(exchange: d.ExchangeSnapshot, cfg: d.DiffConfig):
    """The venue's (net quantity, entry price) per symbol on derivative accounts whose
    positions were fetched; {} otherwise (spot, or the positions fetch failed)."""
    if not cfg.check_positions or exchange.positions is None:
        return {}
    out: dict[str, tuple[Decimal, Decimal | None]] = defaultdict(lambda: (Decimal(0), None))
    for p in exchange.positions:
        qty = out[p.symbol][0]
        out[p.symbol] = (qty + p.qty, p.entry_price if qty == 0 else None)
    return _Targets(out)


class _Targets(dict):
    """Symbols the venue holds no position in are flat on the venue."""

    def get(self, key, default=None):
        return super().get(key, (Decimal(0), None))


def _missing(t: ex.ExchangeTrade, plan: OrderPlan | None) -> d.Finding:
    coid = plan.client_order_id if plan is not None else ""
    detail = {
        "type": d.MISSING_FILL,
        "trade_id": t.trade_id,
        "client_order_id": coid or t.client_order_id or None,
        "symbol": t.symbol,
        "qty": s(t.quantity),
        "price": s(t.price),
    }
    if plan is None:
        detail["external"] = True  # no local order: an external/manual trade
    return d.Finding(
        type=d.MISSING_FILL,
        entity=d.FILLS,
        key=fill_key(t.symbol, t.trade_id),
        detail=detail,
        exchange=_trade_view(t),
        repair=d.RepairPlan(
            kind=RepairKind.FILL_RECORD,
            target_id=None,
            expected_version=None,
            values={
                "trade_id": t.trade_id,
                "order": coid,
                "symbol": t.symbol,
                "side": t.side,
                "quantity": s(t.quantity),
                "price": s(t.price),
                "fee": s(t.fee),
                "fee_currency": t.fee_currency,
                "executed_at": t.executed_at.isoformat(),
                "client_order_id": t.client_order_id,
                "exchange_order_id": t.exchange_order_id,
                "is_maker": {"maker": True, "taker": False}.get(t.liquidity),
                "inferred": False,
                **_order_ref(plan),
            },
            # a trade of an order this pass creates needs the row (else it is "external")
            requires=_created_by(plan),
        ),
        payload=t.raw or None,
    )


def _created_by(plan: OrderPlan | None) -> tuple[d.Requirement, ...]:
    """The creation a fill of ``plan`` requires: its ``missing_local_order``, if the pass
    creates the order."""
    if plan is None or plan.id is not None or plan.planned_by is None:
        return ()
    return (plan.planned_by,)


def _order_ref(plan: OrderPlan | None) -> dict:
    """The local order a fill repair expects: its row and snapshot version (a bot's write
    since defers the repair), or ``order_created`` for an order this pass creates."""
    if plan is None:
        return {}
    if plan.id is None:
        return {"order_created": True}
    return {"order_id": plan.id, "order_version": plan.version}


def _inferred(plan: OrderPlan, gap: Decimal) -> d.Finding:
    trade_id = inferred_trade_id(plan.exchange_order_id or plan.client_order_id, plan.filled_qty)
    price = plan.avg_fill_price
    detail = {
        "type": d.MISSING_FILL,
        "trade_id": trade_id,
        "client_order_id": plan.client_order_id,
        "symbol": plan.symbol,
        "qty": s(gap),
        "price": s(price),
        "inferred": True,
    }
    repair = None
    note = ""
    if price is None:
        note = "the venue gives no average price to infer the fill at; staff review"
    else:
        repair = d.RepairPlan(
            kind=RepairKind.FILL_RECORD,
            target_id=None,
            expected_version=None,
            values={
                "trade_id": trade_id,
                "order": plan.client_order_id,
                "symbol": plan.symbol,
                "side": plan.side,
                "quantity": s(gap),
                "price": s(price),
                "fee": "0",
                "fee_currency": "",
                "executed_at": None,
                "client_order_id": plan.client_order_id,
                "exchange_order_id": plan.exchange_order_id,
                "is_maker": None,
                "inferred": True,
                **_order_ref(plan),
            },
            # its quantity is the gap the pass's order repair opens: no repair, no gap
            requires=(plan.planned_by,) if plan.planned_by is not None else (),
        )
    return d.Finding(
        type=d.MISSING_FILL,
        entity=d.FILLS,
        key=fill_key(plan.symbol, trade_id),
        detail=detail,
        local={"filled_qty": s(plan.filled_qty), "fills_qty": s(plan.fills_qty)},
        repair=repair,
        note=note,
    )


def _mismatch(known: d.LocalFill, t: ex.ExchangeTrade) -> d.Finding | None:
    differing = []
    if known.quantity != t.quantity:
        differing.append("quantity")
    if known.price != t.price:
        differing.append("price")
    if known.fee != t.fee:
        differing.append("fee")
    elif t.fee and (known.fee_currency or "").upper() != (t.fee_currency or "").upper():
        differing.append("fee_currency")
    if not differing:
        return None
    local_view = {
        "quantity": s(known.quantity),
        "price": s(known.price),
        "fee": s(known.fee),
        "fee_currency": known.fee_currency,
    }
    return d.Finding(
        type=d.FILL_MISMATCH,
        entity=d.FILLS,
        key=fill_key(t.symbol, t.trade_id),
        detail={
            "type": d.FILL_MISMATCH,
            "trade_id": t.trade_id,
            "symbol": t.symbol,
            "fields": differing,
            "local": local_view,
            "exchange": {k: _trade_view(t)[k] for k in local_view},
        },
        local=local_view,
        exchange=_trade_view(t),
        repair=d.RepairPlan(
            kind=RepairKind.FILL_CORRECT,
            target_id=known.id,
            expected_version=None,
            values={
                "trade_id": t.trade_id,
                "symbol": t.symbol,
                "quantity": s(t.quantity),
                "price": s(t.price),
                "fee": s(t.fee),
                "fee_currency": t.fee_currency,
                "seen": local_view,
            },
        ),
        payload=t.raw or None,
    )
