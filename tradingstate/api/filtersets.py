"""Filters for the list endpoints (django-filter)."""

from __future__ import annotations

import django_filters

from tradingstate.models import Order


class OrderFilterSet(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=Order.Status.choices)
    symbol = django_filters.CharFilter(max_length=64)
    active = django_filters.BooleanFilter(method="filter_active", label="Active orders only")

    class Meta:
        model = Order
        fields = ["status", "symbol", "active"]

    def filter_active(self, queryset, name, value):
        if value is None:
            return queryset
        if value:
            return queryset.filter(status__in=Order.ACTIVE_STATUSES)
        return queryset.exclude(status__in=Order.ACTIVE_STATUSES)
