"""Which failed attempts are sent again, for both clients.

A call that sets a state (the kill switch, a position, a balance) must not be resent after
an attempt that may have reached the server: if someone else changed that state in between,
the resend would silently undo their change (ABA). It is resent only when its attempt
certainly changed nothing: a connection that could not be made, a 429, the API's own 503.
Replay-safe calls (reads, an order's registration, a fill) are resent after any failure.

The lost answers are real: a loopback proxy in front of the live server lets the server
apply the request, lets someone else change the state, then closes the client's connection
without a byte of the answer.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest
from conftest import Answer, StallingProxy, free_port
from tradingstate_client import (
    AsyncClient,
    Client,
    RetryPolicy,
    TradingStateError,
    TransportError,
    TransportTimeout,
)

OTHER = "other"  # an account no other client test uses; staff may act on every account
FLAVOURS = ["sync", "async"]
# retries on, quickly: a resend, if any, happens well within the test
EAGER = RetryPolicy(max_attempts=3, max_wait=2, backoff_base=0.01)


def invoke(flavour: str, url: str, token: str, name: str, *args, client=None, **kwargs):
    """``Client(url, token).name(*args, **kwargs)``, or the same awaited on an
    ``AsyncClient``."""
    options = {"retry": EAGER, **(client or {})}
    if flavour == "sync":
        with Client(url, token, **options) as ts:
            return getattr(ts, name)(*args, **kwargs)

    async def scenario():
        async with AsyncClient(url, token, **options) as ts:
            return await getattr(ts, name)(*args, **kwargs)

    return asyncio.run(scenario())


@pytest.fixture
def staff(live):
    """A staff client straight to the live server (no proxy); leaves OTHER's switch off."""
    with Client(live.base_url, live.tokens["staff"]) as client:
        yield client
        client.killswitch_deactivate("replay test cleanup", account=OTHER)


# --- an answer lost after the server applied the request, and a change meanwhile --------


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_lost_deactivation_is_not_resent_over_a_halt_made_meanwhile(live, staff, flavour):
    # given: OTHER is halted; the operator's deactivation will be applied, and before its
    # answer arrives someone halts the account again, for a new reason
    staff.killswitch_activate("drill", account=OTHER)
    halts = []

    def halt_again():
        halts.append(staff.killswitch_activate("new emergency", account=OTHER))

    proxy = StallingProxy(live.base_url, stall=1, drop=True, on_answer=halt_again)
    try:
        # when: the answer to the deactivation is lost (the connection closes unanswered)
        with pytest.raises(TransportError) as err:
            invoke(flavour, proxy.url, live.tokens["staff"], "killswitch_deactivate",
                   "drill over", account=OTHER)  # fmt: skip
    finally:
        proxy.close()
    # then: it was sent once, and the failure says it may have been applied
    assert proxy.connections == 1 and err.value.attempts == 1
    assert err.value.maybe_sent is True and "not resent" in str(err.value)
    # and the halt made meanwhile stands (a resend would have lifted it)
    assert halts and halts[0].changed
    assert staff.trading_allowed(OTHER) is False


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_a_lost_set_position_is_not_resent_over_a_fill_made_meanwhile(live, staff, flavour):
    # given: an order on OTHER, submitted; its fill will land between the server applying
    # set_position(5) and the client learning that the answer was lost
    order = staff.register_order(OTHER, symbol="ADA/USDT", side="buy", quantity="1", price="1")
    staff.transition(OTHER, order.client_order_id, "submitted")

    def fill_meanwhile():
        trade_id = "ABA-" + order.client_order_id
        staff.post_fill(OTHER, client_order_id=order.client_order_id, trade_id=trade_id,
                        quantity="1", price="1")  # fmt: skip

    proxy = StallingProxy(live.base_url, stall=1, drop=True, on_answer=fill_meanwhile)
    try:
        # when
        with pytest.raises(TransportError) as err:
            invoke(flavour, proxy.url, live.tokens["staff"], "set_position", OTHER,
                   "ADA/USDT", "5", reason="operator sets 5")  # fmt: skip
    finally:
        proxy.close()
    # then: sent once; the position is 5 and the fill's 1 (a resend would have reset it to 5)
    assert proxy.connections == 1 and err.value.attempts == 1 and err.value.maybe_sent
    (position,) = [p for p in staff.positions(OTHER) if p.symbol == "ADA/USDT"]
    assert position.qty == Decimal("6")
    assert staff.order(OTHER, order.client_order_id).filled_qty == Decimal("1")


# --- a connection that could not be made: nothing was sent, every call is resent ---------


class StartProxyOnRetry(logging.Handler):
    """When the client logs its first retry (it is about to sleep, then resend), start a
    proxy to the live server on the port it could not connect to: the first attempt is
    refused, the resend goes through. Deterministic: no race with the client's clock."""

    def __init__(self, upstream: str, port: int):
        super().__init__()
        self.upstream, self.port = upstream, port
        self.proxies: list[StallingProxy] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not self.proxies and "ConnectError; retry 1" in record.getMessage():
            self.proxies.append(StallingProxy(self.upstream, stall=0, port=self.port))


