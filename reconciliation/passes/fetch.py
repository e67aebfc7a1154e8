"""Step 1: the exchange's truth, entity by entity, and single-order lookups for stale
candidates. Runs with no database transaction open (only the account's lease is held).

The calls of one step run at once where the adapter allows it (``Sessions``): open orders,
positions and balances together; then the lookups; then the trades (per symbol where the
venue lists them per symbol) together with the marks. The steps stay in that order: trades
are read last, so every fill the order snapshot and the lookups reflect is in the list.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings

from reconciliation import diff as d
from tradingstate.exchanges import base as ex
from tradingstate.rules.marks import mark_symbols

DEFAULT_LOOKUP_BUDGET = 100
PASS_SESSIONS = 3  # venue calls one pass runs at once (one adapter, one ccxt client each)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def _fetch_executor() -> ThreadPoolExecutor:
    """The process's threads for a pass's extra sessions: no database access happens on
    them (adapters do I/O only). Sized for every pass a worker runs at once."""
    global _executor
    with _executor_lock:
        if _executor is None:
            passes = settings.TRADINGSTATE.worker.passes_per_worker
            _executor = ThreadPoolExecutor(
                max_workers=max(4, passes * (PASS_SESSIONS - 1)),
                thread_name_prefix="reconcile-fetch",
            )
        return _executor


class Sessions:
    """The adapters one pass calls the venue through at once: the pass's own and up to
    ``n - 1`` forks (``ExchangeAdapter.fork``; none for an adapter whose calls must run one
    at a time). ``run`` spreads calls over them, each adapter's share in order on one
    thread, the first share on the caller's thread."""

    def __init__(self, adapter: ex.ExchangeAdapter, n: int = PASS_SESSIONS):
        self.adapter = adapter
        self.adapters = [adapter]
        self._forks: list[ex.ExchangeAdapter] = []
        for _ in range(n - 1):
            fork = adapter.fork()
            if fork is None:
                break
            self.adapters.append(fork)
            self._forks.append(fork)

    def __len__(self) -> int:
        return len(self.adapters)

    def close(self) -> None:
        for fork in self._forks:
            fork.close()

    def shares(self, weights: list[int]) -> list[list[int]]:
        """The indexes of the calls each session makes, in order: each call to the least
        loaded session (by requests), the first such on a tie."""
        loads = [0] * len(self)
        shares: list[list[int]] = [[] for _ in range(len(self))]
        for i, weight in enumerate(weights):
            k = loads.index(min(loads))
            shares[k].append(i)
            loads[k] += max(int(weight), 1)
        return shares

    def run(
        self,
        calls: list[Callable[[ex.ExchangeAdapter], object]],
        weights: list[int] | None = None,
    ) -> list[tuple]:
        """``[(result, None) | (None, exception)]`` in the order of ``calls``; after an
        ``AuthenticationFailed`` a share's later calls are not made (``(None, None)``).

        ``weights``: the venue requests each call makes (default 1 each). Each call goes to
        the session with the fewest requests so far, so the step lasts as few round trips
        as the sessions allow (trades of two symbols and the marks on one session would be
        three in a row where two suffice)."""
        out: list[tuple] = [(None, None)] * len(calls)
        shares = self.shares(weights or [1] * len(calls))

        def work(adapter, indexes):
            for i in indexes:
                try:
                    out[i] = (calls[i](adapter), None)
                except Exception as exc:  # handed back to the caller, who decides
                    out[i] = (None, exc)
                    if isinstance(exc, ex.AuthenticationFailed):
                        return  # this key is refused: ask no more with it

        futures = [
            _fetch_executor().submit(work, adapter, share)
            for adapter, share in zip(self.adapters[1:], shares[1:], strict=True)
            if share
        ]
        work(self.adapter, shares[0])
        for future in futures:
            future.result()
        return out


def _sessions(adapter) -> Sessions:
    return adapter if isinstance(adapter, Sessions) else Sessions(adapter, 1)


def fetch_snapshot(
    account, adapter: ex.ExchangeAdapter | Sessions
) -> tuple[d.ExchangeSnapshot, float | None, Exception | None]:
    """(snapshot, retry_after, auth_error). A failed or incomplete fetch leaves its entity
    ``None`` with the reason in ``snapshot.errors``: never read as "empty". Open orders,
    positions and balances are read at once where ``adapter`` is ``Sessions`` of several."""
    sessions = _sessions(adapter)
    snapshot = d.ExchangeSnapshot()
    retry_after: float | None = None
    entities = [(d.ORDERS, "fetch_open_orders"), (d.BALANCES, "fetch_balances")]
    if account.is_derivative:
        entities.insert(1, (d.POSITIONS, "fetch_positions"))
    results = sessions.run([lambda a, m=method: getattr(a, m)() for _, method in entities])
    auth = next((e for _, e in results if isinstance(e, ex.AuthenticationFailed)), None)
    if auth is not None:
        return snapshot, None, auth
    for (entity, _), (result, error) in zip(entities, results, strict=True):
        try:
            if error is not None:
                raise error
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
    adapter: ex.ExchangeAdapter | Sessions, candidates: list[d.LocalOrder]
) -> tuple[dict[str, ex.ExchangeOrder | str], Exception | None]:
    """Ask the exchange for each stale candidate's own state (within the adapter's budget):
    an ExchangeOrder, ``NOT_FOUND``, or the error text."""
    sessions = _sessions(adapter)
    budget = getattr(sessions.adapter, "max_order_lookups_per_pass", DEFAULT_LOOKUP_BUDGET)
    asked = candidates if budget is None else candidates[:budget]
    results = sessions.run(
        [
            lambda a, o=o: a.fetch_order(o.client_order_id, o.exchange_order_id, o.symbol)
            for o in asked
        ]
    )
    lookups: dict[str, ex.ExchangeOrder | str] = {}
    for order, (result, error) in zip(asked, results, strict=True):
        if error is None:
            lookups[order.client_order_id] = result
        elif isinstance(error, ex.OrderNotFound):
            lookups[order.client_order_id] = d.NOT_FOUND
        elif isinstance(error, ex.AuthenticationFailed):
            return lookups, error
        elif isinstance(error, ex.ExchangeError):
            lookups[order.client_order_id] = f"{type(error).__name__}: {error}"
        else:
            raise error
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
    if not symbols:
        return MarksFetch()
    try:
        return _marks(symbols, _sessions(adapter).adapter.fetch_mark_prices(symbols), None)
    except (NotImplementedError, ex.ExchangeError) as exc:
        return _marks(symbols, None, exc)


