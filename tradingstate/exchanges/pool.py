"""What concurrent passes share per venue and key: the request spacing.

ccxt's rate limiter (``enableRateLimit``) lives in each exchange instance, and every pass
builds its own instance (its ``last_json_response`` and session are per pass, so instances
are not shared between threads). N passes of accounts on the same venue and API key at once
would then each send at the venue's full rate: N times what the key may. Every
``CcxtExchange`` therefore routes ccxt's throttle through one ``SharedThrottle`` per
(venue, API key) in the process: the spacing ccxt would keep within one instance
(``rateLimit`` ms per unit of cost) is kept across all of them. Accounts with different
keys do not wait for each other; public calls (no key) share the venue's anonymous slot.
One process only: several worker processes on one key each keep their own spacing (set
the venue's ``rateLimit`` in ``ccxt_options`` accordingly).
"""

from __future__ import annotations

import hashlib
import threading
import time

_lock = threading.Lock()
_throttles: dict[tuple[str, str], SharedThrottle] = {}


class SharedThrottle:
    """ccxt's ``throttle(cost)``, thread-safe and shared: each call takes the next free slot
    (``rate_limit_ms * cost`` after the previous one) and sleeps until it."""

    def __init__(self, rate_limit_ms: float):
        self.interval = max(float(rate_limit_ms), 0.0) / 1000.0
        self._next = 0.0
        self._lock = threading.Lock()

    def throttle(self, cost=None) -> None:
        cost = 1 if cost is None else cost
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval * cost
        if slot > now:
            time.sleep(slot - now)


def throttle_for(exchange_id: str, api_key: str | None, rate_limit_ms: float) -> SharedThrottle:
    """The process's throttle for this venue and key (the key is hashed, never kept)."""
    fingerprint = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    key = (exchange_id, fingerprint)
    with _lock:
        throttle = _throttles.get(key)
        if throttle is None:
            throttle = _throttles[key] = SharedThrottle(rate_limit_ms)
        return throttle


def reset() -> None:
    """Forget every throttle (tests)."""
    with _lock:
        _throttles.clear()
