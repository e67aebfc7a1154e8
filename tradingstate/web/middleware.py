"""Refuse unacceptable API requests before any view runs: bodies over the cap and charsets
other than UTF-8 (which Django would otherwise use to decode the query string)."""

from __future__ import annotations

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
