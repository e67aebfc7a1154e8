"""Filters for the list endpoints (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms

from tradingstate.models import Order

BOOLEAN_CHOICES = {"true": True, "false": False}
NOT_A_BOOLEAN = "Use true or false."


class StrictBooleanFormField(forms.Field):
    """``true`` / ``false`` only (django-filter's own reads anything else as "not given",
    so ``?active=5`` listed every order while the schema says boolean)."""

    def to_python(self, value):
        if value in (None, ""):
            return None
        try:
            return BOOLEAN_CHOICES[str(value).lower()]
        except KeyError:
            raise forms.ValidationError(NOT_A_BOOLEAN) from None


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanFormField


class OrderFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    symbol = django_filters.CharFilter(max_length=64)
    active = StrictBooleanFilter(method="filter_active", label="Active orders only")

    class Meta:
        model = Order
        fields = ["status", "symbol", "active"]

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.filter(status__in=Order.ACTIVE_STATUSES)
        return queryset.exclude(status__in=Order.ACTIVE_STATUSES)
