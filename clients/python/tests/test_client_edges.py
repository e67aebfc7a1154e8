"""Edges of the wire, for both clients: answers tradingstate never gives (a proxy's page, a
broken body, odd ``Retry-After`` values, a slow waited pass) from a loopback server of the
test's own, and ids and amounts at the edge of what the live server takes."""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal

import httpx
import pytest
import tradingstate_client as tc
from conftest import Answer
from tradingstate_client import (
    NO_RETRY,
    ApiError,
    AsyncClient,
    Client,
    NotFound,
    RateLimited,
    ResponseFormatError,
    RetryPolicy,
    ServiceUnavailable,
    TradingStateError,
    TransportTimeout,
    UnexpectedStatus,
    ValidationError,
)
from tradingstate_client._core import wait_seconds

ACCOUNT = "paper-demo"
SPARE = "client-spare"
FLAVOURS = ["sync", "async"]
QUICK = RetryPolicy(max_attempts=2, max_wait=1, backoff_base=0.01)

ORDER = {
    "account": ACCOUNT, "client_order_id": "cl-1", "exchange_order_id": "", "symbol": "BTC/USDT",
    "side": "buy", "type": "limit", "quantity": "1", "price": "1", "filled_qty": "0",
    "remaining_qty": "1", "avg_fill_price": None, "status": "pending", "strategy_id": "",
    "origin": "bot", "version": 1, "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
}  # fmt: skip
RUN = {
    "id": 42, "account": ACCOUNT, "trigger": "api", "status": "running", "dry_run": False,
    "requested_by": "bot", "created_at": "2026-03-01T12:00:00Z",
    "started_at": "2026-03-01T12:00:00Z", "finished_at": None, "duration_ms": None,
    "orders_synced": 0, "positions_synced": 0, "balances_synced": 0, "discrepancies_found": 0,
    "repairs_applied": 0, "repairs_deferred": 0, "error": "",
}  # fmt: skip
EMPTY_PAGE = {"next": None, "previous": None, "results": []}
NOT_FOUND = Answer(404, {"error": "not_found", "detail": "No such thing.", "fields": {}})


def invoke(flavour: str, url: str, name: str, *args, client: dict | None = None, **kwargs):
    """``Client(url).name(*args, **kwargs)``, or the same awaited on an ``AsyncClient``."""
    options = {"token": "t", **(client or {})}
    if flavour == "sync":
        with Client(url, **options) as ts:
            return getattr(ts, name)(*args, **kwargs)

    async def scenario():
        async with AsyncClient(url, **options) as ts:
            return await getattr(ts, name)(*args, **kwargs)

    return asyncio.run(scenario())


# --- a failed idempotent write names the key to resend it with ----------------------------

FAILURES = {
    # outcome: (the answer, the exception it must become)
    "refused": (Answer(400, {"error": "validation_error", "detail": "no", "fields": {}}),
                ValidationError),
    "proxy_503": (Answer(503, "<html>busy</html>", {"Content-Type": "text/html"}),
                  ServiceUnavailable),
    "not_json": (Answer(201, "<html>hello</html>"), ResponseFormatError),
    "broken_gzip": (Answer(201, b"not gzip at all", {"Content-Encoding": "gzip"}),
                    ResponseFormatError),
    "timeout": (Answer(201, ORDER, delay=1.0), TransportTimeout),
}  # fmt: skip
WRITES = {
    # operation: (its arguments, the idempotency key it carries)
    "register_order (generated id)": (
        "register_order", dict(symbol="BTC/USDT", side="buy", quantity="1"), "client_order_id"),
    "register_order (given id)": (
        "register_order", dict(symbol="BTC/USDT", side="buy", quantity="1",
                               client_order_id="cl-given-1"), "client_order_id"),
    "post_fill": (
        "post_fill", dict(client_order_id="cl-1", trade_id="T-1", quantity="1", price="1"),
        "trade_id"),
}  # fmt: skip


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("outcome", sorted(FAILURES))
@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_failure_of_an_idempotent_write_carries_its_key(crafted, flavour, outcome, write):
    # given: a server whose every answer fails the call
    answer, expected = FAILURES[outcome]
    server = crafted(lambda seen: answer)
    name, kwargs, key = WRITES[write]
    # when
    with pytest.raises(TradingStateError) as err:
        invoke(flavour, server.url, name, ACCOUNT, client={"timeout": 0.3, "retry": QUICK},
               **kwargs)  # fmt: skip
    # then: the exception names the key every attempt was sent with, to resend it later
    assert type(err.value) is expected
    sent = {seen.json()[key] for seen in server.requests}
    assert len(sent) == 1 and server.requests
    assert getattr(err.value, key) == sent.pop()
    if "given" in write:
        assert err.value.client_order_id == "cl-given-1"


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_empty_client_order_id_is_refused_not_replaced(crafted, flavour):
    server = crafted(lambda seen: Answer(201, ORDER))
    with pytest.raises(ValueError, match="client_order_id"):
        invoke(flavour, server.url, "register_order", ACCOUNT, symbol="BTC/USDT", side="buy",
               quantity="1", client_order_id="")  # fmt: skip
    assert server.requests == []


