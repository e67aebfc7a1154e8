"""Retries against a live server: 429 with Retry-After, 503 during restart recovery, an
answer lost to a timeout; the bounded budget; no resend of a call that is not replay-safe
after its answer was lost."""

from __future__ import annotations

import logging
import threading
import time
from decimal import Decimal

import pytest
from tradingstate_client import (
    NO_RETRY,
    Client,
    RateLimited,
    RecoveryInProgress,
    RetryPolicy,
    ServiceUnavailable,
    TransitionNotAllowed,
    TransportError,
)

ACCOUNT = "paper-demo"
SPARE = "client-spare"


def fill_the_window(client: Client, account: str = ACCOUNT) -> RateLimited:
    """Send reads without retries until the throttle refuses one."""
    for _ in range(50):
        try:
            client.orders(account, page_size=1)
        except RateLimited as exc:
            return exc
    raise AssertionError("never throttled at 4/s")


def test_a_burst_over_the_rate_limit_succeeds_by_honouring_retry_after(throttled, caplog):
    # given: a bot limited to 4 requests a second
    caplog.set_level(logging.WARNING, logger="tradingstate_client")
    with Client(throttled.base_url, throttled.tokens["throttled"]) as ts:
        # when: 12 reads as fast as the client may
        started = time.monotonic()
        pages = [ts.orders(ACCOUNT, page_size=1) for _ in range(12)]
        elapsed = time.monotonic() - started
    # then: every read answered, after waits the server asked for
    assert len(pages) == 12
    retries = [r for r in caplog.records if "429 throttled; retry" in r.getMessage()]
    assert retries, "no request was throttled"
    assert elapsed >= 1.0  # 12 requests at 4/s cannot fit in one window


def test_429_raises_with_the_api_body_when_retries_are_off(throttled):
    with Client(throttled.base_url, throttled.tokens["throttled"], retry=NO_RETRY) as ts:
        err = fill_the_window(ts)
    assert err.status == 429 and err.error == "throttled" and err.detail
    assert err.retry_after is not None and err.retry_after >= 1
    assert err.attempts == 1


def test_a_retry_after_beyond_the_budget_is_not_shortened(throttled):
    # given: a budget of half a second; the server asks for at least one second
    policy = RetryPolicy(max_attempts=10, max_wait=0.5)
    with Client(throttled.base_url, throttled.tokens["throttled"], retry=policy) as ts:
        started = time.monotonic()
        err = fill_the_window(ts)
    # then: given up at once, not slept early and refused again
    assert err.attempts == 1 and err.retry_after >= 1
    assert time.monotonic() - started < 5


def test_a_throttled_transition_is_resent_after_retry_after(throttled, live):
    # given: an order; its illegal transition changes nothing when it does get through
    with Client(live.base_url, live.token) as plain:
        order = plain.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1", price="1")
    with (
        Client(throttled.base_url, throttled.tokens["alpha"]) as ts,
        Client(throttled.base_url, throttled.tokens["alpha"], retry=NO_RETRY) as filler,
    ):
        for _ in range(10):
            # when: the window is full and a transition is sent
            fill_the_window(filler, SPARE)
            with pytest.raises(TransitionNotAllowed) as err:
                ts.transition(SPARE, order.client_order_id, "filled")
            # then: a 429 changed nothing, so it was resent after the wait the server asked
            # for (although a transition is not replay-safe), and reached the server
            if err.value.attempts > 1:
                break
            # the window rolled over before it arrived; try again
        else:
            pytest.fail("the transition was never throttled")


def set_recovering(live, account: str, on: bool) -> None:
    value = "timezone.now()" if on else "None"
    live.shell(
        "from django.utils import timezone\n"
        "from tradingstate.models import ExchangeAccount as A\n"
        f"A.objects.filter(name={account!r}).update(recovery_started_at={value})\n"
    )


