"""The one implementation of request building, response parsing and retries ("sans-IO").

Each operation is built here as a :class:`Call` (method, path, query, JSON body, which
statuses mean success, whether it is idempotent, how to parse the answer). A *program* is a
generator that yields :class:`Send` and :class:`Sleep` actions and returns the parsed result;
:func:`execute` is the program for one call with its retries, :func:`reconcile_program` polls
a pass to its end. The sync :class:`~tradingstate_client.Client` and the
:class:`~tradingstate_client.AsyncClient` only perform the actions (``httpx.Client.send`` or
``await httpx.AsyncClient.send``, ``time.sleep`` or ``await asyncio.sleep``), so both behave
identically by construction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from tradingstate_client import models as m
from tradingstate_client.errors import (
    ApiError,
    ResponseFormatError,
    TradingStateError,
    TransportError,
    error_class,
)
from tradingstate_client.retry import RetryPolicy, parse_retry_after

logger = logging.getLogger("tradingstate_client")

T = TypeVar("T")
Amount = Decimal | int | str
API = "/api/v1"
CLIENT_ORDER_ID_PREFIX = "ts-"
# the longest a server holds ``POST .../reconciliations/?wait=true``: the upper bound of its
# ``api.reconcile_wait_seconds`` (30 by default), and a margin for the answer to arrive
SERVER_RECONCILE_WAIT_MAX = 300.0
RECONCILE_READ_MARGIN = 10.0


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer."""

    method: str
    path: str  # percent-encoded, from the server root
    parse: Callable[[Any], T]
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    idempotent: bool = False
    success: frozenset[int] = frozenset({200})
    # statuses whose body is an answer only when it parses (health's own 503 report); any
    # other body with them is an error like any other (a proxy's 503 page)
    answer_statuses: frozenset[int] = frozenset()
    timeout: float | None = None  # overrides the client's read timeout for this request


@dataclass(frozen=True)
class Send:
    call: Call[Any]
    attempt: int


@dataclass(frozen=True)
class Sleep:
    seconds: float


Action = Send | Sleep
Program = Generator[Action, Any, T]


# --- the retry loop --------------------------------------------------------------------------


def execute(call: Call[T], policy: RetryPolicy) -> Program[T]:
    """Send ``call``; retry it as ``policy`` allows; return the parsed answer or raise.

    The runner answers each :class:`Send` with the ``httpx.Response`` or the
    ``httpx.RequestError`` it got, and each :class:`Sleep` with None.
    """
    attempt = 0
    waited = 0.0
    while True:
        attempt += 1
        outcome = yield Send(call, attempt)
        if isinstance(outcome, httpx.RequestError) and not isinstance(
            outcome, httpx.TransportError
        ):
            # an answer came but could not be read (a body that fails its Content-Encoding,
            # say): the same class as an answer of the wrong shape; not resent
            raise ResponseFormatError(
                f"{call.method} {call.path}: the answer could not be read: "
                f"{type(outcome).__name__}: {outcome}"
            ) from outcome
        if isinstance(outcome, httpx.TransportError):
            delay = policy.next_delay(
                attempt=attempt, waited=waited, idempotent=call.idempotent, transport_error=True
            )
            if isinstance(outcome, httpx.UnsupportedProtocol):
                delay = None  # a misconfigured base URL: retrying cannot help
            if delay is None:
                raise TransportError(
                    f"{call.method} {call.path}: {type(outcome).__name__}: {outcome} "
                    f"(after {attempt} attempt{'s' if attempt > 1 else ''})",
                    method=call.method,
                    url=call.path,
                    attempts=attempt,
                ) from outcome
            reason = type(outcome).__name__
        else:
            response: httpx.Response = outcome
            if response.status_code in call.success:
                return call.parse(_json(response))
            if response.status_code in call.answer_statuses:
                with contextlib.suppress(ResponseFormatError):
                    return call.parse(_json(response))
            error = api_error(response, call, attempt)
            delay = policy.next_delay(
                attempt=attempt,
                waited=waited,
                idempotent=call.idempotent,
                status=response.status_code,
                retry_after=error.retry_after,
            )
            if delay is None:
                raise error
            reason = f"{error.status} {error.error}"
        logger.warning(
            "tradingstate: %s %s: %s; retry %d in %.2fs",
            call.method,
            call.path,
            reason,
            attempt,
            delay,
        )
        yield Sleep(delay)
        waited += delay


