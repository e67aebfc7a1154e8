"""Selectors: what the exchange reported at the pass nearest a moment T, beside what we held
(issue 18 item 7).

No copy of the exchange is stored per pass. A pass compares the exchange with the local
books and records a discrepancy (with the exchange's value and raw payload) for every key
that differs; every key it does not record agreed within tolerance. So the exchange's view at
a pass is the local books at the pass's start (rebuilt from the audit trail,
``tradingstate.selectors.asof``) with each of that pass's discrepancies laid over it:
``source`` says which rows the exchange reported differently ("reported") and which agreed
("agreed"). Five statements whatever the history size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from reconciliation.models import Discrepancy, ReconciliationRun
from tradingstate import transitions
from tradingstate.models import ExchangeAccount
from tradingstate.selectors.asof import HeldState, account_state_at

PASS_STATUSES = (ReconciliationRun.Status.COMPLETED, ReconciliationRun.Status.INCOMPLETE)
ORDER_TYPES = {
    Discrepancy.Type.MISSING_LOCAL_ORDER,
    Discrepancy.Type.STALE_LOCAL_ORDER,
    Discrepancy.Type.ORDER_STATE_MISMATCH,
}
POSITION_TYPES = {Discrepancy.Type.POSITION_MISMATCH, Discrepancy.Type.ENTRY_PRICE_MISMATCH}


@dataclass
class ExchangeView:
    run_id: int
    run_status: str
    started_at: datetime
    finished_at: datetime | None
    orders: list[dict] = field(default_factory=list)  # open on the exchange
    positions: list[dict] = field(default_factory=list)
    balances: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # what the pass could not fetch


@dataclass
class StateAt:
    held: HeldState
    exchange: ExchangeView | None


def run_nearest(*, account: ExchangeAccount, at: datetime) -> ReconciliationRun | None:
    """The finished pass (completed or incomplete) whose start is nearest ``at``."""
    runs = ReconciliationRun.objects.filter(
        account=account, status__in=PASS_STATUSES, started_at__isnull=False
    )
    before = runs.filter(started_at__lte=at).order_by("-started_at", "-id").first()
    after = runs.filter(started_at__gt=at).order_by("started_at", "id").first()
    if before is None or after is None:
        return before or after
    return before if at - before.started_at <= after.started_at - at else after


def _order_row(snap: dict) -> dict:
    return {
        "client_order_id": snap["client_order_id"],
        "symbol": snap.get("symbol"),
        "side": snap.get("side"),
        "status": snap.get("status"),
        "amount": snap.get("quantity"),
        "filled": snap.get("filled_qty"),
        "source": "agreed",
    }


def exchange_view_at_run(*, run: ReconciliationRun) -> ExchangeView:
    """The exchange's orders, positions and balances as ``run`` saw them."""
    local = account_state_at(account=run.account, at=run.started_at)
    view = ExchangeView(
        run_id=run.pk, run_status=run.status, started_at=run.started_at, finished_at=run.finished_at
    )
    orders = {
        o["client_order_id"]: _order_row(o)
        for o in local.orders
        if o.get("status") in transitions.ACTIVE and o.get("status") != "pending"
    }
    positions = {
        p["symbol"]: {
            "symbol": p["symbol"],
            "qty": p.get("qty"),
            "entry_price": p.get("entry_price"),
            "source": "agreed",
        }
        for p in local.positions
    }
    balances = {
        b["currency"]: {
            "currency": b["currency"],
            "free": b.get("free"),
            "used": b.get("used"),
            "total": b.get("total"),
            "source": "agreed",
        }
        for b in local.balances
    }
    for d in Discrepancy.objects.filter(run=run).order_by("id"):
        x = d.exchange_value
        if d.type == Discrepancy.Type.FETCH_ERROR:
            view.errors.append(f"{d.key}: {(d.detail or {}).get('error', '')}".strip())
        elif d.type in ORDER_TYPES:
            if isinstance(x, dict) and x.get("status") == "open":
                orders[d.key] = {
                    "client_order_id": d.key,
                    "symbol": x.get("symbol"),
                    "side": x.get("side"),
                    "status": x.get("status"),
                    "amount": x.get("amount"),
                    "filled": x.get("filled"),
                    "source": "reported",
                }
            else:  # gone from the exchange's open orders (closed, or unknown to it)
                orders.pop(d.key, None)
        elif d.type in POSITION_TYPES and isinstance(x, dict):
            row = positions.setdefault(d.key, {"symbol": d.key})
            row.update({"qty": x.get("qty"), "entry_price": x.get("entry_price")})
            row["source"] = "reported"
        elif d.type == Discrepancy.Type.BALANCE_MISMATCH and isinstance(x, dict):
            row = balances.setdefault(d.key, {"currency": d.key})
            row.update({k: x.get(k) for k in ("free", "used", "total")})
            row["source"] = "reported"
    view.orders = [orders[k] for k in sorted(orders)]
    view.positions = [positions[k] for k in sorted(positions)]
    view.balances = [balances[k] for k in sorted(balances)]
    return view


def account_state_with_exchange_at(*, account: ExchangeAccount, at: datetime) -> StateAt:
    """What we held at ``at`` and what the exchange reported at the pass nearest ``at``."""
    held = account_state_at(account=account, at=at)
    run = run_nearest(account=account, at=at)
    if run is not None:
        run.account = account
    return StateAt(held=held, exchange=exchange_view_at_run(run=run) if run else None)
