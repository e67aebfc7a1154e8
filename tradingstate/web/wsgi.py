"""A WSGI wrapper that refuses unusable charsets before Django builds the request.

Django decodes the query string with the Content-Type's charset while it constructs the
request (``WSGIRequest.__init__``), before any middleware: ``charset=bz2_codec`` plus a
query string raises ``LookupError`` there and the server answers a bare 500. This wrapper
answers 415 instead: JSON in the API's error shape for ``/api/`` paths (which accept UTF-8
only), plain text elsewhere (which accept any text encoding).
"""

from __future__ import annotations

import codecs
import json

from tradingstate.web.errors import API_PREFIX
from tradingstate.web.parsers import ONLY_UTF8, charset_is_utf8

TEXT_ONLY = "Unsupported charset."


def _is_text_encoding(content_type: str) -> bool:
    from django.utils.http import parse_header_parameters

    charset = parse_header_parameters(content_type)[1].get("charset")
    if charset is None:
        return True
    try:
        return codecs.lookup(charset)._is_text_encoding
    except LookupError:
        return True  # Django ignores unknown charsets


def refuse_unusable_charsets(app):
    def guarded(environ, start_response):
        content_type = environ.get("CONTENT_TYPE", "")
        path = environ.get("PATH_INFO", "")
        if content_type:
            if path.startswith(API_PREFIX) and not charset_is_utf8(content_type):
                body = json.dumps(
                    {"error": "unsupported_media_type", "detail": ONLY_UTF8, "fields": {}}
                ).encode()
                return _respond(start_response, body, "application/json")
            if not _is_text_encoding(content_type):
                return _respond(start_response, TEXT_ONLY.encode(), "text/plain; charset=utf-8")
        return app(environ, start_response)

    return guarded


def _respond(start_response, body: bytes, content_type: str):
    start_response(
        "415 Unsupported Media Type",
        [("Content-Type", content_type), ("Content-Length", str(len(body)))],
    )
    return [body]
