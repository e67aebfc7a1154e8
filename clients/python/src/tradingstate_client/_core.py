"""The one implementation of request building, response parsing and retries ("sans-IO").

Each operation is built here as a :class:`Call` (method, path, query, JSON body, which
statuses mean success, whether a resend is safe, how to parse the answer). A *program* is a
generator that yields :class:`Send` and :class:`Sleep` actions and returns the parsed result;
:func:`execute` is the program for one call with its retries and time limits,
:func:`reconcile_program` polls a pass to its end. The sync
:class:`~tradingstate_client.Client` and the :class:`~tradingstate_client.AsyncClient` only
perform the actions (send the request and read its body by the :class:`Send`'s deadline,
``time.sleep`` or ``await asyncio.sleep``), so both behave identically by construction.
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
    TransportTimeout,
    UnexpectedStatus,
    error_class,
)
from tradingstate_client.retry import NOT_APPLIED_STATUSES, RetryPolicy, parse_retry_after

logger = logging.getLogger("tradingstate_client")

T = TypeVar("T")
Amount = Decimal | int | str
API = "/api/v1"
CLIENT_ORDER_ID_PREFIX = "ts-"
# the longest a server holds ``POST .../reconciliations/?wait=true``: the upper bound of its
# ``api.reconcile_wait_seconds`` (30 by default), and a margin for the answer to arrive
SERVER_RECONCILE_WAIT_MAX = 300.0
RECONCILE_READ_MARGIN = 10.0
# how long the answer to a waited reconcile request is waited for: the server holds it at
# most SERVER_RECONCILE_WAIT_MAX, whatever ``?timeout=`` says
RECONCILE_READ_TIMEOUT = SERVER_RECONCILE_WAIT_MAX + RECONCILE_READ_MARGIN
# the longest ``reconcile(timeout=)``: the most the server reads as ``?timeout=``; a longer
# one (``inf`` included) is taken as this
RECONCILE_TIMEOUT_MAX = 999_999.999
# the longest time limit a client takes (about 11.6 days); longer ones, ``inf`` included,
# are taken as this (a socket's timeout overflows past about 1e9 seconds)
MAX_SECONDS = 1_000_000.0
# the shortest wait handed to a socket: 0 would make it non-blocking, not "time is up"
MIN_WAIT = 0.001
# httpx errors that leave no doubt the request never reached the server: the connection
# could not be made (or not in time), no pooled connection came free, or the URL's scheme is
# not HTTP. Every other transport error may come after the server received the request.
NOTHING_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True)
class Call(Generic[T]):
    """One HTTP request and how to read its answer."""

    method: str
    path: str  # percent-encoded, from the server root
    parse: Callable[[Any], T]
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    # may it be resent after an attempt that may have reached the server (a lost answer)?
    # True only when a resend cannot undo a change someone else made in between: reads,
    # and writes the server recognises as repeats (an order's client_order_id, a fill's
    # trade_id). Every call is resent after an attempt that certainly changed nothing (429,
    # the API's 503, a connection that could not be made).
    replay_safe: bool = False
    success: frozenset[int] = frozenset({200})
    # statuses whose body is an answer only when it parses (health's own 503 report); any
    # other body with them is an error like any other (a proxy's 503 page)
    answer_statuses: frozenset[int] = frozenset()
    timeout: float | None = None  # overrides the client's per-attempt timeout for this request


@dataclass(frozen=True)
class Send:
    """Send ``call`` and read its answer in full by ``deadline`` (a ``time.monotonic()``
    value, None for no limit); the connection (from the pool, or a new one) by
    ``connect_deadline``. Past the deadline the runner ends the attempt and answers with
    :func:`timed_out`."""

    call: Call[Any]
    attempt: int
    deadline: float | None = None
    connect_deadline: float | None = None


@dataclass(frozen=True)
class Sleep:
    seconds: float


Action = Send | Sleep
Program = Generator[Action, Any, T]


# --- time limits ---------------------------------------------------------------------------


def seconds(value: float | None, name: str) -> float | None:
    """A time limit as given to a client: None (no limit) or more than 0 seconds; longer
    than :data:`MAX_SECONDS` (``inf`` too) is taken as that. NaN is refused."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name}: expected seconds as a number, got {type(value).__name__}")
    if math.isnan(value):
        raise ValueError(f"{name}: NaN is not a number of seconds")
    if value <= 0:
        raise ValueError(f"{name}: must be more than 0 seconds, got {value!r}")
    return min(float(value), MAX_SECONDS)


