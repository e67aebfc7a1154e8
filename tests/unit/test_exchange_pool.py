"""Concurrent passes share one request spacing per venue and key (issue 17 point 5)."""

from __future__ import annotations

import threading
import time

from tradingstate.exchanges import pool


def _spaced(throttle, n: int, threads: int) -> float:
    def work():
        for _ in range(n):
            throttle()

    started = time.monotonic()
    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.monotonic() - started


def test_one_key_is_spaced_across_threads():
    pool.reset()
    # 4 threads x 5 requests at 20 ms each: 20 slots, the first at once: >= 19 x 20 ms
    a = pool.throttle_for("binance", "key-1", 20)
    assert pool.throttle_for("binance", "key-1", 20) is a
    assert _spaced(a.throttle, 5, 4) >= 0.38


def test_other_keys_and_venues_do_not_wait_for_each_other():
    pool.reset()
    throttles = [
        pool.throttle_for("binance", "key-1", 200).throttle,
        pool.throttle_for("binance", "key-2", 200).throttle,
        pool.throttle_for("bybit", "key-1", 200).throttle,
    ]
    started = time.monotonic()
    for throttle in throttles:
        throttle()  # each key's first request goes at once
    assert time.monotonic() - started < 0.1


def test_cost_takes_that_many_slots():
    pool.reset()
    throttle = pool.throttle_for("binance", None, 10).throttle
    started = time.monotonic()
    throttle(cost=20)  # takes 200 ms of the key's budget
    throttle()
    assert time.monotonic() - started >= 0.19


def test_a_burst_goes_at_once_then_the_rate_holds():
    pool.reset()
    # 100 ms per unit, a burst of 5 units: 6 calls at once (ccxt's first slot and the 5),
    # the next ones 100 ms apart
    throttle = pool.throttle_for("binance", "key-burst", 100, burst=5).throttle
    started = time.monotonic()
    for _ in range(6):
        throttle()
    assert time.monotonic() - started < 0.05
    for _ in range(3):
        throttle()
    assert time.monotonic() - started >= 0.29  # over any span T: T / rate + 1 + burst


def test_the_account_configuration_read_last_sets_its_keys_spacing():
    # given: a key's throttle made at 200 ms a request, its first slot taken
    pool.reset()
    throttle = pool.throttle_for("bybit", "key-changed", 200)
    throttle.throttle()
    # when: the account's rateLimit is lowered to 1 ms (the next adapter built reads it)
    assert pool.throttle_for("bybit", "key-changed", 1) is throttle  # one spacing per key
    started = time.monotonic()
    for _ in range(5):
        throttle.throttle()
    # then: the slot already given stands (<= 200 ms), the next four are 1 ms apart (the
    # process's first configuration had kept 200 ms for good: 5 x 200 ms)
    assert time.monotonic() - started < 0.5
    # and raised again: 4 more requests take >= 3 x 100 ms
    pool.throttle_for("bybit", "key-changed", 100)
    assert _spaced(throttle.throttle, 4, 1) >= 0.29


class _Client:
    closed = False

    def close(self):
        self.closed = True


def test_idle_clients_are_kept_per_key_and_bounded(monkeypatch):
    pool.clients_reset()
    monkeypatch.setattr(pool, "IDLE_PER_KEY", 2)
    monkeypatch.setattr(pool, "IDLE_MAX", 3)
    clients = [_Client() for _ in range(5)]

    def close(client):
        client.close()

    # a key keeps at most IDLE_PER_KEY clients
    for c in clients[:3]:
        pool.client_give("a", c, close)
    assert clients[2].closed and not clients[0].closed
    # past IDLE_MAX in all, the least recently used key's clients go
    pool.client_give("b", clients[3], close)
    pool.client_give("b", clients[4], close)
    assert clients[0].closed and clients[1].closed
    assert pool.client_take("a") is None
    assert pool.client_take("b") in clients[3:]
    pool.clients_reset()