# --- path segments ------------------------------------------------------------------------

SEGMENTS = {
    # operation: (the arguments for a segment value v, the path it must reach)
    "order": (lambda v: ((ACCOUNT, v), {}), "/api/v1/accounts/paper-demo/orders/{}/"),
    "transition": (
        lambda v: ((ACCOUNT, v, "submitted"), {}),
        "/api/v1/accounts/paper-demo/orders/{}/transition/",
    ),
    "set_position": (
        lambda v: ((ACCOUNT, v, "1"), {}),
        "/api/v1/accounts/paper-demo/positions/{}/",
    ),
    "set_balance": (
        lambda v: ((ACCOUNT, v), {"total": "1"}),
        "/api/v1/accounts/paper-demo/balances/{}/",
    ),
    "orders": (lambda v: ((v,), {}), "/api/v1/accounts/{}/orders/"),
}
FIELD_OF = {
    "order": "client_order_id",
    "transition": "client_order_id",
    "set_position": "symbol",
    "set_balance": "currency",
    "orders": "account",
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("value", "encoded"), [(".", "%2E"), ("..", "%2E%2E"), ("a.b", "a.b")])
@pytest.mark.parametrize("operation", sorted(SEGMENTS))
def test_dot_segments_reach_their_own_endpoint(crafted, flavour, value, encoded, operation):
    # given
    server = crafted(lambda seen: NOT_FOUND)
    arguments, template = SEGMENTS[operation]
    args, kwargs = arguments(value)
    # when
    with pytest.raises(NotFound):
        invoke(flavour, server.url, operation, *args, client={"retry": NO_RETRY}, **kwargs)
    # then: not collapsed into the parent path by URL normalisation
    (seen,) = server.requests
    assert seen.path.split("?")[0] == template.format(encoded)


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("operation", sorted(SEGMENTS))
def test_an_empty_path_segment_names_its_field(crafted, flavour, operation):
    server = crafted(lambda seen: NOT_FOUND)
    arguments, _ = SEGMENTS[operation]
    args, kwargs = arguments("")
    with pytest.raises(ValueError, match=rf"^{FIELD_OF[operation]}: "):
        invoke(flavour, server.url, operation, *args, **kwargs)
    assert server.requests == []


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_orders_with_dot_ids_round_trip_on_the_live_server(live, flavour):
    async def scenario():
        async with AsyncClient(live.base_url, live.token) as ts:
            return [await ts.order(SPARE, i) for i in (".", "..")]

    # given: orders whose ids are "." and ".." (valid ids)
    with Client(live.base_url, live.token) as ts:
        for cid in (".", ".."):
            ts.register_order(SPARE, symbol="DOT/USDT", side="buy", quantity="1", price="1",
                              client_order_id=cid)  # fmt: skip
        # when
        if flavour == "sync":
            found = [ts.order(SPARE, i) for i in (".", "..")]
        else:
            found = asyncio.run(scenario())
    # then
    assert [o.client_order_id for o in found] == [".", ".."]


# --- amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_decimals_with_trailing_zeros_are_accepted_by_the_live_server(live, flavour):
    # given: amounts from Decimal arithmetic, with more than 18 places, all trailing zeros
    # (the demo account, which the async lifecycle test fills too: client-spare's positions
    # are test_client_orders')
    quantity = Decimal("0.001000000000") * Decimal("1.000000000")  # 21 places
    price = Decimal("60000.0000000000") * Decimal("1.0000000000")  # 20 places
    assert len(format(quantity, "f").split(".")[1]) > 18
    with Client(live.base_url, live.token) as ts:
        order = invoke(flavour, live.base_url, "register_order", ACCOUNT, symbol="BTC/USDT",
                       side="buy", quantity=quantity, price=price,
                       client={"token": live.token})  # fmt: skip
        ts.transition(ACCOUNT, order.client_order_id, "submitted")
    # when: and a fill with them
    fill = invoke(flavour, live.base_url, "post_fill", ACCOUNT,
                  client_order_id=order.client_order_id, trade_id="TZ-" + order.client_order_id,
                  quantity=quantity / 2, price=price, fee=Decimal("0.01000000000000000000"),
                  fee_currency="USDT", client={"token": live.token})  # fmt: skip
    # then
    assert order.quantity == Decimal("0.001") and order.price == Decimal("60000")
    assert fill.quantity == Decimal("0.0005") and fill.fee == Decimal("0.01")


