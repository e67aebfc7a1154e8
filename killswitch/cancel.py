"""Cancel-all: cancel a scope's open orders on the exchange, then check that none remain.

Runs after the activation commits (never inside it: exchange I/O must not hold the switch's
row lock). Per account: fetch the exchange's open orders, cancel each, fetch again, up to
``CANCEL_MAX_ROUNDS`` rounds, then report what is left, including orders the platform never
knew. Local order rows are left to reconciliation, which reads the venue's final state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db.models import Q

from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import OrderNotFound
from tradingstate.models import ExchangeAccount, Order

logger = logging.getLogger("killswitch")

CANCEL_MAX_ROUNDS = 3
ADAPTERS_UNAVAILABLE = "exchange adapters unavailable: {error}"


def cancel_open_orders(
    *,
    account: ExchangeAccount | None = None,
    accounts: list[ExchangeAccount] | None = None,
    max_rounds: int = CANCEL_MAX_ROUNDS,
    adapter_factory: Callable | None = None,
) -> dict:
    """Cancel open orders for ``account``, or ``accounts`` (those the actor may act on), or
    every enabled account when both are None.

    Never raises (it runs after a committed activation); failures are in the summary:
    ``{"complete", "cancelled", "remaining", "accounts": {name: {...}}}``. Exchange I/O and
    reads only: ``killswitch.services.killswitch_cancel_open_orders`` records the summary.
    """
    if account is not None:
        accounts = [account]
    elif accounts is None:
        accounts = list(ExchangeAccount.objects.filter(enabled=True).order_by("name"))
    else:
        accounts = sorted(accounts, key=lambda a: a.name)
    per_account = {
        acct.name: _cancel_account(acct, adapter_factory=adapter_factory, max_rounds=max_rounds)
        for acct in accounts
    }
    summary = {
        "scope": "global" if account is None else "account",
        "complete": all(s["complete"] for s in per_account.values()),
        "cancelled": sum(len(s["cancelled"]) for s in per_account.values()),
        "remaining": sum(len(s["remaining"]) for s in per_account.values()),
        "accounts": per_account,
    }
    level = logging.WARNING if summary["complete"] else logging.ERROR
    logger.log(
        level,
        "Kill switch cancel-all: cancelled=%s remaining=%s complete=%s accounts=%s",
        summary["cancelled"],
        summary["remaining"],
        summary["complete"],
        ",".join(per_account) or "-",
        extra={"structured": {"type": "killswitch_cancel_all", **summary}},
    )
    return summary


def _cancel_account(account: ExchangeAccount, *, adapter_factory, max_rounds: int) -> dict:
    out: dict = {
        "complete": False,
        "rounds": 0,
        "cancelled": [],
        "already_gone": [],
        "failed": [],
        "remaining": [],
        "error": "",
    }
    try:
        factory = adapter_factory or _default_factory()
        adapter = factory(account)
    except Exception as exc:
        logger.exception("Kill switch cancel-all: no adapter for account %s", account.name)
        out["error"] = ADAPTERS_UNAVAILABLE.format(error=f"{type(exc).__name__}: {exc}")
        return out
    cancelled: dict[str, dict] = {}
    try:
        open_orders = _fetch_open(adapter)
        while open_orders and out["rounds"] < max_rounds:
            out["rounds"] += 1
            for order in open_orders:
                _cancel_one(adapter, order, out, cancelled)
            open_orders = _fetch_open(adapter)
        out["remaining"] = [_describe(account, o) for o in open_orders]
        out["complete"] = not open_orders
    except Exception as exc:
        logger.exception("Kill switch cancel-all failed on account %s", account.name)
        out["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        try:
            adapter.close()
        except Exception:
            logger.warning("Kill switch cancel-all: closing the adapter failed", exc_info=True)
    out["cancelled"] = list(cancelled.values())
    return out


def _default_factory():
    return adapter_for


def _fetch_open(adapter) -> list:
    result = adapter.fetch_open_orders()
    if not result.complete:
        # an incomplete listing is never read as "nothing left"
        raise IncompleteFetch(result.note or "open orders listing was incomplete")
    return list(result.items)


class IncompleteFetch(Exception):
    pass


def _cancel_one(adapter, order, out: dict, cancelled: dict) -> None:
    key = order.exchange_order_id or order.client_order_id
    try:
        adapter.cancel_order(order.client_order_id, order.exchange_order_id, order.symbol)
    except OrderNotFound:
        out["already_gone"].append(key)
    except Exception as exc:  # transient or not: recorded, retried next round
        logger.warning("Kill switch cancel-all: cancelling %s failed: %s", key, exc)
        out["failed"].append({"order": key, "error": f"{type(exc).__name__}: {exc}"})
    else:
        cancelled[key] = {
            "exchange_order_id": order.exchange_order_id,
            "client_order_id": order.client_order_id,
            "symbol": order.symbol,
        }


def _describe(account: ExchangeAccount, order) -> dict:
    match = Q(pk__in=[])
    if order.client_order_id:
        match |= Q(client_order_id=order.client_order_id)
    if order.exchange_order_id:
        match |= Q(exchange_order_id=order.exchange_order_id)
    return {
        "exchange_order_id": order.exchange_order_id,
        "client_order_id": order.client_order_id,
        "symbol": order.symbol,
        "side": order.side,
        "amount": str(order.amount),
        "filled": str(order.filled),
        "known_locally": Order.objects.filter(match, account=account).exists(),
    }
