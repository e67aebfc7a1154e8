"""Time limits, for both clients, against a loopback server of the test's own that answers
slowly on purpose: ``timeout`` bounds one attempt's whole exchange (httpx's own timeouts
bound each read, so a server trickling a byte at a time held a call for as long as it liked),
and ``total_timeout`` bounds a whole call, its retries and the sleeps between them."""

from __future__ import annotations

import asyncio
import gzip
import json
import time

import pytest
from conftest import Answer
from tradingstate_client import (
    NO_RETRY,
    AsyncClient,
    Client,
    RetryPolicy,
    ServiceUnavailable,
    TransportTimeout,
)

FLAVOURS = ["sync", "async"]
KILLSWITCH = {"active": False, "reason": "", "activated_by": "", "activated_at": None,
              "halted_accounts": []}  # fmt: skip
# a kill switch status sent one byte every 0.25 s: about 25 s in all, each read quick
TRICKLE = Answer(200, KILLSWITCH, drip=0.25)


def timed(flavour: str, url: str, name: str, *args, client: dict, **kwargs):
    """``(result or exception, seconds)`` of ``Client(url, **client).name(...)`` (or the
    ``AsyncClient``'s, awaited)."""
    started = time.monotonic()
    try:
        if flavour == "sync":
            with Client(url, "t", **client) as ts:
                result = getattr(ts, name)(*args, **kwargs)
        else:

            async def scenario():
                async with AsyncClient(url, "t", **client) as ts:
                    return await getattr(ts, name)(*args, **kwargs)

            result = asyncio.run(scenario())
    except Exception as exc:  # the test asserts what it is
        result = exc
    return result, time.monotonic() - started


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_fail_closed_check_ends_at_its_timeout_against_a_trickling_server(crafted, flavour):
    # given: a server that sends the kill switch's state a byte at a time
    server = crafted(lambda seen: TRICKLE)
    # when: a bot asks whether it may trade, with one attempt of at most 1 s
    result, elapsed = timed(flavour, server.url, "trading_allowed", "paper-demo",
                            client={"timeout": 1.0, "retry": NO_RETRY})  # fmt: skip
    # then: no answer (it fails closed, raising), after about a second, not 25
    assert isinstance(result, TransportTimeout), result
    assert result.attempts == 1 and result.maybe_sent is True
    assert 0.9 <= elapsed < 3.0  # margin for a loaded machine; uncut it takes 25 s


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_trickled_status_line_and_headers_are_cut_off_too(crafted, flavour):
    # given: even the status line and headers come a byte at a time
    server = crafted(lambda seen: Answer(200, KILLSWITCH, drip=0.25, drip_head=True))
    # when
    result, elapsed = timed(flavour, server.url, "killswitch",
                            client={"timeout": 1.0, "retry": NO_RETRY})  # fmt: skip
    # then
    assert isinstance(result, TransportTimeout), result
    assert elapsed < 3.0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_total_timeout_bounds_the_retries_of_a_call(crafted, flavour):
    # given: every attempt trickles; retries are on and would go on for 10 attempts
    server = crafted(lambda seen: TRICKLE)
    patient = RetryPolicy(max_attempts=10, max_wait=30, backoff_base=0.05)
    # when
    result, elapsed = timed(flavour, server.url, "trading_allowed", "paper-demo",
                            client={"timeout": 1.0, "total_timeout": 2.5,
                                    "retry": patient})  # fmt: skip
    # then: the read was retried (a read is replay-safe), within 2.5 s in all
    assert isinstance(result, TransportTimeout), result
    assert result.attempts >= 2 and len(server.requests) == result.attempts
    assert 2.4 <= elapsed < 4.5


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_retry_after_past_the_total_timeout_ends_the_call_at_once(crafted, flavour):
    # given: the server asks to come back in 5 s; the call may take 2 in all
    busy = Answer(503, {"error": "service_unavailable", "detail": "busy"}, {"Retry-After": "5"})
    server = crafted(lambda seen: busy)
    # when
    result, elapsed = timed(flavour, server.url, "killswitch",
                            client={"total_timeout": 2.0})  # fmt: skip
    # then: not slept on (it could not resend in time), and not resent early
    assert isinstance(result, ServiceUnavailable), result
    assert result.attempts == 1 and result.retry_after == 5 and elapsed < 1.0


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_answer_that_arrives_in_time_is_read_whole(crafted, flavour):
    # given: a gzip-encoded answer, sent in pieces within the time limit
    body = gzip.compress(json.dumps(KILLSWITCH).encode())
    server = crafted(lambda seen: Answer(200, body, {"Content-Encoding": "gzip"}, drip=0.005))
    # when
    result, _ = timed(flavour, server.url, "killswitch", client={"timeout": 5.0})
    # then: decoded and parsed as usual
    assert not isinstance(result, Exception), result
    assert result.active is False and result.raw == KILLSWITCH


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": float("nan")}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": -1}, ValueError),
        ({"total_timeout": float("nan")}, ValueError),
        ({"total_timeout": 0}, ValueError),
        ({"timeout": "10"}, TypeError),
    ],
)
def test_time_limits_that_are_not_seconds_are_refused(options, error):
    with pytest.raises(error, match="timeout"):
        Client("http://127.0.0.1:9", "t", **options)
    with pytest.raises(error, match="timeout"):
        AsyncClient("http://127.0.0.1:9", "t", **options)


def test_limits_longer_than_a_socket_takes_are_capped():
    # a socket's timeout overflows past about 1e9 s: inf and huge values mean "very long"
    with Client("http://127.0.0.1:9", "t", timeout=float("inf"), total_timeout=1e12) as ts:
        assert ts.config.timeout == ts.config.total_timeout == 1_000_000
    with Client("http://127.0.0.1:9", "t", timeout=None) as ts:
        assert ts.config.timeout is None and ts.config.total_timeout is None