@dataclass(frozen=True)
class Limits:
    """How many times and for how long a call may try.

    ``timeout``: one attempt, from waiting for a connection to the answer's last byte (not
    each read: a server that trickles its answer is cut off too); None: no limit.
    ``total_timeout``: the whole call, every attempt, every answer's body and the sleeps
    between attempts; None: only what ``retry`` and ``timeout`` imply (at most
    ``retry.max_attempts`` attempts of ``timeout``, and ``retry.max_wait`` of sleeps).
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = 10.0
    total_timeout: float | None = None


def after(start: float, limit: float | None) -> float | None:
    return None if limit is None else start + limit


def earliest(*deadlines: float | None) -> float | None:
    given = [d for d in deadlines if d is not None]
    return min(given) if given else None


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` as a socket wait (at least :data:`MIN_WAIT`)."""
    if deadline is None:
        return None
    return min(max(deadline - time.monotonic(), MIN_WAIT), MAX_SECONDS)


def timed_out(request: httpx.Request, sent: bool) -> httpx.TimeoutException:
    """What a runner answers a :class:`Send` with when its deadline passed: a read timeout
    once the request has begun to go out (it may have been received), else a connect
    timeout (nothing was sent)."""
    if sent:
        return httpx.ReadTimeout(
            "no complete answer within the time limit (timeout or total_timeout)",
            request=request,
        )
    return httpx.ConnectTimeout(
        "the time limit passed before the request was sent", request=request
    )


class Progress:
    """How far one attempt got, from httpcore's ``trace`` extension (both runners install
    it): ``sent`` once the request has begun to go out; ``on_stream`` is called with each
    network stream the attempt opens."""

    def __init__(self, on_stream: Callable[[Any], None] | None = None):
        self.sent = False
        self.on_stream = on_stream

    def event(self, name: str, info: Mapping[str, Any]) -> None:
        if name.endswith(".send_request_headers.started"):
            self.sent = True
        elif self.on_stream is not None and name.endswith(
            (".connect_tcp.complete", ".connect_unix_socket.complete", ".start_tls.complete")
        ):
            self.on_stream(info.get("return_value"))


class Body:
    """An answer's body as it arrives (its raw bytes, as sent). httpx's timeouts bound each
    read, not the whole body: a chunk that arrives past the attempt's deadline ends the
    attempt with a read timeout, unless it completes the declared ``Content-Length``."""

    def __init__(self, response: httpx.Response, deadline: float | None):
        self.response = response
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0
        length = response.headers.get("Content-Length", "")
        self.expected = int(length) if length.isascii() and length.isdigit() else None

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        late = self.deadline is not None and time.monotonic() > self.deadline
        if late and self.size != self.expected:
            raise httpx.ReadTimeout(
                "the answer's body was not complete within the time limit",
                request=self.response.request,
            )

    def answer(self) -> httpx.Response:
        """The answer with its body read (decoded by its ``Content-Encoding`` here: a body
        that fails it raises ``httpx.DecodingError``)."""
        r = self.response
        return httpx.Response(
            r.status_code,
            headers=r.headers,
            content=b"".join(self.chunks),
            request=r.request,
            extensions=r.extensions,
        )


# --- the retry loop --------------------------------------------------------------------------