def _marks(symbols: list[str], result, error: Exception | None) -> MarksFetch:
    out = MarksFetch(asked=list(symbols))
    if isinstance(error, NotImplementedError):
        return MarksFetch(supported=False)
    if isinstance(error, ex.ExchangeError):
        out.error = f"{type(error).__name__}: {error}"
        return out
    if error is not None:
        raise error
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
    account,
    adapter: ex.ExchangeAdapter | Sessions,
    snapshot: d.ExchangeSnapshot,
    local: d.LocalSnapshot,
    instruments,
    cfg,
    *,
    marks: list[str] | None = None,
) -> tuple[float | None, Exception | None, MarksFetch]:
    """Read the account's trades into ``snapshot`` (``trades``, ``trades_from``,
    ``trades_supported``, ``trades_watermark``) and, at the same time, the prices of
    ``marks``. With several sessions the symbols' trades are read at once (a share each).
    A failed or cut-off read is a ``fills`` fetch error, never "no trades". Returns
    (retry_after, auth_error, the marks)."""
    sessions = _sessions(adapter)
    calls: list[Callable] = []
    weights: list[int] = []  # venue requests per call: one per symbol where listed per symbol
    trades_calls = 0
    try:
        policy = sessions.adapter.trade_history_policy()
    except NotImplementedError:
        policy = None  # the venue lists no trades: fills are inferred from orders
    now = datetime.now(tz=UTC)
    if policy is not None:
        snapshot.trades_supported = True
        since = trades_since(account, policy, now, cfg)
        symbols = (
            trade_symbols(account, local, snapshot, instruments) if policy.symbol_required else None
        )
        if symbols is None or len(symbols) <= 1 or len(sessions) == 1:
            calls.append(lambda a: a.fetch_my_trades(since, symbols))
            weights.append(len(symbols or ()) or 1)
        else:
            n = min(len(sessions), len(symbols))
            groups = [symbols[i::n] for i in range(n)]
            calls += [lambda a, g=g: a.fetch_my_trades(since, g) for g in groups]
            weights += [len(g) for g in groups]
        trades_calls = len(calls)
    if marks:
        calls.append(lambda a: a.fetch_mark_prices(marks))
        weights.append(1)
    results = sessions.run(calls, weights)
    marks_fetch = _marks(marks, *results[-1]) if marks else MarksFetch()
    if policy is None:
        return None, None, marks_fetch
    retry, auth = _trades_into(snapshot, account, results[:trades_calls], since, now, cfg)
    return retry, auth, marks_fetch


def _trades_into(snapshot, account, results, since, now, cfg):
    """Merge the shares' trade reads into ``snapshot``: all complete or a fetch error."""
    errors = [e for _, e in results if e is not None]
    for error in errors:
        if isinstance(error, ex.AuthenticationFailed):
            return None, error
    if any(isinstance(e, NotImplementedError) for e in errors):
        snapshot.trades_supported = False
        return None, None
    for error in errors:
        if not isinstance(error, ex.ExchangeError):
            raise error
    if errors:
        exc = errors[0]
        snapshot.errors[d.FILLS] = f"{type(exc).__name__}: {exc}"
        retry = max(
            (e.retry_after or 0 for e in errors if isinstance(e, ex.TransientExchangeError)),
            default=0,
        )
        return (retry or None), None
    parts = [r for r, _ in results]
    incomplete = [r for r in parts if not r.complete]
    if incomplete:
        note = "; ".join(dict.fromkeys(r.note or "pages missing" for r in incomplete))
        snapshot.errors[d.FILLS] = f"incomplete: {note}"
        return None, None
    if len(parts) == 1:
        snapshot.trades = list(parts[0].items)
    else:
        seen = {(t.symbol, t.trade_id): t for r in parts for t in r.items}
        snapshot.trades = sorted(seen.values(), key=lambda t: (t.executed_at, t.symbol, t.trade_id))
    # what every share covered: the latest start, the earliest read time
    snapshot.trades_from = max((r.covered_from or since for r in parts), default=since)
    fetched = min((r.fetched_at or now for r in parts), default=now)
    newest = max((t.executed_at for t in snapshot.trades), default=None)
    mark = fetched - timedelta(seconds=cfg.fill_overlap_seconds)
    candidates = [m for m in (account.fills_watermark_at, newest, mark) if m is not None]
    snapshot.trades_watermark = max(candidates)
    return None, None
