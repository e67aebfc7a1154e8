"""Domain errors. The API maps each ``code`` to one HTTP status and one JSON shape:
``{"error": code, "detail": text, "fields": {name: [messages]}}``.
"""

from __future__ import annotations


class ApplicationError(Exception):
    code = "invalid"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, **extra):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.extra = extra


class ValidationFailed(ApplicationError):
    code = "validation_error"
    http_status = 400


class NotFound(ApplicationError):
    code = "not_found"
    http_status = 404


class TransitionNotAllowed(ApplicationError):
    code = "transition_not_allowed"
    http_status = 409


class Conflict(ApplicationError):
    code = "conflict"
    http_status = 409


class VersionConflict(ApplicationError):
    """The row changed since the caller read it (optimistic concurrency)."""

    code = "version_conflict"
    http_status = 409


class TradingHalted(ApplicationError):
    code = "kill_switch_active"
    http_status = 423


class RecoveryInProgress(ApplicationError):
    code = "reconciliation_in_progress"
    http_status = 503


class PermissionRefused(ApplicationError):
    code = "permission_denied"
    http_status = 403
