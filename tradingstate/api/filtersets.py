"""Filters for the list endpoints (django-filter)."""

from __future__ import annotations

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from tradingstate.models import Fill, Order

NAIVE_SINCE = "must include a timezone (e.g. 2026-01-01T00:00:00Z)"


class AwareIsoDateTimeField(django_filters.fields.IsoDateTimeField):
    default_error_messages = {"naive": NAIVE_SINCE}

    def to_python(self, value):
        if value == "":  # given but empty: not "no filter" (the schema says date-time)
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        # the parent would read a naive time as the server's zone: refuse it instead
        parsed = parse_datetime(value.strip()) if isinstance(value, str) else None
        if parsed is not None and timezone.is_naive(parsed):
            raise forms.ValidationError(self.error_messages["naive"], code="naive")
        return super().to_python(value)


class AwareIsoDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = AwareIsoDateTimeField


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


class FillFilterSet(django_filters.FilterSet):
    """``GET .../fills/`` (issue 14): by symbol, order (its client order id), origin,
    inferred, and executed time (``since`` inclusive, ``until`` exclusive)."""

    symbol = django_filters.CharFilter(max_length=64)
    order = django_filters.CharFilter(
        field_name="order__client_order_id", max_length=64, label="The order's client_order_id"
    )
    origin = django_filters.ChoiceFilter(choices=Fill.Origin.choices)
    inferred = StrictBooleanFilter()
    external = StrictBooleanFilter(
        field_name="order", lookup_expr="isnull", label="Trades recorded against no order"
    )
    since = AwareIsoDateTimeFilter(
        field_name="executed_at",
        lookup_expr="gte",
        label="Executed at or after this time (ISO 8601 with a timezone)",
    )
    until = AwareIsoDateTimeFilter(
        field_name="executed_at",
        lookup_expr="lt",
        label="Executed before this time (ISO 8601 with a timezone)",
    )

    class Meta:
        model = Fill
        fields = ["symbol", "order", "origin", "inferred", "external", "since", "until"]
