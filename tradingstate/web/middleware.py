"""Refuse unacceptable requests before any view runs.

``RequestFramingMiddleware`` (every path, issue 13): a body sent with ``Transfer-Encoding``
(chunked) is refused with 411: neither gunicorn's sync workers nor runserver hand Django a
chunked body it can read (it arrived as an empty body, so ``{"dry_run": true}`` became a
live pass); a body that cannot be read is never treated as empty. A path or query string
with a control character (NUL, \\x01, DEL, ...) is refused with 400 before it reaches SQL;
one longer than ``[web] max_url_bytes`` with 414. All in the API's JSON error shape.

``ApiRequestGuardMiddleware`` (``/api/``): bodies over the cap and charsets other than UTF-8
(which Django would otherwise use to decode the query string).
"""

from __future__ import annotations

import re

from django.conf import settings

from tradingstate.web.errors import API_PREFIX, error_response
from tradingstate.web.parsers import BODY_TOO_LARGE, ONLY_UTF8, body_limit, charset_is_utf8


class ApiRequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX):
            refused = self._refuse(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def _refuse(request):
        if not charset_is_utf8(request.META.get("CONTENT_TYPE", "")):
            return error_response("unsupported_media_type", ONLY_UTF8, 415)
        raw_length = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw_length)
        except ValueError:
            return error_response("parse_error", "Invalid Content-Length header.", 400)
        if length < 0:
            return error_response("parse_error", "Invalid Content-Length header.", 400)
        limit = body_limit()
        if length > limit:
            return error_response("request_too_large", BODY_TOO_LARGE.format(limit=limit), 413)
        return None


CHUNKED_REFUSED = (
    "Request bodies must be sent with Content-Length; Transfer-Encoding (chunked) is refused "
    "so that a body is never read as empty."
)
CONTROL_IN_PATH = "The URL path contains a control character (code {code:#04x})."
CONTROL_IN_QUERY = "The query string contains a control character (code {code:#04x})."
URL_TOO_LONG = "The URL is longer than {limit} bytes."
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def control_character(text: str) -> int | None:
    """The first control character (C0, DEL or C1) in ``text``, as its code; None if none."""
    match = _CONTROL.search(text)
    return ord(match.group()) if match else None


class RequestFramingMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refused = self._refuse(request)
        return refused if refused is not None else self.get_response(request)

    @staticmethod
    def _refuse(request):
        meta = request.META
        if meta.get("HTTP_TRANSFER_ENCODING"):
            return error_response("length_required", CHUNKED_REFUSED, 411)
        limit = settings.TRADINGSTATE.web.max_url_bytes
        raw_query = meta.get("QUERY_STRING", "")
        if len(request.path.encode("utf-8", "surrogatepass")) + len(raw_query) > limit:
            return error_response("uri_too_long", URL_TOO_LONG.format(limit=limit), 414)
        code = control_character(request.path)
        if code is not None:
            return error_response("bad_request", CONTROL_IN_PATH.format(code=code), 400)
        for key, values in request.GET.lists():
            for text in (key, *values):
                code = control_character(text)
                if code is not None:
                    return error_response(
                        "bad_request",
                        CONTROL_IN_QUERY.format(code=code),
                        400,
                        {key[:64]: [CONTROL_IN_QUERY.format(code=code)]},
                    )
        return None