# --- Retry-After --------------------------------------------------------------------------


def first_then(first: Answer, then: Answer):
    answers = iter([first])
    return lambda seen: next(answers, then)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_fractional_retry_after_is_waited_for_in_full(crafted, flavour):
    # given: a 503 asking for 1.5 s
    busy = Answer(503, {"error": "service_unavailable", "detail": "busy"}, {"Retry-After": "1.5"})
    server = crafted(first_then(busy, Answer(200, EMPTY_PAGE)))
    # when
    page = invoke(flavour, server.url, "orders", ACCOUNT)
    # then: the resend came no earlier than asked (rounded up to whole seconds)
    assert page.results == [] and len(server.requests) == 2
    assert server.requests[1].at - server.requests[0].at >= 1.5


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("value", ["²", "\u0661", "\uff15", "5" * 5000, "1e3", "-1", "inf", "0x10"])
def test_a_malformed_retry_after_is_ignored_not_a_crash(crafted, flavour, value):
    # given: a header the server put on the wire as UTF-8
    throttled = Answer(429, {"error": "throttled", "detail": "slow"},
                       {"Retry-After": value.encode().decode("latin-1")})  # fmt: skip
    server = crafted(lambda seen: throttled)
    # when / then: the API's error, with no time to wait
    with pytest.raises(RateLimited) as err:
        invoke(flavour, server.url, "orders", ACCOUNT, client={"retry": NO_RETRY})
    assert err.value.retry_after is None


# --- undecodable bodies -------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_undecodable_body_is_a_response_format_error(crafted, flavour, encoding):
    server = crafted(
        lambda seen: Answer(200, b"\x00not compressed", {"Content-Encoding": encoding})
    )
    with pytest.raises(ResponseFormatError) as err:
        invoke(flavour, server.url, "orders", ACCOUNT, client={"retry": QUICK})
    assert isinstance(err.value.__cause__, httpx.DecodingError)


# --- reconcile(wait=True, timeout=...) ----------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reconcile_shorter_than_the_servers_wait_still_returns_the_run(crafted, flavour):
    # given: the server holds ?wait=true for 1.5 s (its reconcile_wait_seconds), then
    # answers 202 with the pass still running
    def respond(seen):
        if seen.method == "POST":
            return Answer(202, RUN, delay=1.5)
        return Answer(200, {**EMPTY_PAGE, "results": [{**RUN, "status": "completed"}]})

    server = crafted(respond)
    # when: the caller gives it half a second
    run = invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=0.5, poll_interval=0.1)
    # then: the run as it stands, its id not lost to a read timeout
    assert run.id == 42 and run.status == "running" and not run.finished
    # and the server was told how long the caller waits (it holds the request no longer)
    assert "wait=true" in server.requests[0].path
    assert "timeout=0.5" in server.requests[0].path


@pytest.mark.parametrize(
    ("timeout", "sent"),
    [
        (0.5, "0.5"),
        (60.0, "60"),
        (2.0001, "2.001"),  # rounded up: never shorter than asked
        (0.0, "0.001"),  # the server refuses 0
        (-3.0, "0.001"),
        (1e12, "999999.999"),  # the server reads at most 6 integer digits
        (float("inf"), "999999.999"),  # capped like any other wait longer than that
    ],
)
def test_the_wait_sent_is_what_the_server_reads(timeout, sent):
    assert wait_seconds(timeout) == sent
    assert re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,3})?", sent) and Decimal(sent) > 0


