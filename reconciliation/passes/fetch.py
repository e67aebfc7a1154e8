"""Step 1: the exchange's truth, entity by entity, and single-order lookups for stale
candidates. Runs with no database transaction open (only the account's lease is held)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

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


# --- trades (issue 14) ---------------------------------------------------------------------
def trades_since(account, policy: ex.TradeHistoryPolicy, now: datetime, cfg) -> datetime:
    """Where this pass reads trades from: the account's watermark less the overlap (and the
    grace window, whichever is longer); the first pass looks back ``fill_lookback_hours``
    (default: the venue's maximum)."""
    if account.fills_watermark_at is not None:
        back = max(cfg.fill_overlap_seconds, account.stale_order_grace_seconds)
        return account.fills_watermark_at - timedelta(seconds=back)
    if cfg.fill_lookback_hours is not None:
        return now - timedelta(hours=cfg.fill_lookback_hours)
    return now - (policy.max_lookback or policy.default_lookback)


def trade_symbols(account, local: d.LocalSnapshot, snapshot: d.ExchangeSnapshot, instruments):
    """The symbols whose trades a pass reads where the venue lists trades per symbol only:
    every symbol the account has an instrument, a local order, or a position in (either
    side), or an open order on the venue."""
    symbols = set(instruments)
    symbols.update(o.symbol for o in local.orders)
    symbols.update(p.symbol for p in local.positions)
    symbols.update(p.symbol for p in snapshot.positions or [])
    symbols.update(o.symbol for o in snapshot.orders or [])
    return sorted(s for s in symbols if s)


def fetch_trades(
    account, adapter, snapshot: d.ExchangeSnapshot, local: d.LocalSnapshot, instruments, cfg
) -> tuple[float | None, Exception | None]:
    """Read the account's trades into ``snapshot`` (``trades``, ``trades_from``,
    ``trades_supported``, ``trades_watermark``). A failed or cut-off read is a ``fills``
    fetch error, never "no trades". Returns (retry_after, auth_error)."""
    try:
        policy = adapter.trade_history_policy()
    except NotImplementedError:
        return None, None  # the venue lists no trades: fills are inferred from orders
    snapshot.trades_supported = True
    now = datetime.now(tz=UTC)
    since = trades_since(account, policy, now, cfg)
    symbols = (
        trade_symbols(account, local, snapshot, instruments) if policy.symbol_required else None
    )
    try:
        result = adapter.fetch_my_trades(since, symbols)
    except NotImplementedError:
        snapshot.trades_supported = False
        return None, None
    except ex.AuthenticationFailed as exc:
        return None, exc
    except ex.ExchangeError as exc:
        snapshot.errors[d.FILLS] = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, ex.TransientExchangeError) and exc.retry_after:
            return exc.retry_after, None
        return None, None
    if not result.complete:
        snapshot.errors[d.FILLS] = f"incomplete: {result.note or 'pages missing'}"
        return None, None
    snapshot.trades = list(result.items)
    snapshot.trades_from = result.covered_from or since
    fetched = result.fetched_at or now
    newest = max((t.executed_at for t in snapshot.trades), default=None)
    mark = fetched - timedelta(seconds=cfg.fill_overlap_seconds)
    candidates = [m for m in (account.fills_watermark_at, newest, mark) if m is not None]
    snapshot.trades_watermark = max(candidates)
    return None, None