def execute(call: Call[T], limits: Limits, *, retry_until: float | None = None) -> Program[T]:
    """Send ``call``; retry it as ``limits.retry`` allows; return the parsed answer or raise.

    The runner answers each :class:`Send` with the ``httpx.Response`` (its body read) or the
    ``httpx.RequestError`` it got, and each :class:`Sleep` with None.

    A failed attempt is resent only when that is safe: after an answer that says nothing was
    done (429, the API's own 503) or a transport error that happened before anything was
    sent (:data:`NOTHING_SENT`), for every call; after any other failure, which may have
    come once the server had the request, only for a ``call.replay_safe`` one.

    Time: each attempt ends with its answer's last byte within ``call.timeout``, else
    ``limits.timeout`` (its connection within ``limits.timeout``); the whole call, sleeps
    included, within ``limits.total_timeout``, whichever comes first. A sleep that would
    end past that, or past ``retry_until`` (``time.monotonic()``: no new attempt after it,
    but the attempts are not cut by it), is not taken: the last error is raised at once.
    """
    policy = limits.retry
    deadline = after(time.monotonic(), limits.total_timeout)
    resend_by = earliest(deadline, retry_until)
    per_attempt = call.timeout if call.timeout is not None else limits.timeout
    attempt = 0
    waited = 0.0
    last: tuple[TradingStateError, BaseException | None] | None = None
    while True:
        attempt += 1
        now = time.monotonic()
        if last is not None and deadline is not None and now >= deadline:
            raise last[0] from last[1]  # the sleep overran the call's time: what stopped it
        outcome = yield Send(
            call,
            attempt,
            deadline=earliest(deadline, after(now, per_attempt)),
            connect_deadline=earliest(deadline, after(now, limits.timeout)),
        )
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
            maybe_sent = not isinstance(outcome, NOTHING_SENT)
            delay = policy.next_delay(
                attempt=attempt,
                waited=waited,
                transport_error=True,
                resend_safe=call.replay_safe or not maybe_sent,
            )
            if isinstance(outcome, httpx.UnsupportedProtocol):
                delay = None  # a misconfigured base URL: retrying cannot help
            error: TradingStateError = transport_error(call, outcome, attempt, maybe_sent)
            last = (error, outcome)
            reason = type(outcome).__name__
        else:
            response: httpx.Response = outcome
            status = response.status_code
            if status in call.success:
                return call.parse(_json(response))
            if status in call.answer_statuses:
                with contextlib.suppress(ResponseFormatError):
                    return call.parse(_json(response))
            if not 400 <= status <= 599:
                raise unexpected_status(response, call)
            error = api_error(response, call, attempt)
            delay = policy.next_delay(
                attempt=attempt,
                waited=waited,
                status=status,
                retry_after=error.retry_after,
                resend_safe=call.replay_safe or changed_nothing(error),
            )
            last = (error, None)
            reason = f"{error.status} {error.error}"
        if delay is not None and resend_by is not None and time.monotonic() + delay >= resend_by:
            delay = None  # the call's time is up before the next attempt could start
        if delay is None:
            raise last[0] from last[1]
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


def changed_nothing(error: ApiError) -> bool:
    """Whether the answer says the request was refused before it did anything: 429, or a
    503 with the API's own error body (a proxy's 503 page may come after it forwarded the
    request: it says nothing about what the server did)."""
    if error.status not in NOT_APPLIED_STATUSES:
        return False
    return error.status != 503 or error.error != f"http_{error.status}"


def transport_error(
    call: Call[Any], outcome: httpx.TransportError, attempts: int, maybe_sent: bool
) -> TransportError:
    cls = TransportTimeout if isinstance(outcome, httpx.TimeoutException) else TransportError
    note = ""
    if maybe_sent and not call.replay_safe:
        note = (
            "; the request may have reached the server and been applied: not resent, as a "
            "resend could undo a change made since"
        )
    return cls(
        f"{call.method} {call.path}: {type(outcome).__name__}: {outcome} "
        f"(after {attempts} attempt{'s' if attempts > 1 else ''}){note}",
        method=call.method,
        url=call.path,
        attempts=attempts,
        maybe_sent=maybe_sent,
    )