def carrying(program: Program[T], **keys: str) -> Program[T]:
    """``program``, whose :class:`TradingStateError` carries ``keys`` as attributes: the
    idempotency key a failed write was sent with, for the caller to resend it."""
    try:
        return (yield from program)
    except TradingStateError as exc:
        for name, value in keys.items():
            setattr(exc, name, value)
        raise


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as exc:
        raise ResponseFormatError(
            f"{response.status_code}: the answer is not JSON: {response.text[:200]!r}",
            status=response.status_code,
            body=response.text[:2000],
        ) from exc


def api_error(response: httpx.Response, call: Call[Any], attempts: int) -> ApiError:
    """The exception for a non-success answer, carrying the API's error body."""
    status = response.status_code
    try:
        body = json.loads(response.content, parse_float=Decimal) if response.content else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        # not the API's shape (a proxy's page, say): keep what can be said
        text = response.text[:500] if response.content else ""
        body = {
            "error": f"http_{status}",
            "detail": text or response.reason_phrase or f"HTTP {status}",
            "fields": {},
        }
    fields = body.get("fields") if isinstance(body.get("fields"), dict) else {}
    cls = error_class(status, body["error"])
    return cls(
        status=status,
        error=body["error"],
        detail=str(body.get("detail", "")),
        fields=fields,
        body=body,
        method=call.method,
        url=call.path,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        attempts=attempts,
    )


# --- encoding ----------------------------------------------------------------------------


def seg(value: str, name: str) -> str:
    """The path parameter ``name``, percent-encoded (``BTC/USDT`` becomes ``BTC%2FUSDT``).

    ``.`` and ``..`` are encoded too (``%2E``, ``%2E%2E``): ``quote`` leaves dots alone, and
    URL normalisation would remove such a segment and send the request to another endpoint.
    """
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}: must be a non-empty string, got {value!r}")
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


def amount(value: Amount, name: str) -> str:
    """An amount as the API's decimal string. Floats are refused: they are not exact."""
    if isinstance(value, bool | float):
        raise TypeError(f"{name}: use Decimal, int or str for amounts, not {type(value).__name__}")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name}: {value} is not a finite amount")
        # the digits as they are (normalize() would round past 28 digits and use exponents),
        # without trailing fractional zeros: Decimal arithmetic adds them
        # (0.001000000000 * 1.000000000 has 21 places) and the API takes at most 18
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in ("-0", "") else text
    if isinstance(value, str):
        return value
    raise TypeError(f"{name}: use Decimal, int or str for amounts, not {type(value).__name__}")


def aware(value: datetime, name: str) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"{name}: expected a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}: the datetime must be timezone-aware (e.g. tzinfo=UTC)")
    return value.isoformat()


def flag(value: bool) -> str:
    return "true" if value else "false"


def compact(**items: Any) -> dict[str, Any]:
    """The keyword arguments that were given (None means "not given")."""
    return {k: v for k, v in items.items() if v is not None}


