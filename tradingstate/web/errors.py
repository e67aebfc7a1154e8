"""One error shape for the whole API: ``{"error": code, "detail": text, "fields": {...}}``.

``exception_handler`` is DRF's EXCEPTION_HANDLER; ``handler400/403/404/500`` answer the same
shape for ``/api/`` paths that never reach a DRF view (unknown URLs, crashes).
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import DatabaseError, DataError, IntegrityError
from django.db.transaction import TransactionManagementError
from django.http import Http404, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from tradingstate.errors import ApplicationError, TradingHalted

logger = logging.getLogger("tradingstate.api")

API_PREFIX = "/api/"

CODES_BY_STATUS = {
    400: "bad_request",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "request_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    429: "throttled",
    503: "service_unavailable",
}
NON_FIELD = "non_field_errors"


def error_body(code: str, detail: str, fields: dict | None = None, **extra) -> dict:
    return {"error": code, "detail": detail, "fields": fields or {}, **extra}


def error_response(code: str, detail: str, status: int, fields: dict | None = None):
    return JsonResponse(error_body(code, detail, fields), status=status)


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b.0.c": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            out.update(flatten_fields(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(detail, list):
        if all(isinstance(item, str) for item in detail):
            if detail:
                out.setdefault(prefix or NON_FIELD, []).extend(str(i) for i in detail)
        else:
            for index, item in enumerate(detail):
                if item:
                    out.update(flatten_fields(item, f"{prefix}.{index}" if prefix else str(index)))
    else:
        out.setdefault(prefix or NON_FIELD, []).append(str(detail))
    return out


def _validation_detail(fields: dict[str, list[str]]) -> str:
    parts = [f"{name}: {messages[0]}" for name, messages in fields.items() if messages]
    return "Invalid input. " + "; ".join(parts) if parts else "Invalid input."


def validation_error_body(detail) -> dict:
    fields = flatten_fields(detail)
    return error_body("validation_error", _validation_detail(fields), fields)


def application_error_body(exc: ApplicationError) -> dict:
    extra = {k: v for k, v in exc.extra.items() if k not in ("error", "detail", "fields")}
    if isinstance(exc, TradingHalted):
        extra.setdefault("reason", exc.message)
    return error_body(exc.code, exc.message, exc.fields, **extra)


DATABASE_UNAVAILABLE = "The database is unavailable; nothing was changed. Retry shortly."
DATABASE_RETRY_AFTER = 5


def exception_handler(exc, context):
    if isinstance(exc, DatabaseError) and not isinstance(
        exc, IntegrityError | DataError | TransactionManagementError
    ):
        # the state of record cannot be read or written (connection lost, a privilege or a
        # table missing, the server's own error): refuse clearly, never "allowed". A row
        # refused by a constraint, a value the column refuses, or a lock taken outside a
        # transaction (Django's TransactionManagementError) is a bug, not an outage: a 500.
        logger.error("Database unavailable: %s: %s", type(exc).__name__, exc)
        return Response(
            error_body("service_unavailable", DATABASE_UNAVAILABLE),
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
        )
    if isinstance(exc, ApplicationError):
        set_rollback()
        return Response(application_error_body(exc), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: Django's handler500 answers (JSON for /api/)

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))

    if isinstance(exc, exceptions.ValidationError):
        body = validation_error_body(exc.detail)
    else:
        if isinstance(exc, exceptions.ParseError):
            code = "parse_error"
        else:
            code = CODES_BY_STATUS.get(exc.status_code) or str(exc.default_code)
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        body = error_body(code, detail)
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


def handler400(request, exception=None):
    if _is_api(request):
        return error_response("bad_request", "Bad request.", 400)
    return defaults.bad_request(request, exception)


def handler403(request, exception=None):
    if _is_api(request):
        return error_response("permission_denied", "Permission denied.", 403)
    return defaults.permission_denied(request, exception)


def handler404(request, exception=None):
    if _is_api(request):
        return error_response("not_found", f"No API endpoint at '{request.path[:200]}'.", 404)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if _is_api(request):
        return error_response("server_error", "Internal server error.", 500)
    return defaults.server_error(request)