def unexpected_status(response: httpx.Response, call: Call[Any]) -> UnexpectedStatus:
    """A status outside 4xx/5xx that is not the operation's success (the API never answers
    with one): a redirect, an informational status, another 2xx (e.g. 204 without a body)."""
    status = response.status_code
    location = response.headers.get("Location")
    note = ""
    if 300 <= status <= 399 and status != 304:  # 304 Not Modified is not a redirect
        note = f"; a redirect (not followed) to {location!r}" if location else "; a redirect"
    expected = ", ".join(str(s) for s in sorted(call.success))
    return UnexpectedStatus(
        f"{call.method} {call.path}: unexpected HTTP {status} {response.reason_phrase}"
        f" (the API answers {expected}{note})",
        status=status,
        body=response.text[:2000] if response.content else "",
        location=location,
    )


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
        replay_safe=True,
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
    # replay-safe on client_order_id: a resend returns the registered order (200), or 409
    # if the content differs; it never registers a second order
    return Call(
        "POST",
        account_path(account, "orders"),
        model(m.Order),
        body=body,
        replay_safe=True,
        success=frozenset({200, 201}),
    )


def register_order_program(
    account: str,
    *,
    client_order_id: str | None,
    prefix: str,
    limits: Limits,
    **fields: Any,
) -> Program[m.Order]:
    """Register an order under ``client_order_id``, or under an id made here (once: every
    resend carries it). Every :class:`TradingStateError` it raises carries the id as
    ``client_order_id``."""
    if client_order_id is None:
        client_order_id = new_client_order_id(prefix)
    call = register_order_call(account, client_order_id=client_order_id, **fields)
    return (yield from carrying(execute(call, limits), client_order_id=client_order_id))


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
        replay_safe=True,
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
        replay_safe=True,
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
    # replay-safe on trade_id: the server records a trade once per (account, symbol,
    # trade_id); a resend returns the recorded fill (200), or 409 if it differs
    return Call(
        "POST",
        account_path(account, "fills"),
        model(m.Fill),
        body=body,
        replay_safe=True,
        success=frozenset({200, 201}),
    )


def post_fill_program(
    account: str, *, trade_id: str, limits: Limits, **fields: Any
) -> Program[m.Fill]:
    """Record a fill; every :class:`TradingStateError` it raises carries ``trade_id``."""
    call = post_fill_call(account, trade_id=trade_id, **fields)
    return (yield from carrying(execute(call, limits), trade_id=trade_id))


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
    return Call("GET", account_path(account, "fills"), page_of(m.Fill), params, replay_safe=True)


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
        replay_safe=True,
    )


