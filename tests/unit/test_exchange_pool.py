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
