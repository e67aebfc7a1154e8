"""Rate limit per bot, shared by every web process and host, at one round trip a request.

- Redis configured (``REDIS_URL``, the production setup): one Lua script per request in
  the cache's Redis, which rolls the windows, decides and counts atomically.
- Otherwise: one upsert on the ``RateCounter`` table (``tradingstate.db.throttle``),
  created by ``migrate`` like every other table: no ``createcachetable`` step. On
  PostgreSQL that upsert is part of the bot's token statement (``token_statement_plan``,
  ``tradingstate.web.auth``): no round trip of its own. It then counts every request of an
  active bot with a valid token, also one its permissions refuse afterwards.

Both keep two counters per bot (this fixed window's and the previous one's) and estimate
the sliding window from them, weighting the previous window by the share of it still
inside the sliding window. A refused request is not counted. Staff sessions are not
throttled.

The throttle never answers 500: if its store cannot be reached (Redis down, the table
missing, the database refusing), the request is let through and the failure is logged
once a minute per process (fail open: the rate limit protects capacity; it is not a
safety check. The kill switch, which is, fails closed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from tradingstate.db.throttle import Count, rate_count, rate_params
from tradingstate.web.permissions import is_bot

logger = logging.getLogger("tradingstate.throttle")

KEY = "throttle_bot_{ident}"
STORE_UNAVAILABLE = "Rate-limit store unavailable; request let through (%s: %s)"
LOG_EVERY_SECONDS = 60.0

# KEYS[1] the bot's hash; ARGV: window index, limit, weight of the previous window, ttl.
# Fields w (window index), c (this window's count), p (the previous window's count).
# The window never moves back (tradingstate.db.throttle: a late request of an older window
# counts at the start of the stored one).
REDIS_SCRIPT = """
local w = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local row = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
local rw, c, p = tonumber(row[1]), tonumber(row[2]) or 0, tonumber(row[3]) or 0
if rw ~= nil and rw > w then w, weight = rw, 1 end
if rw == nil then c, p = 0, 0
elseif rw == w - 1 then p, c = c, 0
elseif rw ~= w then c, p = 0, 0 end
local ok = 0
if p * weight + c < limit then ok = 1; c = c + 1 end
redis.call('HSET', KEYS[1], 'w', w, 'c', c, 'p', p)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {ok, c, p}
"""


@dataclass(frozen=True)
class Plan:
    """One request's window arithmetic: the counter's key prefix and parameters, and what
    ``Retry-After`` needs."""

    scope: str
    key_prefix: str
    params: dict
    limit: int
    period: int
    offset: float


class BotRateThrottle(BaseThrottle):
    scope = "bot"
    timer = time.time
    _last_failure_log = 0.0

    def __init__(self):
        self._wait: float | None = None

    def token_statement_plan(self) -> Plan | None:
        """The count to make in the bot's token statement, when that is where it is made:
        a rate is set, the store is the table (no Redis), and the database can (PostgreSQL's
        writable CTE). The decision comes back on ``request.user.rate_counted``."""
        rate = self.rate()
        if rate is None or connection.vendor != "postgresql" or _redis_client() is not None:
            return None
        return self._plan(*rate)

    def _plan(self, limit: int, period: int) -> Plan:
        window, offset = divmod(self.timer(), period)
        weight = 1 - offset / period  # the previous window's share of the sliding window
        params = rate_params(period_index=int(window), limit=limit, weight=weight)
        return Plan(self.scope, KEY.format(ident=""), params, limit, period, offset)

    def rate(self) -> tuple[int, int] | None:
        # read at request time so a settings change (and tests) take effect
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if not rate:
            return None
        count, period = rate.split("/")
        seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period[0]]
        return int(count), seconds

    def allow_request(self, request, view) -> bool:
        rate = self.rate()
        if rate is None or not is_bot(request.user):
            return True
        counted = getattr(request.user, "rate_counted", None)  # in the token's statement
        if counted is not None and counted[0].scope == self.scope:
            plan, count = counted
        else:
            plan = self._plan(*rate)
            key = plan.key_prefix + str(request.user.pk)
            p = plan.params
            try:
                count = _count(key, p["period"], plan.limit, p["weight"], plan.period)
            except Exception as exc:  # never a 500 from the rate limit: let the request through
                self.log_failure(exc)
                return True
        if not count.allowed:
            self._wait = self._wait_for(
                plan.limit, plan.period, plan.offset, count.previous, count.current
            )
            return False
        return True

    def wait(self) -> float | None:
        return self._wait

    @classmethod
    def log_failure(cls, exc: Exception) -> None:
        now = time.monotonic()
        if now - cls._last_failure_log >= LOG_EVERY_SECONDS or not cls._last_failure_log:
            cls._last_failure_log = now
            logger.error(STORE_UNAVAILABLE, type(exc).__name__, exc)

    @staticmethod
    def _wait_for(limit: int, period: int, offset: float, previous: int, current: int) -> float:
        """Seconds until one more request fits, if no other request comes meanwhile."""
        if current < limit:
            # only the previous window's share is over: its weight falls linearly with time
            fits_at = period * (1 - (limit - current) / previous)
            return max(fits_at - offset, 1.0)
        if limit <= 0:  # "0/min": nothing fits in any window
            return period - offset
        # this window is full on its own: in the next one it is the previous window
        return (period - offset) + period * (1 - limit / current)


def _redis_client():
    """The default cache's Redis client when the cache is Redis, else None."""
    if not settings.CACHES["default"]["BACKEND"].endswith("RedisCache"):
        return None
    return cache._cache.get_client(write=True)


def _count(key: str, window: int, limit: int, weight: float, period: int) -> Count:
    client = _redis_client()
    if client is None:
        return rate_count(key=key, period_index=window, limit=limit, weight=weight)
    ok, current, previous = client.eval(
        REDIS_SCRIPT, 1, cache.make_key(key), window, limit, repr(weight), 2 * period
    )
    return Count(bool(ok), int(current), int(previous))
