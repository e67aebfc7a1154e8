"""Exceptions. Every answer of the API outside 2xx becomes an :class:`ApiError` subclass that
carries the API's error body ``{"error": code, "detail": text, "fields": {name: [messages]}}``.

One class per status family, refined by the API's ``error`` code where bots act differently
(an illegal transition and a version conflict are both 409, and both are :class:`Conflict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class TradingStateError(Exception):
    """Base class of everything this client raises.

    ``client_order_id`` (from ``register_order``) and ``trade_id`` (from ``post_fill``): the
    idempotency key the failed call was sent with, generated or given; resend with the same
    key and the server records the order or fill at most once. None for other calls.
    """

    client_order_id: str | None = None
    trade_id: str | None = None

    def __reduce__(self):
        # the subclasses take keyword-only arguments: rebuild without calling __init__ (as
        # pickle and copy otherwise would, with the message alone), then restore every
        # attribute
        return (_rebuild, (type(self), self.args), self.__dict__)


def _rebuild(cls: type[TradingStateError], args: tuple[Any, ...]) -> TradingStateError:
    return cls.__new__(cls, *args)


class TransportError(TradingStateError):
    """No usable answer: the connection failed or timed out (after any retries the budget
    allowed). ``__cause__`` is the underlying ``httpx`` exception.

    ``maybe_sent``: False when the last attempt certainly never reached the server (the
    connection could not be made), so it changed nothing; True when the request may have
    been received and applied, its answer lost.
    """

    def __init__(
        self, message: str, *, method: str, url: str, attempts: int, maybe_sent: bool = True
    ):
        super().__init__(message)
        self.method = method
        self.url = url
        self.attempts = attempts
        self.maybe_sent = maybe_sent


class TransportTimeout(TransportError):
    """A time limit passed before the answer was complete: one attempt's ``timeout`` (the
    whole exchange, not each read) or the call's ``total_timeout``."""


class ResponseFormatError(TradingStateError):
    """The server answered, but not in the shape this client expects (not JSON, a field
    missing or of the wrong type). Usually a proxy's page or a server/client version skew."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


class UnexpectedStatus(ResponseFormatError):
    """An HTTP status the API never answers with, outside 4xx/5xx: a redirect (a proxy or a
    wrong base URL; redirects are not followed), an informational status, or a success
    status other than the operation's (204 where an answer is expected). ``status`` is it,
    ``body`` the answer's text, ``location`` a redirect's ``Location`` header."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        location: str | None = None,
    ):
        super().__init__(message, status=status, body=body)
        self.location = location


class ApiError(TradingStateError):
    """The API refused the request. Attributes mirror the API's error body."""

    status: int
    error: str
    detail: str
    fields: dict[str, list[str]]

    def __init__(
        self,
        *,
        status: int,
        error: str,
        detail: str,
        fields: Mapping[str, list[str]] | None = None,
        body: Mapping[str, Any] | None = None,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        attempts: int = 1,
    ):
        self.status = status
        self.error = error
        self.detail = detail
        self.fields = dict(fields or {})
        self.body = dict(body or {})
        self.method = method
        self.url = url
        self.retry_after = retry_after
        self.attempts = attempts
        super().__init__(self._message())

    def _message(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.status} {self.error}: {self.detail}{where}"

    @property
    def extra(self) -> dict[str, Any]:
        """Keys of the body beyond ``error``/``detail``/``fields`` (e.g. the halt's ``reason``)."""
        return {k: v for k, v in self.body.items() if k not in ("error", "detail", "fields")}


class ClientError(ApiError):
    """A 4xx without a more specific class (405, 406, 413, 415, ...)."""


class ValidationError(ClientError):
    """400: bad input; ``fields`` names each field and its problem. Nothing was changed."""


class AuthenticationError(ClientError):
    """401: no token, or an unknown/expired one."""


class PermissionDenied(ClientError):
    """403: authenticated, but not allowed (e.g. a bot deactivating the kill switch)."""


class NotFound(ClientError):
    """404: no such account (or not granted to this bot), order, or endpoint."""


class Conflict(ClientError):
    """409: the request contradicts the state of record (same ``client_order_id`` or
    ``trade_id`` with other content, an overfill, ...). Nothing was changed."""


class TransitionNotAllowed(Conflict):
    """409 ``transition_not_allowed``: the order status machine refuses the move."""


class VersionConflict(Conflict):
    """409 ``version_conflict``: the row changed since ``expected_version`` was read."""


class KillSwitchActive(ClientError):
    """423: the kill switch (global or this account's) is active; ``reason`` says why."""

    @property
    def reason(self) -> str:
        return str(self.body.get("reason") or self.detail)


class RateLimited(ClientError):
    """429: the bot's rate limit; ``retry_after`` (seconds) says when to come back."""


class ServerError(ApiError):
    """5xx without a more specific class."""


class ServiceUnavailable(ServerError):
    """503: the server cannot serve now (e.g. its database is unreachable); nothing changed."""


class RecoveryInProgress(ServiceUnavailable):
    """503 ``reconciliation_in_progress``: the account is reconciling after a restart;
    new orders are refused until its first pass completes."""


_BY_CODE: dict[str, type[ApiError]] = {
    "transition_not_allowed": TransitionNotAllowed,
    "version_conflict": VersionConflict,
    "reconciliation_in_progress": RecoveryInProgress,
    "kill_switch_active": KillSwitchActive,
}

_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    423: KillSwitchActive,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_class(status: int, code: str) -> type[ApiError]:
    """The exception class for a 4xx or 5xx status and the API's ``error`` code (other
    statuses are :class:`UnexpectedStatus`, not an :class:`ApiError`: ValueError)."""
    if not 400 <= status <= 599:
        raise ValueError(f"HTTP {status} is not an API error status (4xx or 5xx)")
    by_code = _BY_CODE.get(code)
    by_status = _BY_STATUS.get(status)
    if by_code is not None and (by_status is None or issubclass(by_code, by_status)):
        return by_code
    if by_status is not None:
        return by_status
    return ClientError if status < 500 else ServerError
