"""The synchronous client. Request building, parsing and retries live in ``_core`` (shared
with :class:`~tradingstate_client.AsyncClient`); this class only performs the I/O."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from tradingstate_client import _core as core
from tradingstate_client import models as m
from tradingstate_client.retry import RetryPolicy

T = TypeVar("T")
Amount = core.Amount


class Client:
    """A bot's connection to tradingstate: one ``httpx.Client`` (connection pool) per instance.

    Use it as a context manager, or call :meth:`close`::

        with Client("http://127.0.0.1:8000", token="...") as ts:
            if ts.trading_allowed("paper-demo"):
                order = ts.register_order("paper-demo", symbol="BTC/USDT", side="buy",
                                          type="limit", quantity=Decimal("0.01"), price=60000)
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        client_order_id_prefix: str = core.CLIENT_ORDER_ID_PREFIX,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        total_timeout: float | None = None,
    ):
        """``timeout``: seconds one attempt may take, from waiting for a connection to the
        answer's last byte (None: no limit). ``total_timeout``: seconds a whole call may
        take, its retries and the waits between them included (None: no limit beyond
        ``retry``'s attempts of ``timeout`` and its ``max_wait``)."""
        self.config = core.ClientConfig(
            base_url=base_url,
            token=token,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            client_order_id_prefix=client_order_id_prefix,
            headers=dict(headers or {}),
            total_timeout=total_timeout,
        )
        self._http = httpx.Client(transport=transport, **self.config.http_kwargs())

    # --- plumbing ----------------------------------------------------------------------

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _run(self, program: core.Program[T]) -> T:
        try:
            action = next(program)
            while True:
                if isinstance(action, core.Send):
                    result: Any = self._send(action)
                else:
                    time.sleep(action.seconds)
                    result = None
                action = program.send(result)
        except StopIteration as stop:
            return stop.value

    def _send(self, send: core.Send) -> httpx.Response | httpx.RequestError:
        """One attempt: the answer, its body read, by ``send.deadline``, or the
        ``httpx.RequestError`` that ended it (the program decides what it means)."""
        request = core.build_request(self._http, send)
        watchdog = _Watchdog(send.deadline)
        request.extensions["trace"] = watchdog.progress.event
        try:
            response = self._http.send(request, stream=True)
            try:
                watchdog.watch(response.extensions.get("network_stream"))
                body = core.Body(response, send.deadline)
                for chunk in response.iter_raw():
                    body.add(chunk)
            finally:
                response.close()
            return body.answer()
        except httpx.RequestError as exc:
            if watchdog.fired:  # the socket was shut at the deadline: that ended it
                return core.timed_out(request, watchdog.progress.sent)
            return exc
        finally:
            watchdog.stop()

    def _call(self, call: core.Call[T]) -> T:
        return self._run(core.execute(call, self.config.limits))

    def _iter(self, call: core.Call[m.Page[T]]) -> Iterator[T]:
        pages = core.Pages(call)
        next_call: core.Call[m.Page[T]] | None = call
        while next_call is not None:
            page = self._call(next_call)
            yield from page.results
            next_call = pages.after(page)

    # --- health and accounts -----------------------------------------------------------

    def health(self) -> m.Health:
        """Liveness: database, worker, and (authenticated) the caller's accounts."""
        return self._call(core.health_call())

    def accounts(self) -> list[m.Account]:
        """Every account this token may see (all pages)."""
        return list(self._iter(core.accounts_call()))

    # --- orders ------------------------------------------------------------------------

    def register_order(
        self,
        account: str,
        *,
        symbol: str,
        side: str,
        quantity: Amount,
        type: str | None = None,
        price: Amount | None = None,
        client_order_id: str | None = None,
        strategy_id: str | None = None,
        reason: str | None = None,
    ) -> m.Order:
        """Register a new order (status ``pending``). Without ``client_order_id`` one is
        generated. Safe to retry: resends carry the same id, and 200 (already registered
        with the same content) counts as success like 201; a different content is
        :class:`~tradingstate_client.Conflict`. Every
        :class:`~tradingstate_client.TradingStateError` raised carries the id used as
        ``client_order_id``: resend with it."""
        return self._run(
            core.register_order_program(
                account,
                client_order_id=client_order_id,
                prefix=self.config.client_order_id_prefix,
                limits=self.config.limits,
                symbol=symbol,
                side=side,
                quantity=quantity,
                type=type,
                price=price,
                strategy_id=strategy_id,
                reason=reason,
            )
        )

    def transition(
        self,
        account: str,
        client_order_id: str,
        status: str,
        *,
        filled_qty: Amount | None = None,
        avg_fill_price: Amount | None = None,
        exchange_order_id: str | None = None,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> m.Order:
        """Move an order along the status machine (not retried: a repeat may be illegal)."""
        call = core.transition_call(
            account,
            client_order_id,
            status,
            filled_qty=filled_qty,
            avg_fill_price=avg_fill_price,
            exchange_order_id=exchange_order_id,
            expected_version=expected_version,
            reason=reason,
        )
        return self._call(call)

    def bulk_transition(
        self, account: str, updates: Iterable[m.TransitionUpdate | Mapping[str, Any]]
    ) -> m.BulkTransitionResult:
        """Many transitions in one request; each item's result is reported (not retried)."""
        return self._call(core.bulk_transition_call(account, updates))

    def order(self, account: str, client_order_id: str) -> m.Order:
        return self._call(core.order_call(account, client_order_id))

    def orders(
        self,
        account: str,
        *,
        status: str | None = None,
        symbol: str | None = None,
        active: bool | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.Order]:
        """One page of the account's orders, newest first."""
        return self._call(
            core.orders_call(
                account,
                status=status,
                symbol=symbol,
                active=active,
                page_size=page_size,
                cursor=cursor,
            )
        )

    def iter_orders(
        self,
        account: str,
        *,
        status: str | None = None,
        symbol: str | None = None,
        active: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[m.Order]:
        """Every matching order, page after page."""
        return self._iter(
            core.orders_call(
                account, status=status, symbol=symbol, active=active, page_size=page_size
            )
        )

    # --- fills -------------------------------------------------------------------------

    def post_fill(
        self,
        account: str,
        *,
        client_order_id: str,
        trade_id: str,
        quantity: Amount,
        price: Amount,
        fee: Amount | None = None,
        fee_currency: str | None = None,
        executed_at: datetime | None = None,
        reason: str | None = None,
    ) -> m.Fill:
        """Record a fill. Safe to retry: idempotent on ``trade_id`` (200 = already recorded,
        no second effect; other content for the same id is a Conflict). Every
        :class:`~tradingstate_client.TradingStateError` raised carries ``trade_id``."""
        return self._run(
            core.post_fill_program(
                account,
                trade_id=trade_id,
                limits=self.config.limits,
                client_order_id=client_order_id,
                quantity=quantity,
                price=price,
                fee=fee,
                fee_currency=fee_currency,
                executed_at=executed_at,
                reason=reason,
            )
        )

    def fills(
        self,
        account: str,
        *,
        symbol: str | None = None,
        order: str | None = None,
        origin: str | None = None,
        inferred: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> m.Page[m.Fill]:
        """One page of the account's fills (``order`` is a client_order_id; ``params``: any
        further filter the server offers)."""
        return self._call(
            core.fills_call(
                account,
                symbol=symbol,
                order=order,
                origin=origin,
                inferred=inferred,
                since=since,
                until=until,
                page_size=page_size,
                cursor=cursor,
                extra=params,
            )
        )

    def iter_fills(
        self,
        account: str,
        *,
        symbol: str | None = None,
        order: str | None = None,
        origin: str | None = None,
        inferred: bool | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> Iterator[m.Fill]:
        return self._iter(
            core.fills_call(
                account,
                symbol=symbol,
                order=order,
                origin=origin,
                inferred=inferred,
                since=since,
                until=until,
                page_size=page_size,
                extra=params,
            )
        )

    # --- the paper venue ---------------------------------------------------------------

    def paper_trades(
        self,
        account: str,
        *,
        order: str | None = None,
        exchange_order_id: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.PaperTrade]:
        """One page of the paper venue's trades on a paper account, oldest first (``order``
        is a client_order_id): the venue's executions, to record with ``post_fill``."""
        return self._call(
            core.paper_trades_call(
                account,
                order=order,
                exchange_order_id=exchange_order_id,
                symbol=symbol,
                since=since,
                page_size=page_size,
                cursor=cursor,
            )
        )

    def iter_paper_trades(
        self,
        account: str,
        *,
        order: str | None = None,
        exchange_order_id: str | None = None,
        symbol: str | None = None,
        since: datetime | None = None,
        page_size: int | None = None,
    ) -> Iterator[m.PaperTrade]:
        return self._iter(
            core.paper_trades_call(
                account,
                order=order,
                exchange_order_id=exchange_order_id,
                symbol=symbol,
                since=since,
                page_size=page_size,
            )
        )

    # --- positions and balances --------------------------------------------------------

    def positions(self, account: str) -> list[m.Position]:
        """Every position of the account (all pages)."""
        return list(self._iter(core.positions_call(account)))

    def set_position(
        self,
        account: str,
        symbol: str,
        qty: Amount,
        *,
        entry_price: Amount | None = None,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> m.Position:
        return self._call(
            core.set_position_call(
                account,
                symbol,
                qty=qty,
                entry_price=entry_price,
                expected_version=expected_version,
                reason=reason,
            )
        )

    def balances(self, account: str) -> list[m.Balance]:
        """Every balance of the account (all pages)."""
        return list(self._iter(core.balances_call(account)))

    def set_balance(
        self,
        account: str,
        currency: str,
        *,
        total: Amount | None = None,
        free: Amount | None = None,
        used: Amount | None = None,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> m.Balance:
        return self._call(
            core.set_balance_call(
                account,
                currency,
                total=total,
                free=free,
                used=used,
                expected_version=expected_version,
                reason=reason,
            )
        )

    # --- kill switch -------------------------------------------------------------------

    def killswitch(self) -> m.KillSwitchStatus:
        return self._call(core.killswitch_call())

    def trading_allowed(self, account: str) -> bool:
        """False while the global or ``account``'s kill switch is active. Fails closed: when
        the state cannot be read, this raises rather than answering True."""
        return self.killswitch().allows(account)

    def killswitch_activate(
        self, reason: str, *, account: str | None = None, cancel_open_orders: bool = False
    ) -> m.KillSwitchChange:
        return self._call(
            core.killswitch_activate_call(
                reason, account=account, cancel_open_orders=cancel_open_orders
            )
        )

    def killswitch_deactivate(
        self, reason: str = "", *, account: str | None = None
    ) -> m.KillSwitchChange:
        """Staff only (a bot's token gets PermissionDenied)."""
        return self._call(core.killswitch_deactivate_call(reason, account=account))

    # --- reconciliation ----------------------------------------------------------------

    def reconcile(
        self,
        account: str,
        *,
        wait: bool = True,
        dry_run: bool = False,
        timeout: float = 60.0,
        poll_interval: float = 1.0,
    ) -> m.ReconciliationRun:
        """Request a pass. With ``wait`` (default) return it finished, or as it stands after
        ``timeout`` seconds (check ``run.finished``); without, return the queued run.

        With ``wait`` the server runs the pass and answers when it ends or after its
        ``api.reconcile_wait_seconds`` (30 s by default); that answer, which names the run,
        is waited for even when ``timeout`` is shorter."""
        return self._run(
            core.reconcile_program(
                account,
                wait=wait,
                dry_run=dry_run,
                timeout=timeout,
                poll_interval=poll_interval,
                limits=self.config.limits,
            )
        )

    def reconciliations(
        self, account: str, *, page_size: int | None = None, cursor: str | None = None
    ) -> m.Page[m.ReconciliationRun]:
        return self._call(core.reconciliations_call(account, page_size=page_size, cursor=cursor))

    def iter_reconciliations(
        self, account: str, *, page_size: int | None = None
    ) -> Iterator[m.ReconciliationRun]:
        return self._iter(core.reconciliations_call(account, page_size=page_size))

    def discrepancies(
        self,
        account: str,
        *,
        type: str | None = None,
        status: str | None = None,
        persistent: bool | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.Discrepancy]:
        return self._call(
            core.discrepancies_call(
                account,
                type=type,
                status=status,
                persistent=persistent,
                page_size=page_size,
                cursor=cursor,
            )
        )

    def iter_discrepancies(
        self,
        account: str,
        *,
        type: str | None = None,
        status: str | None = None,
        persistent: bool | None = None,
        page_size: int | None = None,
    ) -> Iterator[m.Discrepancy]:
        return self._iter(
            core.discrepancies_call(
                account, type=type, status=status, persistent=persistent, page_size=page_size
            )
        )

    def discrepancy_stats(self) -> m.DiscrepancyStats:
        return self._call(core.discrepancy_stats_call())

    # --- P&L, exposure, state as of a moment -------------------------------------------

    def pnl(self, account: str, since: datetime | None = None) -> m.Pnl:
        """Per-position and total P&L; ``since`` restricts realized figures to later fills."""
        return self._call(core.pnl_call(account, since=since))

    def pnl_history(
        self, account: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[m.PnlPoint]:
        """The recorded P&L snapshots between ``start`` and ``end`` (``?from=&to=``)."""
        return list(self._iter(core.pnl_history_call(account, start=start, end=end)))

    def exposure(self) -> m.Exposure:
        """Per asset net/gross notional across the accounts this token may see."""
        return self._call(core.exposure_call())

    def state(self, account: str, at: datetime) -> m.AccountState:
        """The account's state as tradingstate held it at ``at`` (aware datetime)."""
        return self._call(core.state_call(account, at))

    def schema(self) -> dict[str, Any]:
        """The server's OpenAPI schema."""
        return self._call(core.schema_call())


class _Watchdog:
    """Ends one sync attempt at its deadline. httpx's timeouts bound each wait on the socket
    (:func:`core.build_request` sets them to the time left), but not a server that keeps
    sending a byte now and then: at the deadline this shuts the attempt's socket down, which
    wakes the blocked read (the attempt then fails, and is reported as timed out). The
    socket is known once the connection is made (httpcore's ``trace`` extension) or, on a
    connection taken from the pool, once the answer's headers are in; :class:`core.Body`
    checks the deadline after each chunk besides."""

    def __init__(self, deadline: float | None):
        self.progress = core.Progress(on_stream=self.watch)
        self.fired = False
        self.done = False
        self._armed = deadline is not None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        if deadline is not None:
            _REAPER.add(deadline, self)

    def watch(self, stream: Any) -> None:
        """Shut ``stream``'s socket down at the deadline (at once if it has passed)."""
        sock = stream.get_extra_info("socket") if stream is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            if self.done or not self._armed:
                return
            self._sockets.append(sock)
            if self.fired:
                _shut(sock)

    def fire(self) -> None:
        with self._lock:
            if self.done:
                return
            self.fired = True
            for sock in self._sockets:
                _shut(sock)

    def stop(self) -> None:
        with self._lock:
            self.done = True


class _Reaper:
    """One daemon thread for the process that fires each :class:`_Watchdog` at its deadline
    (a thread per attempt would cost more than a request on loopback). Started on first
    use; a stopped watchdog is dropped when its deadline comes, or sooner when they pile up
    (very long time limits)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watchdog]] = []
        self._order = itertools.count()
        self._compact_at = 64
        self._thread: threading.Thread | None = None

    def add(self, deadline: float, watchdog: _Watchdog) -> None:
        with self._cond:
            if len(self._heap) >= self._compact_at:
                self._heap = [entry for entry in self._heap if not entry[2].done]
                heapq.heapify(self._heap)
                self._compact_at = max(64, 2 * len(self._heap))
            heapq.heappush(self._heap, (deadline, next(self._order), watchdog))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="tradingstate-client-deadlines", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(self._heap[0][0] - time.monotonic() if self._heap else None)
                _, _, due = heapq.heappop(self._heap)
            due.fire()  # outside the lock: shutting sockets down must not hold up add()


_REAPER = _Reaper()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
