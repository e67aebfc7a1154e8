"""The API's list filters: django-filter's backend, made strict.

django-filter reads a filter given with an empty value (``?type=``, ``?active=``) as "not
given" and lists everything, while the schema says the parameter is an enum, a boolean or a
date-time. A parameter that is present must be valid: an empty one is refused with 400 naming
it, like any other bad value.
"""

from __future__ import annotations

from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

EMPTY_FILTER = "must not be empty (leave the parameter out to not filter by it)"


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset_kwargs(self, request, queryset, view):
        kwargs = super().get_filterset_kwargs(request, queryset, view)
        filterset_class = self.get_filterset_class(view, queryset)
        if filterset_class is not None:
            empty = {
                name: [EMPTY_FILTER]
                for name in filterset_class.base_filters
                if name in request.query_params
                and any(v.strip() == "" for v in request.query_params.getlist(name))
            }
            if empty:
                raise ValidationError(empty)
        return kwargs
