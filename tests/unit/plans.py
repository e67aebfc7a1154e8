"""The diff's repair plans applied to a local snapshot, in memory: what the sync services
would write. Only the diff's property test needs it (applying every plan converges)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from reconciliation.diff import LocalBalance, LocalOrder, LocalPosition, LocalSnapshot, RepairPlan
from tradingstate.sync_kinds import RepairKind


def apply_plans(local: LocalSnapshot, plans: Iterable[RepairPlan], now: datetime) -> LocalSnapshot:
    """The local snapshot as it would be after every plan: what the services will write."""
    orders = {o.client_order_id: o for o in local.orders}
    by_id = {o.id: o.client_order_id for o in local.orders}
    positions = {p.symbol: p for p in local.positions}
    balances = {b.currency: b for b in local.balances}
    next_id = max([0, *by_id]) + 1
    for plan in plans:
        v = plan.values
        if plan.kind == RepairKind.ORDER_CREATE:
            orders[v["client_order_id"]] = LocalOrder(
                id=next_id,
                client_order_id=v["client_order_id"],
                exchange_order_id=v["exchange_order_id"],
                symbol=v["symbol"],
                side=v["side"],
                type=v["type"],
                quantity=Decimal(v["quantity"]),
                price=_dec(v["price"]),
                filled_qty=Decimal(v["filled_qty"]),
                avg_fill_price=_dec(v["avg_fill_price"]),
                status=v["status"],
                updated_at=now,
                version=1,
            )
            next_id += 1
        elif plan.kind == RepairKind.ORDER_STATE:
            coid = by_id[plan.target_id]
            o = orders[coid]
            orders[coid] = o._replace(
                status=v["status"],
                filled_qty=Decimal(v["filled_qty"]),
                avg_fill_price=_dec(v["avg_fill_price"]),
                exchange_order_id=v["exchange_order_id"] or o.exchange_order_id,
                updated_at=now,
                version=o.version + 1,
            )
        elif plan.kind == RepairKind.POSITION_SET:
            old = positions.get(v["symbol"])
            positions[v["symbol"]] = LocalPosition(
                id=old.id if old else None,
                symbol=v["symbol"],
                qty=Decimal(v["qty"]),
                entry_price=_dec(v["entry_price"]),
                version=(old.version + 1) if old else 1,
            )
        elif plan.kind == RepairKind.BALANCE_SET:
            old = balances.get(v["currency"])
            balances[v["currency"]] = LocalBalance(
                id=old.id if old else None,
                currency=v["currency"],
                free=Decimal(v["free"]),
                used=Decimal(v["used"]),
                total=Decimal(v["total"]),
                version=(old.version + 1) if old else 1,
            )
    return LocalSnapshot(
        orders=list(orders.values()),
        positions=list(positions.values()),
        balances=list(balances.values()),
    )


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)