def query(**items: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in items.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = flag(value)
        elif isinstance(value, datetime):
            value = aware(value, key)
        elif isinstance(value, Decimal):
            value = amount(value, key)
        out.append((key, str(value)))
    return tuple(out)


def new_client_order_id(prefix: str = CLIENT_ORDER_ID_PREFIX) -> str:
    """A fresh id (``ts-`` and 32 hex digits): unique, and valid for the API (1-64 chars)."""
    return f"{prefix}{uuid.uuid4().hex}"


# --- parsing -----------------------------------------------------------------------------


def model(cls: type[T]) -> Callable[[Any], T]:
    return lambda data: m.decode(cls, data)


def page_of(cls: type[T]) -> Callable[[Any], m.Page[T]]:
    def parse(data: Any) -> m.Page[T]:
        if isinstance(data, list):  # an unpaginated list
            return m.Page(results=m.decode(list[cls], data))
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ResponseFormatError("expected a page {next, previous, results}", body=data)
        return m.Page(
            results=m.decode(list[cls], data["results"], "results"),
            next_cursor=cursor_of(data.get("next")),
            previous_cursor=cursor_of(data.get("previous")),
        )

    return parse


def cursor_of(link: Any) -> str | None:
    """The ``cursor`` parameter of a page link (the link's host is not trusted: the next
    request goes to this client's base URL)."""
    if not isinstance(link, str) or not link:
        return None
    values = parse_qs(urlsplit(link).query).get("cursor")
    return values[0] if values else None


def with_cursor(call: Call[T], cursor: str | None) -> Call[T]:
    params = tuple((k, v) for k, v in call.params if k != "cursor")
    if cursor:
        params += (("cursor", cursor),)
    return dataclasses.replace(call, params=params)


# --- the operations ------------------------------------------------------------------------


def account_path(account: str, *rest: str) -> str:
    return "/".join([API, "accounts", seg(account, "account"), *rest]) + "/"


def accounts_call(*, page_size: int | None = None) -> Call[m.Page[m.Account]]:
    return Call(
        "GET",
        f"{API}/accounts/",
        page_of(m.Account),
        params=query(page_size=page_size),
        idempotent=True,
    )


def register_order_call(
    account: str,
    *,
    client_order_id: str,
    symbol: str,
    side: str,
    quantity: Amount,
    type: str | None,
    price: Amount | None,
    strategy_id: str | None,
    reason: str | None,
) -> Call[m.Order]:
    if not isinstance(client_order_id, str) or not client_order_id:
        raise ValueError(f"client_order_id: must be a non-empty string, got {client_order_id!r}")
    body = compact(
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        type=type,
        quantity=amount(quantity, "quantity"),
        price=None if price is None else amount(price, "price"),
        strategy_id=strategy_id,
        reason=reason,
    )
    # idempotent on client_order_id: a resend returns the registered order (200), or 409
    # if the content differs
    return Call(
        "POST",
        account_path(account, "orders"),
        model(m.Order),
        body=body,
        idempotent=True,
        success=frozenset({200, 201}),
    )


def register_order_program(
    account: str,
    *,
    client_order_id: str | None,
    prefix: str,
    policy: RetryPolicy,
    **fields: Any,
) -> Program[m.Order]:
    """Register an order under ``client_order_id``, or under an id made here (once: every
    resend carries it). Every :class:`TradingStateError` it raises carries the id as
    ``client_order_id``."""
    if client_order_id is None:
        client_order_id = new_client_order_id(prefix)
    call = register_order_call(account, client_order_id=client_order_id, **fields)
    return (yield from carrying(execute(call, policy), client_order_id=client_order_id))


def _transition_fields(
    *,
    status: str,
    filled_qty: Amount | None = None,
    avg_fill_price: Amount | None = None,
    exchange_order_id: str | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return compact(
        status=status,
        filled_qty=None if filled_qty is None else amount(filled_qty, "filled_qty"),
        avg_fill_price=None if avg_fill_price is None else amount(avg_fill_price, "avg_fill_price"),
        exchange_order_id=exchange_order_id,
        expected_version=expected_version,
        reason=reason,
    )


def transition_call(
    account: str, client_order_id: str, status: str, **fields: Any
) -> Call[m.Order]:
    return Call(
        "POST",
        account_path(account, "orders", seg(client_order_id, "client_order_id"), "transition"),
        model(m.Order),
        body=_transition_fields(status=status, **fields),
    )


def bulk_transition_call(
    account: str, updates: Iterable[m.TransitionUpdate | Mapping[str, Any]]
) -> Call[m.BulkTransitionResult]:
    items = []
    for update in updates:
        if isinstance(update, Mapping):
            update = m.TransitionUpdate(**update)
        items.append(
            {
                "client_order_id": update.client_order_id,
                **_transition_fields(
                    status=update.status,
                    filled_qty=update.filled_qty,
                    avg_fill_price=update.avg_fill_price,
                    exchange_order_id=update.exchange_order_id,
                    expected_version=update.expected_version,
                    reason=update.reason,
                ),
            }
        )
    return Call(
        "POST",
        account_path(account, "orders", "bulk-transition"),
        model(m.BulkTransitionResult),
        body={"updates": items},
    )


def order_call(account: str, client_order_id: str) -> Call[m.Order]:
    return Call(
        "GET",
        account_path(account, "orders", seg(client_order_id, "client_order_id")),
        model(m.Order),
        idempotent=True,
    )


def orders_call(
    account: str,
    *,
    status: str | None = None,
    symbol: str | None = None,
    active: bool | None = None,
    page_size: int | None = None,
    cursor: str | None = None,
) -> Call[m.Page[m.Order]]:
    return Call(
        "GET",
        account_path(account, "orders"),
        page_of(m.Order),
        params=query(
            status=status, symbol=symbol, active=active, page_size=page_size, cursor=cursor
        ),
        idempotent=True,
    )


def post_fill_call(
    account: str,
    *,
    client_order_id: str,
    trade_id: str,
    quantity: Amount,
    price: Amount,
    fee: Amount | None,
    fee_currency: str | None,
    executed_at: datetime | None,
    reason: str | None,
) -> Call[m.Fill]:
    body = compact(
        client_order_id=client_order_id,
        trade_id=trade_id,
        quantity=amount(quantity, "quantity"),
        price=amount(price, "price"),
        fee=None if fee is None else amount(fee, "fee"),
        fee_currency=fee_currency,
        executed_at=None if executed_at is None else aware(executed_at, "executed_at"),
        reason=reason,
    )
    # idempotent on trade_id: a resend returns the recorded fill (200), or 409 if it differs
    return Call(
        "POST",
        account_path(account, "fills"),
        model(m.Fill),
        body=body,
        idempotent=True,
        success=frozenset({200, 201}),
    )


def post_fill_program(
    account: str, *, trade_id: str, policy: RetryPolicy, **fields: Any
) -> Program[m.Fill]:
    """Record a fill; every :class:`TradingStateError` it raises carries ``trade_id``."""
    call = post_fill_call(account, trade_id=trade_id, **fields)
    return (yield from carrying(execute(call, policy), trade_id=trade_id))


def fills_call(
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
    extra: Mapping[str, Any] | None = None,
) -> Call[m.Page[m.Fill]]:
    params = query(
        symbol=symbol,
        order=order,
        origin=origin,
        inferred=inferred,
        since=since,
        until=until,
        page_size=page_size,
        cursor=cursor,
        **dict(extra or {}),
    )
    return Call("GET", account_path(account, "fills"), page_of(m.Fill), params, idempotent=True)


def paper_trades_call(
    account: str,
    *,
    order: str | None = None,
    exchange_order_id: str | None = None,
    symbol: str | None = None,
    since: datetime | None = None,
    page_size: int | None = None,
    cursor: str | None = None,
) -> Call[m.Page[m.PaperTrade]]:
    params = query(
        order=order,
        exchange_order_id=exchange_order_id,
        symbol=symbol,
        since=since,
        page_size=page_size,
        cursor=cursor,
    )
    return Call(
        "GET",
        account_path(account, "paper", "trades"),
        page_of(m.PaperTrade),
        params,
        idempotent=True,
    )


def positions_call(account: str, *, page_size: int | None = None) -> Call[m.Page[m.Position]]:
    return Call(
        "GET",
        account_path(account, "positions"),
        page_of(m.Position),
        params=query(page_size=page_size),
        idempotent=True,
    )


def set_position_call(
    account: str,
    symbol: str,
    *,
    qty: Amount,
    entry_price: Amount | None,
    expected_version: int | None,
    reason: str | None,
) -> Call[m.Position]:
    body = compact(
        qty=amount(qty, "qty"),
        entry_price=None if entry_price is None else amount(entry_price, "entry_price"),
        expected_version=expected_version,
        reason=reason,
    )
    # setting an absolute value is idempotent; with expected_version a resend after a lost
    # answer would be refused as a version conflict, so it is not retried
    return Call(
        "PUT",
        account_path(account, "positions", seg(symbol, "symbol")),
        model(m.Position),
        body=body,
        idempotent=expected_version is None,
    )


def balances_call(account: str, *, page_size: int | None = None) -> Call[m.Page[m.Balance]]:
    return Call(
        "GET",
        account_path(account, "balances"),
        page_of(m.Balance),
        params=query(page_size=page_size),
        idempotent=True,
    )


def set_balance_call(
    account: str,
    currency: str,
    *,
    total: Amount | None,
    free: Amount | None,
    used: Amount | None,
    expected_version: int | None,
    reason: str | None,
) -> Call[m.Balance]:
    body = compact(
        total=None if total is None else amount(total, "total"),
        free=None if free is None else amount(free, "free"),
        used=None if used is None else amount(used, "used"),
        expected_version=expected_version,
        reason=reason,
    )
    return Call(
        "PUT",
        account_path(account, "balances", seg(currency, "currency")),
        model(m.Balance),
        body=body,
        idempotent=expected_version is None,
    )


def killswitch_call() -> Call[m.KillSwitchStatus]:
    return Call("GET", f"{API}/killswitch/", model(m.KillSwitchStatus), idempotent=True)


def killswitch_activate_call(
    reason: str, *, account: str | None, cancel_open_orders: bool
) -> Call[m.KillSwitchChange]:
    # activating an active switch changes nothing (changed=false): safe to resend
    body = compact(reason=reason, account=account, cancel_open_orders=cancel_open_orders)
    return Call(
        "POST", f"{API}/killswitch/activate/", model(m.KillSwitchChange), body=body, idempotent=True
    )


def killswitch_deactivate_call(reason: str, *, account: str | None) -> Call[m.KillSwitchChange]:
    body = compact(reason=reason, account=account)
    return Call(
        "POST",
        f"{API}/killswitch/deactivate/",
        model(m.KillSwitchChange),
        body=body,
        idempotent=True,
    )


def wait_seconds(timeout: float) -> str:
    """``timeout`` as the server's ``?timeout=`` reads it: more than 0, at most 3 places."""
    if not math.isfinite(timeout):
        timeout = SERVER_RECONCILE_WAIT_MAX
    seconds = min(max(math.ceil(timeout * 1000), 1), 999_999_999)  # in milliseconds
    whole, millis = divmod(seconds, 1000)
    return f"{whole}.{millis:03d}".rstrip("0").rstrip(".")


def reconcile_call(
    account: str,
    *,
    wait: bool,
    dry_run: bool,
    timeout: float | None,
    wait_for: float | None = None,
) -> Call[m.ReconciliationRun]:
    """``wait_for``: with ``wait``, how long the server may hold the request (its own
    ``api.reconcile_wait_seconds`` caps it); ``timeout``: this request's read timeout."""
    return Call(
        "POST",
        account_path(account, "reconciliations"),
        model(m.ReconciliationRun),
        params=query(
            wait=wait, timeout=wait_seconds(wait_for) if wait and wait_for is not None else None
        ),
        body={"dry_run": dry_run},
        success=frozenset({200, 202}),
        timeout=timeout,
    )


def reconciliations_call(
    account: str, *, page_size: int | None = None, cursor: str | None = None
) -> Call[m.Page[m.ReconciliationRun]]:
    return Call(
        "GET",
        account_path(account, "reconciliations"),
        page_of(m.ReconciliationRun),
        params=query(page_size=page_size, cursor=cursor),
        idempotent=True,
    )


def discrepancies_call(
    account: str,
    *,
    type: str | None = None,
    status: str | None = None,
    persistent: bool | None = None,
    page_size: int | None = None,
    cursor: str | None = None,
) -> Call[m.Page[m.Discrepancy]]:
    return Call(
        "GET",
        account_path(account, "discrepancies"),
        page_of(m.Discrepancy),
        params=query(
            type=type, status=status, persistent=persistent, page_size=page_size, cursor=cursor
        ),
        idempotent=True,
    )


def health_call() -> Call[m.Health]:
    # the server's 503 carries its health report (status "error"): an answer, not a failure;
    # any other 503 (a proxy's page, the API's error body) is ServiceUnavailable, retried
    # like every read
    return Call(
        "GET",
        f"{API}/health/",
        model(m.Health),
        idempotent=True,
        answer_statuses=frozenset({503}),
    )


def pnl_call(account: str, *, since: datetime | None = None) -> Call[m.Pnl]:
    return Call(
        "GET", account_path(account, "pnl"), model(m.Pnl), query(since=since), idempotent=True
    )


def pnl_history_call(
    account: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    page_size: int | None = None,
    cursor: str | None = None,
) -> Call[m.Page[m.PnlPoint]]:
    params = query(page_size=page_size, cursor=cursor)
    # "from" is a Python keyword: the arguments are start/end
    params = query(**{"from": start, "to": end}) + params
    return Call(
        "GET", account_path(account, "pnl", "history"), page_of(m.PnlPoint), params, idempotent=True
    )


def exposure_call() -> Call[m.Exposure]:
    return Call("GET", f"{API}/exposure/", model(m.Exposure), idempotent=True)


def state_call(account: str, at: datetime) -> Call[m.AccountState]:
    return Call(
        "GET",
        account_path(account, "state"),
        model(m.AccountState),
        query(at=aware(at, "at")),
        idempotent=True,
    )


def discrepancy_stats_call() -> Call[m.DiscrepancyStats]:
    return Call("GET", f"{API}/discrepancies/stats/", model(m.DiscrepancyStats), idempotent=True)


def schema_call() -> Call[dict[str, Any]]:
    return Call(
        "GET", "/api/schema/", lambda data: data, params=(("format", "json"),), idempotent=True
    )


# --- programs made of several calls -------------------------------------------------------


def reconcile_program(
    account: str,
    *,
    wait: bool,
    dry_run: bool,
    timeout: float,
    poll_interval: float,
    policy: RetryPolicy,
) -> Program[m.ReconciliationRun]:
    """Request a pass; with ``wait``, return it finished, or as it stands after ``timeout``.

    The server runs a waited pass itself and holds the request until the pass ends, or
    ``timeout`` (sent as ``?timeout=``) or its own ``api.reconcile_wait_seconds`` have
    passed, whichever is first (200 when done, 202 if still running). That answer is the
    only place the run's id is given, so it is read even past ``timeout`` (a read timeout
    would leave the pass running and its id unknown; a server that does not know
    ``?timeout=`` holds it for its own wait); then, while the run is unfinished and
    ``timeout`` has not passed, this polls the account's runs.
    """
    deadline = time.monotonic() + timeout
    read_timeout = max(timeout, SERVER_RECONCILE_WAIT_MAX) + RECONCILE_READ_MARGIN
    run = yield from execute(
        reconcile_call(
            account,
            wait=wait,
            dry_run=dry_run,
            timeout=read_timeout if wait else None,
            wait_for=timeout,
        ),
        policy,
    )
    if not wait:
        return run
    while not run.finished and time.monotonic() < deadline:
        yield Sleep(min(poll_interval, max(0.0, deadline - time.monotonic())))
        found = yield from find_run_program(account, run.id, policy)
        if found is not None:
            run = found
    return run


def find_run_program(
    account: str, run_id: int, policy: RetryPolicy
) -> Program[m.ReconciliationRun | None]:
    """The run ``run_id`` from the account's runs (newest first: stop at older ids)."""
    cursor = None
    while True:
        page = yield from execute(reconciliations_call(account, cursor=cursor), policy)
        for run in page.results:
            if run.id == run_id:
                return run
            if run.id < run_id:
                return None
        if not page.next_cursor:
            return None
        cursor = page.next_cursor


# --- which client method covers which API operation ---------------------------------------

#: (HTTP method, path template) -> the client method that calls it. Path parameters are
#: compared by position, not name. Every operation the server's OpenAPI schema lists must be
#: here (a test checks it against the live ``/api/schema/``).
OPERATIONS: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/health/"): "health",
    ("GET", "/api/v1/accounts/"): "accounts",
    ("GET", "/api/v1/accounts/{account}/orders/"): "orders",
    ("POST", "/api/v1/accounts/{account}/orders/"): "register_order",
    ("GET", "/api/v1/accounts/{account}/orders/{client_order_id}/"): "order",
    ("POST", "/api/v1/accounts/{account}/orders/{client_order_id}/transition/"): "transition",
    ("POST", "/api/v1/accounts/{account}/orders/bulk-transition/"): "bulk_transition",
    ("POST", "/api/v1/accounts/{account}/fills/"): "post_fill",
    ("GET", "/api/v1/accounts/{account}/fills/"): "fills",
    ("GET", "/api/v1/accounts/{account}/paper/trades/"): "paper_trades",
    ("GET", "/api/v1/accounts/{account}/positions/"): "positions",
    ("PUT", "/api/v1/accounts/{account}/positions/{symbol}/"): "set_position",
    ("GET", "/api/v1/accounts/{account}/balances/"): "balances",
    ("PUT", "/api/v1/accounts/{account}/balances/{currency}/"): "set_balance",
    ("GET", "/api/v1/accounts/{account}/reconciliations/"): "reconciliations",
    ("POST", "/api/v1/accounts/{account}/reconciliations/"): "reconcile",
    ("GET", "/api/v1/accounts/{account}/discrepancies/"): "discrepancies",
    ("GET", "/api/v1/accounts/{account}/pnl/"): "pnl",
    ("GET", "/api/v1/accounts/{account}/pnl/history/"): "pnl_history",
    ("GET", "/api/v1/accounts/{account}/state/"): "state",
    ("GET", "/api/v1/exposure/"): "exposure",
    ("GET", "/api/v1/discrepancies/stats/"): "discrepancy_stats",
    ("GET", "/api/v1/killswitch/"): "killswitch",
    ("POST", "/api/v1/killswitch/activate/"): "killswitch_activate",
    ("POST", "/api/v1/killswitch/deactivate/"): "killswitch_deactivate",
    ("GET", "/api/schema/"): "schema",
}


@dataclass
class ClientConfig:
    """What both clients share: where, who, how long, how many retries."""

    base_url: str
    token: str | None = None
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client_order_id_prefix: str = CLIENT_ORDER_ID_PREFIX
    headers: dict[str, str] = field(default_factory=dict)

    def http_kwargs(self) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": "tradingstate-client/0.1"}
        headers.update(self.headers)
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        return {"base_url": self.base_url, "headers": headers, "timeout": self.timeout}


def build_request(http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
    kwargs: dict[str, Any] = {"params": list(call.params) or None}
    if call.body is not None:
        kwargs["content"] = json.dumps(call.body).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    if call.timeout is not None:
        kwargs["timeout"] = httpx.Timeout(http.timeout.connect, read=call.timeout)
    return http.build_request(call.method, call.path, **kwargs)
