"""A strict JSON parser: exact decimals, no NaN/Infinity, UTF-8 only, bounded size and depth."""

from __future__ import annotations

import json
import re
from decimal import Decimal

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

UTF8_NAMES = frozenset({"utf-8", "utf8"})

ONLY_UTF8 = "Only charset=utf-8 is accepted."
NOT_UTF8 = "JSON parse error: the body is not valid UTF-8."
TOO_DEEP = "JSON parse error: the document is nested too deeply."
CONSTANT_REFUSED = "JSON parse error: {name} is not allowed; send decimals as strings."
DUPLICATE_KEY = "JSON parse error: duplicate key '{key}'."
LONE_SURROGATE = (
    "JSON parse error: a \\u escape names a lone UTF-16 surrogate ({escape}), "
    "which is not a character."
)
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def body_limit() -> int:
    return int(settings.TRADINGSTATE.api.max_body_bytes)


def charset_is_utf8(content_type: str) -> bool:
    """True when ``content_type`` names no charset or UTF-8."""
    _, params = parse_header_parameters(content_type or "")
    charset = params.get("charset")
    return charset is None or charset.strip().lower().replace("_", "-") in UTF8_NAMES


def _refuse_constant(name: str):
    raise ParseError(CONSTANT_REFUSED.format(name=name))


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise ParseError(DUPLICATE_KEY.format(key=key[:64]))
        result[key] = value
    return result


# A \uD800-\uDFFF escape: JSON text that is valid UTF-8 can still name half a UTF-16 pair,
# which decodes to a string no encoder takes (the error that echoes it, the database).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(value: object) -> None:
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found:
            raise ParseError(LONE_SURROGATE.format(escape=f"\\u{ord(found.group()):04x}"))
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key)
            _refuse_lone_surrogates(item)
    elif isinstance(value, list):
        for item in value:
            _refuse_lone_surrogates(item)


def loads_strict(text: str) -> object:
    parsed = _loads(text)
    if _SURROGATE_ESCAPE.search(text):  # only then can a string hold one: a pair is fine
        try:
            _refuse_lone_surrogates(parsed)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
    return parsed


def _loads(text: str) -> object:
    try:
        return json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        raise ParseError(TOO_DEEP) from None
    except ValueError as exc:  # JSONDecodeError, int too long to convert, ...
        raise ParseError(f"JSON parse error - {exc}") from None


class StrictJSONParser(BaseParser):
    media_type = "application/json"
    renderer_class = JSONRenderer

    def parse(self, stream, media_type=None, parser_context=None):
        if not charset_is_utf8(media_type or ""):
            raise UnsupportedMediaType(media_type, detail=ONLY_UTF8)
        limit = body_limit()
        request = (parser_context or {}).get("request")
        if request is not None:
            try:
                declared = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                declared = 0
            if declared > limit:
                raise RequestTooLarge(BODY_TOO_LARGE.format(limit=limit))
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise RequestTooLarge(BODY_TOO_LARGE.format(limit=limit))
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ParseError(NOT_UTF8) from None
        return loads_strict(text)
