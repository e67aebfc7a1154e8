"""The exchange's truth beside the local values: pure comparison for ``exchange_snapshot``.

No ORM and no network: the command passes the adapter's dataclasses and the local values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from tradingstate.amounts import CONTEXT, amount_str
from tradingstate.exchanges.base import (
    ExchangeBalance,
    ExchangeOrder,
    ExchangePosition,
    ExchangeTrade,
)
from tradingstate.rules import accounting, valuation
from tradingstate.transitions import ACTIVE

DIFF = "!="
SAME = ""
WITHIN_TOLERANCE = "~"


@dataclass(frozen=True)
class LocalOrder:
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    status: str
    quantity: Decimal
    filled_qty: Decimal


@dataclass(frozen=True)
class OrderRow:
    client_order_id: str
    exchange_order_id: str
    symbol: str
    side: str
    exchange_status: str | None
    exchange_amount: Decimal | None
    exchange_filled: Decimal | None
    local_status: str | None
    local_quantity: Decimal | None
    local_filled: Decimal | None
    mark: str
    note: str = ""


@dataclass(frozen=True)
class QuantityRow:
    key: str  # symbol or currency
    exchange: Decimal | None
    local: Decimal | None
    mark: str
    exchange_detail: str = ""  # e.g. free/used of a balance
    local_detail: str = ""


def fmt(value: Decimal | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return amount_str(value)


def compare_orders(exchange: list[ExchangeOrder], local: list[LocalOrder]) -> list[OrderRow]:
    """Open orders on the exchange beside the local orders (active ones, or matched ones)."""
    by_coid = {o.client_order_id: o for o in local if o.client_order_id}
    by_oid = {o.exchange_order_id: o for o in local if o.exchange_order_id}
    matched: set[int] = set()
    rows = []
    for order in sorted(exchange, key=lambda o: (o.symbol, o.client_order_id, o.exchange_order_id)):
        mine = by_coid.get(order.client_order_id) if order.client_order_id else None
        mine = mine or by_oid.get(order.exchange_order_id)
        if mine is None:
            rows.append(
                OrderRow(order.client_order_id, order.exchange_order_id, order.symbol,
                         order.side, order.status, order.amount, order.filled, None, None, None,
                         DIFF, "unknown locally")
            )  # fmt: skip
            continue
        matched.add(id(mine))
        notes = []
        if mine.status not in ACTIVE:
            notes.append(f"local {mine.status}, exchange open")
        if mine.filled_qty != order.filled:
            notes.append("filled differs")
        if mine.quantity != order.amount:
            notes.append("quantity differs")
        rows.append(
            OrderRow(order.client_order_id or mine.client_order_id, order.exchange_order_id,
                     order.symbol, order.side, order.status, order.amount, order.filled,
                     mine.status, mine.quantity, mine.filled_qty, DIFF if notes else SAME,
                     "; ".join(notes))
        )  # fmt: skip
    for mine in sorted(local, key=lambda o: (o.symbol, o.client_order_id)):
        if id(mine) in matched or mine.status not in ACTIVE:
            continue
        rows.append(
            OrderRow(mine.client_order_id, mine.exchange_order_id, mine.symbol, mine.side, None,
                     None, None, mine.status, mine.quantity, mine.filled_qty, DIFF,
                     "active locally, not open on the exchange")
        )  # fmt: skip
    return rows


def _mark(exchange: Decimal | None, local: Decimal | None, tolerance: Decimal) -> str:
    difference = CONTEXT.subtract(exchange or Decimal(0), local or Decimal(0)).copy_abs()
    if difference == 0:
        return SAME
    return DIFF if difference > tolerance else WITHIN_TOLERANCE


def compare_positions(
    exchange: list[ExchangePosition],
    local: dict[str, Decimal],
    steps: dict[str, Decimal] | None = None,
) -> list[QuantityRow]:
    """Signed quantities by symbol; a side without the symbol counts as 0."""
    steps = steps or {}
    remote = {p.symbol: p.qty for p in exchange}
    rows = []
    for symbol in sorted(set(remote) | {s for s, q in local.items() if q != 0}):
        ex, lo = remote.get(symbol), local.get(symbol)
        rows.append(QuantityRow(symbol, ex, lo, _mark(ex, lo, steps.get(symbol, Decimal(0)))))
    return rows


def compare_balances(
    exchange: list[ExchangeBalance],
    local: dict[str, tuple[Decimal, Decimal, Decimal]],
    tolerance_for=lambda currency: Decimal(0),
) -> list[QuantityRow]:
    """Totals by currency (free/used shown beside); a missing side counts as 0."""
    remote = {b.currency: b for b in exchange}
    rows = []
    for currency in sorted(set(remote) | set(local)):
        ex = remote.get(currency)
        lo = local.get(currency)
        ex_total = ex.total if ex else None
        lo_total = lo[2] if lo else None
        rows.append(
            QuantityRow(
                currency,
                ex_total,
                lo_total,
                _mark(ex_total, lo_total, tolerance_for(currency)),
                f"free {fmt(ex.free)} used {fmt(ex.used)}" if ex else "",
                f"free {fmt(lo[0])} used {fmt(lo[1])}" if lo else "",
            )
        )
    return rows


def unrealized_pnl(qty: Decimal | None, entry: Decimal | None, mark: Decimal | None):
    """``(mark - entry) * qty`` (quantities in base units) by the valuation rule; None when
    a part is missing (never 0 for an unknown)."""
    if qty is None or mark is None or (qty != 0 and entry is None):
        return None
    state = accounting.PositionState(qty=qty, avg_entry_price=entry if qty else None)
    return valuation.valuation(state, accounting.Mark(mark), Decimal(1)).unrealized_pnl


# --- trades and fills (issue 14) -----------------------------------------------------------
MISSING_FILL = "missing_fill"
FILL_MISMATCH = "fill_mismatch"


@dataclass(frozen=True)
class LocalFill:
    symbol: str
    trade_id: str
    client_order_id: str  # the local order's ("" for an external trade)
    quantity: Decimal
    price: Decimal
    fee: Decimal
    inferred: bool = False


@dataclass(frozen=True)
class TradeRow:
    trade_id: str
    symbol: str
    side: str
    exchange_qty: Decimal
    exchange_price: Decimal
    exchange_fee: str
    local_qty: Decimal | None
    local_price: Decimal | None
    local_order: str
    mark: str
    note: str = ""  # missing_fill / fill_mismatch, as the pass would report it


def compare_trades(trades: list[ExchangeTrade], local: dict) -> list[TradeRow]:
    """Each venue trade beside the local fill of the same (symbol, trade id): unknown locally
    is ``missing_fill``, other quantity/price/fee is ``fill_mismatch`` (both ``!=``)."""
    rows = []
    for t in sorted(trades, key=lambda t: (t.executed_at, t.symbol, t.trade_id)):
        mine = local.get((t.symbol, t.trade_id))
        if mine is None:
            mark, note = DIFF, MISSING_FILL
        elif (mine.quantity, mine.price, mine.fee) != (t.quantity, t.price, t.fee):
            mark, note = DIFF, FILL_MISMATCH
        else:
            mark, note = SAME, ""
        rows.append(
            TradeRow(
                trade_id=t.trade_id,
                symbol=t.symbol,
                side=t.side,
                exchange_qty=t.quantity,
                exchange_price=t.price,
                exchange_fee=f"{fmt(t.fee)} {t.fee_currency}".strip(),
                local_qty=mine.quantity if mine else None,
                local_price=mine.price if mine else None,
                local_order=(mine.client_order_id or "external") if mine else "-",
                mark=mark,
                note=note,
            )
        )
    return rows
