"""Step 1: the exchange's truth, entity by entity, and single-order lookups for stale
candidates. Runs with no database transaction open (only the account's lease is held)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciliation import diff as d
from tradingstate.exchanges import base as ex
from tradingstate.rules.marks import mark_symbols

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


@dataclass
class MarksFetch:
    """The prices one pass asked for and got. ``error`` says why some or all are missing
    (their previous prices are kept, marked stale); ``supported`` is False for a venue
    adapter that gives no prices at all (nothing is asked, nothing marked)."""

    asked: list[str] = field(default_factory=list)
    prices: list[ex.ExchangeMarkPrice] = field(default_factory=list)
    error: str = ""
    supported: bool = True


def marks_wanted(account, local: d.LocalSnapshot, snapshot: d.ExchangeSnapshot, valuation: str):
    """Symbols with a position (either side) or, on spot, a non-quote balance (either side)."""
    positions = [(p.symbol, p.qty) for p in local.positions]
    positions += [(p.symbol, p.qty) for p in snapshot.positions or []]
    balances = [(b.currency, b.total) for b in local.balances]
    balances += [(b.currency, b.total) for b in snapshot.balances or []]
    return mark_symbols(
        market_type=account.market_type,
        position_qtys=positions,
        balance_totals=balances,
        valuation_currency=valuation,
    )


def fetch_marks(adapter, symbols: list[str]) -> MarksFetch:
    """Every price in one call (``fetch_mark_prices``). A failed or partial fetch is never
    read as a price of zero: the symbols it lacks keep their previous price, stale."""
    out = MarksFetch(asked=list(symbols))
    if not symbols:
        return out
    try:
        result = adapter.fetch_mark_prices(symbols)
    except NotImplementedError:
        return MarksFetch(supported=False)
    except ex.ExchangeError as exc:
        out.error = f"{type(exc).__name__}: {exc}"
        return out
    wanted = set(symbols)
    out.prices = [p for p in result.items if p.symbol in wanted]
    if not result.complete:
        out.error = f"incomplete: {result.note or 'prices missing'}"
    return out
