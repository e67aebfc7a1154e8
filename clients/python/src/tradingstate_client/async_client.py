"""The asynchronous client: the same operations as :class:`~tradingstate_client.Client`,
awaited. Request building, parsing and retries are the same code (``_core``); this class
only performs the I/O with ``httpx.AsyncClient`` and ``asyncio.sleep``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx

from tradingstate_client import _core as core
from tradingstate_client import models as m
from tradingstate_client.retry import RetryPolicy

T = TypeVar("T")
Amount = core.Amount


class AsyncClient:
    """A bot's asynchronous connection to tradingstate: one ``httpx.AsyncClient`` per
    instance. Use ``async with AsyncClient(...) as ts:`` or ``await ts.aclose()``."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float | None = 10.0,
        retry: RetryPolicy | None = None,
        client_order_id_prefix: str = core.CLIENT_ORDER_ID_PREFIX,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        total_timeout: float | None = None,
    ):
        """``timeout`` and ``total_timeout`` as for :class:`~tradingstate_client.Client`."""
        self.config = core.ClientConfig(
            base_url=base_url,
            token=token,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            client_order_id_prefix=client_order_id_prefix,
            headers=dict(headers or {}),
            total_timeout=total_timeout,
        )
        self._http = httpx.AsyncClient(transport=transport, **self.config.http_kwargs())

    # --- plumbing ----------------------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _run(self, program: core.Program[T]) -> T:
        try:
            action = next(program)
            while True:
                if isinstance(action, core.Send):
                    result: Any = await self._send(action)
                else:
                    await asyncio.sleep(action.seconds)
                    result = None
                action = program.send(result)
        except StopIteration as stop:
            return stop.value

    async def _send(self, send: core.Send) -> httpx.Response | httpx.RequestError:
        """One attempt: the answer, its body read, by ``send.deadline``, or the
        ``httpx.RequestError`` that ended it (the program decides what it means). httpx's
        timeouts bound each wait; ``asyncio.timeout`` bounds the whole attempt, so a server
        trickling its answer is cut off at the deadline too."""
        request = core.build_request(self._http, send)
        progress = core.Progress()

        async def trace(name: str, info: Mapping[str, Any]) -> None:
            progress.event(name, info)

        request.extensions["trace"] = trace
        left = None if send.deadline is None else max(0.0, send.deadline - time.monotonic())
        try:
            async with asyncio.timeout(left):
                response = await self._http.send(request, stream=True)
                try:
                    body = core.Body(response, send.deadline)
                    async for chunk in response.aiter_raw():
                        body.add(chunk)
                finally:
                    await response.aclose()
            return body.answer()
        except TimeoutError:  # asyncio.timeout's: httpx's own are httpx.TimeoutException
            return core.timed_out(request, progress.sent)
        except httpx.RequestError as exc:
            return exc

    async def _call(self, call: core.Call[T]) -> T:
        return await self._run(core.execute(call, self.config.limits))

    async def _iter(self, call: core.Call[m.Page[T]]) -> AsyncIterator[T]:
        pages = core.Pages(call)
        next_call: core.Call[m.Page[T]] | None = call
        while next_call is not None:
            page = await self._call(next_call)
            for item in page.results:
                yield item
            next_call = pages.after(page)

    # --- health and accounts -----------------------------------------------------------

    async def health(self) -> m.Health:
        """Liveness: database, worker, and (authenticated) the caller's accounts."""
        return await self._call(core.health_call())

    async def accounts(self) -> list[m.Account]:
        """Every account this token may see (all pages)."""
        return [x async for x in self._iter(core.accounts_call())]

    # --- orders ------------------------------------------------------------------------

    async def register_order(
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
        return await self._run(
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

    async def transition(
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
        return await self._call(call)

    async def bulk_transition(
        self, account: str, updates: Iterable[m.TransitionUpdate | Mapping[str, Any]]
    ) -> m.BulkTransitionResult:
        """Many transitions in one request; each item's result is reported (not retried)."""
        return await self._call(core.bulk_transition_call(account, updates))

    async def order(self, account: str, client_order_id: str) -> m.Order:
        return await self._call(core.order_call(account, client_order_id))

    async def orders(
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
        return await self._call(
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
    ) -> AsyncIterator[m.Order]:
        """Every matching order, page after page."""
        return self._iter(
            core.orders_call(
                account, status=status, symbol=symbol, active=active, page_size=page_size
            )
        )

    # --- fills -------------------------------------------------------------------------

    async def post_fill(
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
        return await self._run(
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

    async def fills(
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
        return await self._call(
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
    ) -> AsyncIterator[m.Fill]:
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

    async def paper_trades(
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
        return await self._call(
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
    ) -> AsyncIterator[m.PaperTrade]:
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

    async def positions(self, account: str) -> list[m.Position]:
        """Every position of the account (all pages)."""
        return [x async for x in self._iter(core.positions_call(account))]

    async def set_position(
        self,
        account: str,
        symbol: str,
        qty: Amount,
        *,
        entry_price: Amount | None = None,
        expected_version: int | None = None,
        reason: str | None = None,
    ) -> m.Position:
        return await self._call(
            core.set_position_call(
                account,
                symbol,
                qty=qty,
                entry_price=entry_price,
                expected_version=expected_version,
                reason=reason,
            )
        )

    async def balances(self, account: str) -> list[m.Balance]:
        """Every balance of the account (all pages)."""
        return [x async for x in self._iter(core.balances_call(account))]

    async def set_balance(
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
        return await self._call(
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

    async def killswitch(self) -> m.KillSwitchStatus:
        return await self._call(core.killswitch_call())

    async def trading_allowed(self, account: str) -> bool:
        """False while the global or ``account``'s kill switch is active. Fails closed: when
        the state cannot be read, this raises rather than answering True."""
        return (await self.killswitch()).allows(account)

    async def killswitch_activate(
        self, reason: str, *, account: str | None = None, cancel_open_orders: bool = False
    ) -> m.KillSwitchChange:
        return await self._call(
            core.killswitch_activate_call(
                reason, account=account, cancel_open_orders=cancel_open_orders
            )
        )

    async def killswitch_deactivate(
        self, reason: str = "", *, account: str | None = None
    ) -> m.KillSwitchChange:
        """Staff only (a bot's token gets PermissionDenied)."""
        return await self._call(core.killswitch_deactivate_call(reason, account=account))

    # --- reconciliation ----------------------------------------------------------------

    async def reconcile(
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
        return await self._run(
            core.reconcile_program(
                account,
                wait=wait,
                dry_run=dry_run,
                timeout=timeout,
                poll_interval=poll_interval,
                limits=self.config.limits,
            )
        )

    async def reconciliations(
        self, account: str, *, page_size: int | None = None, cursor: str | None = None
    ) -> m.Page[m.ReconciliationRun]:
        return await self._call(
            core.reconciliations_call(account, page_size=page_size, cursor=cursor)
        )

    def iter_reconciliations(
        self, account: str, *, page_size: int | None = None
    ) -> AsyncIterator[m.ReconciliationRun]:
        return self._iter(core.reconciliations_call(account, page_size=page_size))

    async def discrepancies(
        self,
        account: str,
        *,
        type: str | None = None,
        status: str | None = None,
        persistent: bool | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> m.Page[m.Discrepancy]:
        return await self._call(
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
    ) -> AsyncIterator[m.Discrepancy]:
        return self._iter(
            core.discrepancies_call(
                account, type=type, status=status, persistent=persistent, page_size=page_size
            )
        )

    async def discrepancy_stats(self) -> m.DiscrepancyStats:
        return await self._call(core.discrepancy_stats_call())

    # --- P&L, exposure, state as of a moment -------------------------------------------

    async def pnl(self, account: str, since: datetime | None = None) -> m.Pnl:
        """Per-position and total P&L; ``since`` restricts realized figures to later fills."""
        return await self._call(core.pnl_call(account, since=since))

    async def pnl_history(
        self, account: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> list[m.PnlPoint]:
        """The recorded P&L snapshots between ``start`` and ``end`` (``?from=&to=``)."""
        return [x async for x in self._iter(core.pnl_history_call(account, start=start, end=end))]

    async def exposure(self) -> m.Exposure:
        """Per asset net/gross notional across the accounts this token may see."""
        return await self._call(core.exposure_call())

    async def state(self, account: str, at: datetime) -> m.AccountState:
        """The account's state as tradingstate held it at ``at`` (aware datetime)."""
        return await self._call(core.state_call(account, at))

    async def schema(self) -> dict[str, Any]:
        """The server's OpenAPI schema."""
        return await self._call(core.schema_call())
