"""Cursor pagination, newest first, with a caller-chosen page size capped by the settings."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination

INVALID_CURSOR = "Invalid cursor."
INVALID_PAGE_SIZE = "Must be a whole number from 1 (values above the maximum are capped)."


class ApiCursorPagination(CursorPagination):
    """``?page_size=N`` above ``api.max_page_size`` is capped to it (not an error)."""

    ordering = "-id"
    page_size_query_param = "page_size"

    def __init__(self):
        api = settings.TRADINGSTATE.api
        self.page_size = api.page_size
        self.max_page_size = api.max_page_size

    def get_page_size(self, request):
        """A ``page_size`` that is given must be a positive whole number (``null``, ``0``,
        ``-1``, ``1.5`` are refused, not read as the default); above the maximum it is capped."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: [INVALID_PAGE_SIZE]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters

    def paginate_queryset(self, queryset, request, view=None):
        self._model = queryset.model  # decode_cursor checks the position against its field
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request):
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(cursor.position)
        return cursor

    def _check_position(self, position: str) -> None:
        """A cursor is the client's text: its position must be a value of the ordering's
        field ("p=abc" on an id reached the query, a 500), in the field's range."""
        model = getattr(self, "_model", None)
        name = self.ordering[0].lstrip("-") if self.ordering else ""
        try:
            field = model._meta.get_field(name) if model is not None else None
        except FieldDoesNotExist:
            return  # ordered through a relation: the query's own check
        if field is None:
            return
        try:
            field.run_validators(field.to_python(position))
        except (DjangoValidationError, ValueError, TypeError, OverflowError):
            raise ValidationError({self.cursor_query_param: [INVALID_CURSOR]}) from None
