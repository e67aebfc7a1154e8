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
    (``rate_limit_ms * cost`` after the previous one) and sleeps until it.

    ``burst`` (cost units, default 0: ccxt's own spacing) lets that many units go at once
    after an idle spell, a token bucket of that capacity refilled at the same rate: over
    any span T at most ``T / rate_limit + burst`` units. For venues whose limits are budgets
    per minute (Binance: request weight per minute) a pass's few calls then go together
    instead of one ``rateLimit * cost`` apart, and the sustained rate is unchanged."""

    def __init__(self, rate_limit_ms: float, burst: float = 0):
        self._next = 0.0
        self._lock = threading.Lock()
        self.configure(rate_limit_ms, burst)

    def configure(self, rate_limit_ms: float, burst: float = 0) -> None:
        """The spacing from now on (the slots already taken stay as they were)."""
        interval = max(float(rate_limit_ms), 0.0) / 1000.0
        with self._lock:
            self.interval = interval
            self.burst_seconds = max(float(burst), 0.0) * interval

    def throttle(self, cost=None) -> None:
        cost = 1 if cost is None else cost
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next - self.burst_seconds)
            self._next = max(slot, self._next) + self.interval * cost
        if slot > now:
            time.sleep(slot - now)


def throttle_for(
    exchange_id: str, api_key: str | None, rate_limit_ms: float, burst: float = 0
) -> SharedThrottle:
    """The process's throttle for this venue and key (the key is hashed, never kept), set to
    the spacing given: the account configuration read last wins, so a changed ``rateLimit``
    in ``ccxt_options`` holds from the next pass on, not from the process's next start."""
    fingerprint = hashlib.sha256((api_key or "").encode()).hexdigest()[:16]
    key = (exchange_id, fingerprint)
    with _lock:
        throttle = _throttles.get(key)
        if throttle is None:
            throttle = _throttles[key] = SharedThrottle(rate_limit_ms, burst)
        else:
            throttle.configure(rate_limit_ms, burst)
        return throttle


def reset() -> None:
    """Forget every throttle (tests)."""
    with _lock:
        _throttles.clear()


# --- ccxt clients and markets, reused across passes ---------------------------------------
# Building a ccxt client costs ~7 ms of CPU (its API description is deep-merged) and
# loading markets a request plus their parsing: at hundreds of passes a second both would
# dominate. A pass returns its clients here when it ends; the account's next pass takes them
# back (one thread at a time per client: ccxt clients keep per-call state). Clients are
# keyed by everything they were built from, credentials included (hashed), so a client only
# ever serves the account configuration it was made for. Markets are shared read-only per
# venue configuration (credentials excluded) and reloaded after ``MARKETS_TTL_SECONDS``.
MARKETS_TTL_SECONDS = 3600.0
IDLE_PER_KEY = 4  # a pass uses at most this many clients of one account at once
IDLE_MAX = 8192  # every key's idle clients together (~0.25 MB each), oldest closed first

_clients_lock = threading.Lock()
_idle: dict[str, list] = {}  # key -> idle clients (insertion order = least recently used)
_idle_count = 0
_markets: dict[str, tuple[float, object]] = {}  # market key -> (loaded at, a loaded client)
# one pristine client per venue configuration (credentials excluded, never used for a call):
# an account's new client is a copy of it with its own keys and state (``ccxt.client_clone``)
# instead of a ccxt construction (~2-7 ms: the API description deep-merged) per client
TEMPLATES_MAX = 256
_templates: dict[str, object] = {}


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def client_take(key: str):
    """An idle client built for ``key``, or None."""
    global _idle_count
    with _clients_lock:
        clients = _idle.get(key)
        if not clients:
            return None
        client = clients.pop()
        _idle_count -= 1
        if not clients:
            del _idle[key]
        return client


def client_give(key: str, client, close) -> None:
    """Keep ``client`` for the next pass of its account; ``close(client)`` the ones that do
    not fit (``IDLE_PER_KEY`` per key, ``IDLE_MAX`` in all, least recently used first)."""
    global _idle_count
    evicted = []
    with _clients_lock:
        clients = _idle.pop(key, [])  # re-inserted last: the most recently used key
        if len(clients) < IDLE_PER_KEY:
            clients.append(client)
            _idle_count += 1
        else:
            evicted.append(client)
        _idle[key] = clients
        while _idle_count > IDLE_MAX:
            oldest = next(iter(_idle))
            gone = _idle.pop(oldest)
            _idle_count -= len(gone)
            evicted.extend(gone)
    for c in evicted:
        close(c)


def markets_get(key: str, now: float | None = None):
    """A client whose markets for this venue configuration are fresh, or None."""
    now = time.monotonic() if now is None else now
    with _clients_lock:
        entry = _markets.get(key)
    if entry is None or now - entry[0] > MARKETS_TTL_SECONDS:
        return None
    return entry[1]


def markets_put(key: str, client) -> None:
    with _clients_lock:
        _markets[key] = (time.monotonic(), client)


def template_get(key: str):
    """The pristine client of this venue configuration, or None."""
    with _clients_lock:
        return _templates.get(key)


def template_put(key: str, client) -> None:
    with _clients_lock:
        if len(_templates) >= TEMPLATES_MAX:  # the oldest configuration goes
            del _templates[next(iter(_templates))]
        _templates[key] = client


def clients_reset() -> None:
    """Forget every idle client, template and cached market (tests)."""
    global _idle_count
    with _clients_lock:
        _idle.clear()
        _markets.clear()
        _templates.clear()
        _idle_count = 0
