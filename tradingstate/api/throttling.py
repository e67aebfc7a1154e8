"""Rate limit per bot, counted in the default cache (the database cache or Redis), so every
web process and host shares the count. Staff sessions are not throttled."""

from __future__ import annotations

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from tradingstate.api.permissions import is_bot


class BotRateThrottle(SimpleRateThrottle):
    scope = "bot"

    def get_rate(self):
        # read at request time so a settings change (and tests) take effect
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        if not is_bot(request.user):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
