"""Step 1: the exchange's truth, entity by entity, and single-order lookups for stale
candidates. Runs with no database transaction open (only the account's lease is held)."""

from __future__ import annotations

from reconciliation import diff as d
from tradingstate.exchanges import base as ex

DEFAULT_LOOKUP_BUDGET = 100


def fetch_snapshot(account, adapter) -> tuple[d.ExchangeSnapshot, float | None, Exception | None]:
    """(snapshot, retry_after, auth_error). A failed or incomplete fetch leaves its entity
    ``None`` with the reason in ``snapshot.errors``: never read as "empty"."""
    snapshot = d.ExchangeSnapshot()
    retry_after: float | None = None
    calls = [(d.ORDERS, adapter.fetch_open_orders), (d.BALANCES, adapter.fetch_balances)]
    if account.is_derivative:
        calls.insert(1, (d.POSITIONS, adapter.fetch_positions))
    for entity, call in calls:
        try:
            result = call()
        except ex.AuthenticationFailed as exc:
            return snapshot, None, exc
        except ex.ExchangeError as exc:
            snapshot.errors[entity] = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, ex.TransientExchangeError) and exc.retry_after:
                retry_after = max(retry_after or 0, exc.retry_after)
            continue
        if not result.complete:
            snapshot.errors[entity] = f"incomplete: {result.note or 'pages missing'}"
            continue
        setattr(snapshot, entity, list(result.items))
    if not account.is_derivative:
        snapshot.positions = []
    return snapshot, retry_after, None


def fetch_lookups(
    adapter, candidates: list[d.LocalOrder]
) -> tuple[dict[str, ex.ExchangeOrder | str], Exception | None]:
    """Ask the exchange for each stale candidate's own state (within the adapter's budget):
    an ExchangeOrder, ``NOT_FOUND``, or the error text."""
    budget = getattr(adapter, "max_order_lookups_per_pass", DEFAULT_LOOKUP_BUDGET)
    lookups: dict[str, ex.ExchangeOrder | str] = {}
    for order in candidates if budget is None else candidates[:budget]:
        try:
            lookups[order.client_order_id] = adapter.fetch_order(
                order.client_order_id, order.exchange_order_id, order.symbol
            )
        except ex.OrderNotFound:
            lookups[order.client_order_id] = d.NOT_FOUND
        except ex.AuthenticationFailed as exc:
            return lookups, exc
        except ex.ExchangeError as exc:
            lookups[order.client_order_id] = f"{type(exc).__name__}: {exc}"
    return lookups, None
