"""Rate limit per bot, counted in the default cache (Redis in production, the database
cache by default), so every web process and host shares the count. Staff sessions are not
throttled.

DRF's ``SimpleRateThrottle`` keeps the time of every request of the window in one cached
list, read, trimmed, pickled and written back on each request: at the default
6,000/min that is a list of up to 6,000 floats per bot, per request. This throttle keeps
two counters per bot instead (this window's and the previous one's) and estimates the
sliding window from them, weighting the previous window by the share of it still inside
the sliding window. The cost is constant: one read of both counters and one increment
(atomic on Redis).
"""

from __future__ import annotations

import time

from django.core.cache import cache
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from tradingstate.web.permissions import is_bot

KEY = "throttle_bot_{ident}_{window}"


class BotRateThrottle(BaseThrottle):
    scope = "bot"
    timer = time.time

    def __init__(self):
        self._wait: float | None = None

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
        limit, period = rate
        now = self.timer()
        window, offset = divmod(now, period)
        window = int(window)
        current = KEY.format(ident=request.user.pk, window=window)
        previous = KEY.format(ident=request.user.pk, window=window - 1)
        counts = cache.get_many([previous, current])
        in_current = counts.get(current, 0)
        in_previous = counts.get(previous, 0)
        weight = 1 - offset / period  # the previous window's share of the sliding window
        if in_previous * weight + in_current >= limit:
            self._wait = self._wait_for(limit, period, offset, in_previous, in_current)
            return False
        self._count(current, period, present=current in counts)
        return True

    def wait(self) -> float | None:
        return self._wait

    @staticmethod
    def _count(key: str, period: int, *, present: bool) -> None:
        # both windows must outlive the next one: keep each counter for two periods
        if not present and cache.add(key, 1, timeout=2 * period):
            return
        try:
            cache.incr(key)
        except ValueError:  # expired between the read and the increment
            cache.set(key, 1, timeout=2 * period)

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
