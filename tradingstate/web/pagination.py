"""Cursor pagination, newest first, with a caller-chosen page size capped by the settings."""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

INVALID_CURSOR = "Invalid cursor."


class ApiCursorPagination(CursorPagination):
    """``?page_size=N`` above ``api.max_page_size`` is capped to it (not an error)."""

    ordering = "-id"
    page_size_query_param = "page_size"

    def __init__(self):
        api = settings.TRADINGSTATE.api
        self.page_size = api.page_size
        self.max_page_size = api.max_page_size

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