def positions_call(account: str, *, page_size: int | None = None) -> Call[m.Page[m.Position]]:
    return Call(
        "GET",
        account_path(account, "positions"),
        page_of(m.Position),
        params=query(page_size=page_size),
        replay_safe=True,
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
    # not replay-safe: a resend after a lost answer would set the value again over a
    # change made since (a fill moving the position); with expected_version it would be
    # refused as a version conflict although the first one was applied
    return Call(
        "PUT",
        account_path(account, "positions", seg(symbol, "symbol")),
        model(m.Position),
        body=body,
    )


def balances_call(account: str, *, page_size: int | None = None) -> Call[m.Page[m.Balance]]:
    return Call(
        "GET",
        account_path(account, "balances"),
        page_of(m.Balance),
        params=query(page_size=page_size),
        replay_safe=True,
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
    # not replay-safe, like set_position_call
    return Call(
        "PUT",
        account_path(account, "balances", seg(currency, "currency")),
        model(m.Balance),
        body=body,
    )


def killswitch_call() -> Call[m.KillSwitchStatus]:
    return Call("GET", f"{API}/killswitch/", model(m.KillSwitchStatus), replay_safe=True)


def killswitch_activate_call(
    reason: str, *, account: str | None, cancel_open_orders: bool
) -> Call[m.KillSwitchChange]:
    # not replay-safe: a resend after a lost answer would activate it again after someone
    # deactivated it meanwhile
    body = compact(reason=reason, account=account, cancel_open_orders=cancel_open_orders)
    return Call("POST", f"{API}/killswitch/activate/", model(m.KillSwitchChange), body=body)


def killswitch_deactivate_call(reason: str, *, account: str | None) -> Call[m.KillSwitchChange]:
    # not replay-safe: a resend after a lost answer would lift a halt activated meanwhile
    body = compact(reason=reason, account=account)
    return Call("POST", f"{API}/killswitch/deactivate/", model(m.KillSwitchChange), body=body)


def wait_seconds(timeout: float) -> str:
    """``timeout`` as the server's ``?timeout=`` reads it: more than 0, at most 3 places,
    at most :data:`RECONCILE_TIMEOUT_MAX` (``inf`` too). NaN is refused."""
    if math.isnan(timeout):
        raise ValueError("timeout: NaN is not a number of seconds")
    timeout = min(timeout, RECONCILE_TIMEOUT_MAX)
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
        replay_safe=True,
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
        replay_safe=True,
    )


def health_call() -> Call[m.Health]:
    # the server's 503 carries its health report (status "error"): an answer, not a failure;
    # any other 503 (a proxy's page, the API's error body) is ServiceUnavailable, retried
    # like every read
    return Call(
        "GET",
        f"{API}/health/",
        model(m.Health),
        replay_safe=True,
        answer_statuses=frozenset({503}),
    )


def pnl_call(account: str, *, since: datetime | None = None) -> Call[m.Pnl]:
    return Call(
        "GET", account_path(account, "pnl"), model(m.Pnl), query(since=since), replay_safe=True
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
        "GET",
        account_path(account, "pnl", "history"),
        page_of(m.PnlPoint),
        params,
        replay_safe=True,
    )


def exposure_call() -> Call[m.Exposure]:
    return Call("GET", f"{API}/exposure/", model(m.Exposure), replay_safe=True)


def state_call(account: str, at: datetime) -> Call[m.AccountState]:
    return Call(
        "GET",
        account_path(account, "state"),
        model(m.AccountState),
        query(at=aware(at, "at")),
        replay_safe=True,
    )


def discrepancy_stats_call() -> Call[m.DiscrepancyStats]:
    return Call("GET", f"{API}/discrepancies/stats/", model(m.DiscrepancyStats), replay_safe=True)


def schema_call() -> Call[dict[str, Any]]:
    return Call(
        "GET", "/api/schema/", lambda data: data, params=(("format", "json"),), replay_safe=True
    )


# --- programs made of several calls -------------------------------------------------------


def reconcile_timeout(timeout: float, poll_interval: float) -> tuple[float, float]:
    """``reconcile``'s ``timeout`` and ``poll_interval``, checked before anything is sent:
    NaN is refused; a ``timeout`` longer than :data:`RECONCILE_TIMEOUT_MAX` (``inf`` too) is
    taken as that (the most the server reads as ``?timeout=``)."""
    for name, value in (("timeout", timeout), ("poll_interval", poll_interval)):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{name}: expected seconds as a number, got {type(value).__name__}")
        if math.isnan(value):
            raise ValueError(f"{name}: NaN is not a number of seconds")
    if poll_interval < 0:
        raise ValueError(f"poll_interval: must not be negative, got {poll_interval!r}")
    return min(float(timeout), RECONCILE_TIMEOUT_MAX), float(poll_interval)


def reconcile_program(
    account: str,
    *,
    wait: bool,
    dry_run: bool,
    timeout: float,
    poll_interval: float,
    limits: Limits,
) -> Program[m.ReconciliationRun]:
    """Request a pass; with ``wait``, return it finished, or as it stands after ``timeout``.

    The server runs a waited pass itself and holds the request until the pass ends, or
    ``timeout`` (sent as ``?timeout=``) or its own ``api.reconcile_wait_seconds`` have
    passed, whichever is first (200 when done, 202 if still running). That answer is the
    only place the run's id is given, so it is read even past ``timeout`` (a read timeout
    would leave the pass running and its id unknown; a server that does not know
    ``?timeout=`` holds it for its own wait, at most :data:`SERVER_RECONCILE_WAIT_MAX`), and
    the client's ``total_timeout`` does not cut it (nor is it sent again, after a 429 say,
    once ``timeout`` has passed). Then, while the run is unfinished and
    ``timeout`` has not passed, this polls the account's runs; no poll starts after it.
    """
    timeout, poll_interval = reconcile_timeout(timeout, poll_interval)
    deadline = time.monotonic() + timeout
    request = reconcile_call(
        account,
        wait=wait,
        dry_run=dry_run,
        timeout=RECONCILE_READ_TIMEOUT if wait else None,
        wait_for=timeout,
    )
    if wait:  # not cut by total_timeout, but not sent again after ``timeout`` either
        unbounded = dataclasses.replace(limits, total_timeout=None)
        run = yield from execute(request, unbounded, retry_until=deadline)
    else:
        run = yield from execute(request, limits)
    if not wait:
        return run
    while not run.finished:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        yield Sleep(min(poll_interval, left))
        found = yield from find_run_program(account, run.id, limits, deadline=deadline)
        if found is not None:
            run = found
    return run


def find_run_program(
    account: str, run_id: int, limits: Limits, *, deadline: float | None = None
) -> Program[m.ReconciliationRun | None]:
    """The run ``run_id`` from the account's runs (newest first: stop at older ids). The
    first page is always read; no further page is asked for once ``deadline`` has passed
    (None: read on), and a page cursor seen before ends it with ResponseFormatError."""
    call = reconciliations_call(account)
    pages = Pages(call)
    while True:
        page = yield from execute(call, limits)
        for run in page.results:
            if run.id == run_id:
                return run
            if run.id < run_id:
                return None
        next_call = pages.after(page)
        if next_call is None or (deadline is not None and time.monotonic() >= deadline):
            return None
        call = next_call


class Pages:
    """The calls for a listing's pages, one after the other, from its first ``call``. A
    ``next`` cursor seen before is a :class:`ResponseFormatError`: a server (or a proxy's
    cache) that links back to a page already read would otherwise be read forever."""

    def __init__(self, call: Call[m.Page[T]]):
        self.call = call
        self.seen: set[str] = set()

    def after(self, page: m.Page[Any]) -> Call[m.Page[T]] | None:
        """The call for the page after ``page``; None after the last page."""
        cursor = page.next_cursor
        if not cursor:
            return None
        if cursor in self.seen:
            raise ResponseFormatError(
                f"{self.call.method} {self.call.path}: the server links back to a page "
                f"already read (cursor {cursor[:100]!r}): the listing does not end"
            )
        self.seen.add(cursor)
        return with_cursor(self.call, cursor)


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
    timeout: float | None = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    client_order_id_prefix: str = CLIENT_ORDER_ID_PREFIX
    headers: dict[str, str] = field(default_factory=dict)
    total_timeout: float | None = None

    def __post_init__(self) -> None:
        self.timeout = seconds(self.timeout, "timeout")
        self.total_timeout = seconds(self.total_timeout, "total_timeout")

    @property
    def limits(self) -> Limits:
        return Limits(retry=self.retry, timeout=self.timeout, total_timeout=self.total_timeout)

    def http_kwargs(self) -> dict[str, Any]:
        headers = {"Accept": "application/json", "User-Agent": "tradingstate-client/0.1"}
        headers.update(self.headers)
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        # each request carries its own timeouts (build_request); this is httpx's default
        return {"base_url": self.base_url, "headers": headers, "timeout": self.timeout}


def build_request(http: httpx.Client | httpx.AsyncClient, send: Send) -> httpx.Request:
    """The request for ``send``. Every wait httpx makes for it (a pooled connection, the
    connection, each write and each read) ends by the attempt's deadlines; the runner ends
    a trickle of bytes that each arrive in time but never finish."""
    call = send.call
    wait = remaining(send.deadline)
    connect = remaining(send.connect_deadline)
    kwargs: dict[str, Any] = {
        "params": list(call.params) or None,
        "timeout": httpx.Timeout(connect=connect, read=wait, write=wait, pool=connect),
    }
    if call.body is not None:
        kwargs["content"] = json.dumps(call.body).encode()
        kwargs["headers"] = {"Content-Type": "application/json"}
    return http.build_request(call.method, call.path, **kwargs)