def test_a_nan_wait_is_refused():
    with pytest.raises(ValueError, match="NaN"):
        wait_seconds(float("nan"))


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("argument", ["timeout", "poll_interval"])
def test_reconcile_with_a_nan_time_is_refused_before_anything_is_sent(crafted, flavour, argument):
    # given
    server = crafted(lambda seen: Answer(202, RUN))
    # when / then: refused before the server could start a pass (its id would be lost)
    with pytest.raises(ValueError, match=argument):
        invoke(flavour, server.url, "reconcile", ACCOUNT, **{argument: float("nan")})
    assert server.requests == []


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("timeout", [float("inf"), 1e12])
def test_reconcile_without_a_practical_limit_waits_until_the_pass_ends(crafted, flavour, timeout):
    # given: the server answers at once that the pass runs; a poll finds it completed
    def respond(seen):
        if seen.method == "POST":
            return Answer(202, RUN)
        return Answer(200, {**EMPTY_PAGE, "results": [{**RUN, "status": "completed"}]})

    server = crafted(respond)
    # when
    run = invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=timeout, poll_interval=0.05)
    # then: the same in both clients, whether "forever" is inf or a huge number: capped at
    # the most the server reads as ?timeout=
    assert run.id == 42 and run.status == "completed"
    assert "timeout=999999.999" in server.requests[0].path


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reconcile_stops_paging_through_the_runs_at_its_timeout(crafted, flavour):
    # given: the pass runs; the account's runs go on page after page, each with a new
    # cursor, none of them the pass's run or an older one
    first_poll: list[float] = []

    def respond(seen):
        if seen.method == "POST":
            return Answer(202, RUN)
        first_poll.append(first_poll[0] if first_poll else time.monotonic())
        if time.monotonic() - first_poll[0] > 6:  # guard: a client that never stops
            return Answer(200, EMPTY_PAGE)
        link = f"http://127.0.0.1/?cursor=c{len(first_poll)}"
        return Answer(200, {**EMPTY_PAGE, "next": link, "results": [{**RUN, "id": 100}]})

    server = crafted(respond)
    # when
    started = time.monotonic()
    run = invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=1, poll_interval=0.1)
    # then: the run as it stands after the timeout, not after paging on and on
    assert run.id == 42 and not run.finished
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reconcile_polling_runs_that_link_back_to_a_page_is_an_error(crafted, flavour):
    def respond(seen):
        if seen.method == "POST":
            return Answer(202, RUN)
        if len(server.requests) > 50:  # guard: a client that never stops
            return Answer(200, EMPTY_PAGE)
        link = "http://127.0.0.1/?cursor=same"
        return Answer(200, {**EMPTY_PAGE, "next": link, "results": [{**RUN, "id": 100}]})

    server = crafted(respond)
    with pytest.raises(ResponseFormatError, match="already read"):
        invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=5, poll_interval=0.05)
    assert len(server.requests) == 3  # the POST, the first page, the page again


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(("timeout", "resent"), [(5.0, True), (0.5, False)])
def test_a_throttled_reconcile_is_sent_again_only_within_its_timeout(
    crafted, flavour, timeout, resent
):
    # given: the first request is throttled for a second (a 429 changes nothing)
    throttled = Answer(429, {"error": "throttled", "detail": "slow"}, {"Retry-After": "1"})

    def respond(seen):
        if seen.method == "POST":
            return throttled if len(server.requests) == 1 else Answer(202, RUN)
        return Answer(200, {**EMPTY_PAGE, "results": [{**RUN, "status": "completed"}]})

    server = crafted(respond)
    # when / then: resent after the wait when reconcile's timeout leaves time for it, else
    # the 429 at once (a pass started after the caller's timeout would surprise it)
    if resent:
        run = invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=timeout,
                     poll_interval=0.05)  # fmt: skip
        assert run.status == "completed"
        assert [r.method for r in server.requests] == ["POST", "POST", "GET"]
    else:
        with pytest.raises(RateLimited) as err:
            invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=timeout)
        assert err.value.attempts == 1 and len(server.requests) == 1


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_reconcile_polls_a_still_running_pass_until_it_finishes(crafted, flavour):
    polls = []

    def respond(seen):
        if seen.method == "POST":
            return Answer(202, RUN, delay=0.2)
        polls.append(seen)
        status = "completed" if len(polls) >= 3 else "running"
        return Answer(200, {**EMPTY_PAGE, "results": [{**RUN, "status": status}]})

    server = crafted(respond)
    run = invoke(flavour, server.url, "reconcile", ACCOUNT, timeout=10, poll_interval=0.05)
    assert run.id == 42 and run.status == "completed" and len(polls) == 3
    assert len(server.requests) == 4


# --- health -------------------------------------------------------------------------------