OPERATIONS = {
    # name: its arguments, given the order the test registered
    "killswitch_deactivate": lambda order: (("all clear",), {"account": OTHER}),
    "set_position": lambda order: ((OTHER, "XRP/USDT", "3"), {}),
    "transition": lambda order: ((OTHER, order.client_order_id, "submitted"), {}),
}


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_a_refused_connection_is_retried_for_every_call(live, staff, flavour, operation):
    # given: nothing listens on the port yet (a server restarting, say); OTHER is halted
    # only for the deactivation
    port = free_port()
    order = staff.register_order(OTHER, symbol="XRP/USDT", side="buy", quantity="1", price="1")
    if operation == "killswitch_deactivate":
        staff.killswitch_activate("drill", account=OTHER)
    args, kwargs = OPERATIONS[operation](order)
    starter = StartProxyOnRetry(live.base_url, port)
    logger = logging.getLogger("tradingstate_client")
    logger.addHandler(starter)
    try:
        # when
        result = invoke(flavour, f"http://127.0.0.1:{port}", live.tokens["staff"], operation,
                        *args, **kwargs)  # fmt: skip
    finally:
        logger.removeHandler(starter)
        for proxy in starter.proxies:
            proxy.close()
    # then: the refused attempt changed nothing, so even a call that is not replay-safe was
    # sent again, once, and applied
    assert [p.connections for p in starter.proxies] == [1]
    if operation == "transition":
        assert result.status == "submitted"
    elif operation == "set_position":
        assert result.qty == Decimal("3")
    else:
        assert result.changed and staff.trading_allowed(OTHER) is True


# --- the outcomes, one by one, against a server of the test's own ------------------------

ORDER = {
    "account": OTHER, "client_order_id": "cl-1", "exchange_order_id": "", "symbol": "BTC/USDT",
    "side": "buy", "type": "limit", "quantity": "1", "price": "1", "filled_qty": "0",
    "remaining_qty": "1", "avg_fill_price": None, "status": "pending", "strategy_id": "",
    "origin": "bot", "version": 1, "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
}  # fmt: skip

OUTCOMES = {
    # outcome: (the answer, whether every call may be resent after it)
    "429": (Answer(429, {"error": "throttled", "detail": "slow down"}), True),
    "api_503": (Answer(503, {"error": "reconciliation_in_progress", "detail": "wait"}), True),
    # a proxy's page: it may have forwarded the request before it failed
    "proxy_503": (Answer(503, "<html>upstream reset</html>", {"Content-Type": "text/html"}),
                  False),
    "dropped": (Answer(drop=True), False),  # the connection closed, no answer
    "timed_out": (Answer(200, ORDER, delay=1.0), False),  # no answer within the timeout
}  # fmt: skip
CALLS = {
    # operation: (its arguments, replay-safe)
    "killswitch_activate": ((("halt",), {"account": OTHER}), False),
    "killswitch_deactivate": ((("resume",), {"account": OTHER}), False),
    "set_position": (((OTHER, "BTC/USDT", "1"), {}), False),
    "set_position (expected_version)": (((OTHER, "BTC/USDT", "1"), {"expected_version": 3}),
                                        False),
    "set_balance": (((OTHER, "USDT"), {"total": "10"}), False),
    "transition": (((OTHER, "cl-1", "submitted"), {}), False),
    "killswitch": (((), {}), True),
    "order": (((OTHER, "cl-1"), {}), True),
    "register_order": (((OTHER,), {"symbol": "BTC/USDT", "side": "buy", "quantity": "1",
                                   "client_order_id": "cl-1"}), True),
    "post_fill": (((OTHER,), {"client_order_id": "cl-1", "trade_id": "T-1", "quantity": "1",
                              "price": "1"}), True),
}  # fmt: skip


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("outcome", sorted(OUTCOMES))
@pytest.mark.parametrize("operation", sorted(CALLS))
def test_a_failed_attempt_is_resent_only_when_that_is_safe(crafted, flavour, outcome, operation):
    # given: a server whose every answer fails the call
    answer, always = OUTCOMES[outcome]
    server = crafted(lambda seen: answer)
    (args, kwargs), replay_safe = CALLS[operation]
    name = operation.split(" ")[0]
    # when
    with pytest.raises(TradingStateError) as err:
        invoke(flavour, server.url, "t", name, *args,
               client={"timeout": 0.3, "retry": RetryPolicy(max_attempts=2, backoff_base=0.01)},
               **kwargs)  # fmt: skip
    # then: sent twice (the budget allows two attempts) when a resend is safe, else once
    resent = always or replay_safe
    assert len(server.requests) == (2 if resent else 1), err.value
    if isinstance(err.value, TransportError):
        assert err.value.attempts == len(server.requests)
        assert err.value.maybe_sent is True
        assert isinstance(err.value, TransportTimeout) == (outcome == "timed_out")