def test_registration_during_restart_recovery_retries_until_the_gate_opens(live):
    set_recovering(live, SPARE, True)
    try:
        # given: the gate stays shut: a small budget ends in RecoveryInProgress
        small = RetryPolicy(max_attempts=3, max_wait=2, backoff_base=0.05)
        with (
            Client(live.base_url, live.token, retry=small) as ts,
            pytest.raises(RecoveryInProgress) as err,
        ):
            ts.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1", price="1",
                              client_order_id="cl-recovery-1")  # fmt: skip
        assert isinstance(err.value, ServiceUnavailable)
        assert err.value.status == 503 and err.value.error == "reconciliation_in_progress"
        assert err.value.attempts == 3
        # when: the gate opens while the client is retrying
        opener = threading.Timer(1.0, set_recovering, args=(live, SPARE, False))
        opener.start()
        patient = RetryPolicy(max_attempts=30, max_wait=60, backoff_base=0.2, backoff_max=1)
        with Client(live.base_url, live.token, retry=patient) as ts:
            order = ts.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1",
                                      price="1", client_order_id="cl-recovery-1")  # fmt: skip
        opener.join()
        # then
        assert order.client_order_id == "cl-recovery-1" and order.status == "pending"
    finally:
        set_recovering(live, SPARE, False)


def test_registration_whose_answer_was_lost_is_resent_with_the_same_id(live, stalling_proxy):
    # given: the first answer never arrives (the server registered the order)
    policy = RetryPolicy(max_attempts=3, backoff_base=0.05)
    with Client(stalling_proxy.url, live.token, timeout=2, retry=policy) as ts:
        # when: no client_order_id given: the client makes one, and resends it
        order = ts.register_order(SPARE, symbol="BTC/USDT", side="sell", quantity="0.5",
                                  price="70000", strategy_id="lost-answer")  # fmt: skip
    # then: one order, answered by the resend (200: already registered)
    assert stalling_proxy.stalled == 1 and stalling_proxy.connections == 2
    with Client(live.base_url, live.token) as ts:
        mine = [o for o in ts.iter_orders(SPARE) if o.strategy_id == "lost-answer"]
    assert [o.client_order_id for o in mine] == [order.client_order_id]


def test_a_fill_whose_answer_was_lost_counts_once(live, stalling_proxy):
    with Client(live.base_url, live.token) as ts:
        order = ts.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1", price="1")
        ts.transition(SPARE, order.client_order_id, "submitted")
    policy = RetryPolicy(max_attempts=3, backoff_base=0.05)
    with Client(stalling_proxy.url, live.token, timeout=2, retry=policy) as ts:
        fill = ts.post_fill(SPARE, client_order_id=order.client_order_id,
                            trade_id="T-lost-" + order.client_order_id, quantity="0.25",
                            price="1")  # fmt: skip
    assert stalling_proxy.stalled == 1
    assert fill.order.filled_qty == Decimal("0.25")
    with Client(live.base_url, live.token) as ts:
        assert ts.order(SPARE, order.client_order_id).filled_qty == Decimal("0.25")


def test_a_transition_whose_answer_was_lost_is_not_resent(live, stalling_proxy):
    with Client(live.base_url, live.token) as ts:
        order = ts.register_order(SPARE, symbol="BTC/USDT", side="buy", quantity="1", price="1")
    with (
        Client(stalling_proxy.url, live.token, timeout=2) as ts,
        pytest.raises(TransportError) as err,
    ):
        ts.transition(SPARE, order.client_order_id, "submitted")
    assert err.value.attempts == 1 and stalling_proxy.connections == 1
    # the server did move it: a resend would have been refused as illegal
    with Client(live.base_url, live.token) as ts:
        assert ts.order(SPARE, order.client_order_id).status == "submitted"


def test_an_unreachable_server_is_a_transport_error_after_the_budget(live):
    policy = RetryPolicy(max_attempts=3, backoff_base=0.01)
    with (
        Client("http://127.0.0.1:9", live.token, timeout=1, retry=policy) as ts,
        pytest.raises(TransportError) as err,
    ):
        ts.health()
    assert err.value.attempts == 3 and err.value.__cause__ is not None


def test_a_misconfigured_url_is_not_retried():
    with (
        Client("ftp://127.0.0.1:9", "t", retry=RetryPolicy(max_attempts=5)) as ts,
        pytest.raises(TransportError) as err,
    ):
        ts.health()
    assert err.value.attempts == 1
