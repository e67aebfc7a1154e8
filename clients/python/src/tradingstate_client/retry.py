"""The retry policy: when a failed call is tried again, and how long to wait first.

Pure code, shared by the sync and async clients.

- A failed attempt is resent only when the resend cannot undo a change made by someone else
  in between. That holds for every call when the attempt certainly changed nothing: an
  answer 429, or 503 from the API itself (refused before any work), or a connection that
  could not be made (nothing was sent). After a failure that may have come after the
  request reached the server (a read timeout, a dropped connection, a proxy's 503 page),
  only *replay-safe* calls are resent: reads, and the writes whose resend the server
  recognises (an order's registration on ``client_order_id``, a fill on ``trade_id``).
  The kill switch's activate/deactivate and ``PUT`` of a position or balance set a state:
  resent after someone else changed it, they would silently undo that change; they are
  not replay-safe (``_core.Call.replay_safe`` says which calls are).
- Waits: ``Retry-After`` when the server gives it, else an exponential backoff with jitter.
- The budget is bounded twice: at most ``max_attempts`` sends, and at most ``max_wait``
  seconds slept in total. A ``Retry-After`` longer than what is left of the budget ends the
  retries at once (the error carries ``retry_after``); it is never shortened. The client's
  ``total_timeout`` bounds the whole call besides (``_core.execute``).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRY_STATUSES = frozenset({429, 503})
# answers that say the request was refused before it did anything: resent for every call
# (a 503 only when it is the API's own error body; a proxy's 503 page may come after it
# forwarded the request)
NOT_APPLIED_STATUSES = frozenset({429, 503})
RETRY_AFTER_MAX_DIGITS = 12  # about 31,000 years: more is not a wait, it is garbage
RETRY_AFTER_MAX_LENGTH = 64  # an HTTP date is 29 characters
_DELTA_SECONDS = re.compile(rf"([0-9]{{1,{RETRY_AFTER_MAX_DIGITS}}})(?:\.([0-9]{{1,9}}))?")


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how long in total, a failed call is retried (when it may be).

    ``RetryPolicy(max_attempts=1)`` turns retries off.
    """

    max_attempts: int = 5
    max_wait: float = 30.0
    backoff_base: float = 0.25
    backoff_max: float = 8.0
    jitter: float = 0.25
    statuses: frozenset[int] = field(default=RETRY_STATUSES)
    retry_transport_errors: bool = True

    def __post_init__(self):
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.max_wait < 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("max_wait, backoff_base and backoff_max must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def backoff(self, attempt: int) -> float:
        """The wait after the ``attempt``-th failed send when the server named no time."""
        delay = min(self.backoff_max, self.backoff_base * (2 ** (attempt - 1)))
        return delay * (1 - self.jitter * random.random())

    def next_delay(
        self,
        *,
        attempt: int,
        waited: float,
        resend_safe: bool,
        status: int | None = None,
        retry_after: float | None = None,
        transport_error: bool = False,
    ) -> float | None:
        """Seconds to sleep before the next send, or None to stop and raise.

        ``attempt`` is the number of sends made so far, ``waited`` the seconds already slept;
        ``resend_safe``: whether sending the call again after this outcome is safe (the
        caller decides: see the module's docstring).
        """
        if not resend_safe or attempt >= self.max_attempts:
            return None
        if transport_error:
            if not self.retry_transport_errors:
                return None
        elif status not in self.statuses:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        if waited + delay > self.max_wait:
            return None
        return delay


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent/invalid.

    Delta-seconds are ASCII digits (``str.isdigit`` also takes ``²`` and other scripts'
    digits), at most :data:`RETRY_AFTER_MAX_DIGITS` of them; a fraction, which some servers
    send, is rounded up, so the client never comes back sooner than asked. Never raises.
    """
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > RETRY_AFTER_MAX_LENGTH:
        return None
    seconds = _DELTA_SECONDS.fullmatch(value)
    if seconds is not None:
        whole, fraction = seconds.groups()
        return float(int(whole) + (1 if fraction and fraction.strip("0") else 0))
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