HEALTH_503 = {"status": "error", "time": "2026-03-01T12:00:00Z", "db": "error", "worker": None}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize(
    "answer",
    [
        Answer(503, "<html>Service Unavailable</html>", {"Content-Type": "text/html"}),
        Answer(503),
        Answer(503, {"error": "service_unavailable", "detail": "down", "fields": {}}),
    ],
    ids=["html", "empty", "api-error"],
)
def test_health_behind_a_503_that_is_not_a_health_report_is_retried_then_raised(
    crafted, flavour, answer
):
    server = crafted(lambda seen: answer)
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01)
    with pytest.raises(ServiceUnavailable) as err:
        invoke(flavour, server.url, "health", client={"retry": policy})
    assert err.value.attempts == 3 and len(server.requests) == 3


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_servers_own_503_health_report_is_returned(crafted, flavour):
    server = crafted(lambda seen: Answer(503, HEALTH_503))
    health = invoke(flavour, server.url, "health")
    assert health.status == "error" and health.db == "error" and len(server.requests) == 1


# --- exposure -----------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_live_exposure_breakdowns_are_typed(live, flavour):
    exposure = invoke(flavour, live.base_url, "exposure", client={"token": live.token})
    shares = [
        share
        for asset in exposure.assets
        for share in [*asset.by_account.values(), *asset.by_venue.values()]
    ]
    assert shares, "the demo account holds nothing"
    for share in shares:
        assert isinstance(share, tc.ExposureShare) and isinstance(share.net_qty, Decimal)
        assert share.net_notional is None or isinstance(share.net_notional, Decimal)
        assert share.gross_notional is None or isinstance(share.gross_notional, Decimal)
        assert isinstance(share.mark_stale, bool) and isinstance(share.venue, str)


# --- listings that do not end -------------------------------------------------------------

POSITION = {"symbol": "BTC/USDT", "qty": "1", "entry_price": None, "version": 1,
            "updated_at": "2026-03-01T12:00:00Z"}  # fmt: skip


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("cycle", [["A"], ["A", "B"]], ids=["same", "back"])
@pytest.mark.parametrize("operation", ["positions", "iter_orders"])
def test_a_listing_that_links_back_to_a_page_already_read_is_an_error(
    crafted, flavour, cycle, operation
):
    # given: each page links to the next by its cursor, then back to one already read
    def respond(seen):
        if len(server.requests) > 50:  # guard: a client that never stops
            return Answer(200, EMPTY_PAGE)
        cursor = cycle[(len(server.requests) - 1) % len(cycle)]
        result = POSITION if operation == "positions" else ORDER
        link = f"http://127.0.0.1/?cursor={cursor}"
        return Answer(200, {**EMPTY_PAGE, "next": link, "results": [result]})

    server = crafted(respond)

    async def every_order():
        async with AsyncClient(server.url, "t") as ts:
            return [o async for o in ts.iter_orders(ACCOUNT)]

    # when / then: an error, once the cycle shows, not a listing read forever
    with pytest.raises(ResponseFormatError, match="already read"):
        if operation == "positions":
            invoke(flavour, server.url, "positions", ACCOUNT)
        elif flavour == "sync":
            with Client(server.url, "t") as ts:
                list(ts.iter_orders(ACCOUNT))
        else:
            asyncio.run(every_order())
    assert len(server.requests) == len(cycle) + 1


# --- statuses the API never answers with --------------------------------------------------

UNEXPECTED = {
    "301": Answer(301, b"", {"Location": "https://elsewhere.example/api/v1/"}),
    "302": Answer(302, b"", {"Location": "/login/?next=/api/v1/"}),
    "307": Answer(307, b"", {"Location": "http://127.0.0.1:9/"}),
    "304": Answer(304),
    "204": Answer(204),
    "202": Answer(202, ORDER),  # a success, but not this operation's
    "600": Answer(600, b"odd"),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("status", sorted(UNEXPECTED))
@pytest.mark.parametrize("operation", ["killswitch", "register_order"])
def test_a_status_outside_4xx_and_5xx_is_an_unexpected_status(crafted, flavour, status, operation):
    # given
    answer = UNEXPECTED[status]
    server = crafted(lambda seen: answer)
    args = {"killswitch": {}, "register_order": dict(symbol="BTC/USDT", side="buy", quantity="1")}
    # when
    with pytest.raises(UnexpectedStatus) as err:
        invoke(flavour, server.url, operation, *([ACCOUNT] if args[operation] else []),
               client={"retry": QUICK}, **args[operation])  # fmt: skip
    # then: a ResponseFormatError naming the status (and a redirect's target), not the
    # ServerError of a 5xx; not retried (sending again cannot change the answer)
    assert isinstance(err.value, ResponseFormatError) and not isinstance(err.value, ApiError)
    assert err.value.status == answer.status and str(answer.status) in str(err.value)
    assert err.value.location == answer.headers.get("Location")
    if err.value.location:
        assert err.value.location in str(err.value)
    assert len(server.requests) == 1
