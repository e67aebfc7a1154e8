"""The paper venue's own read: its trades (what a bot reads from a real venue's trade list).

A bot trading a paper account learns its executions here, from the venue, not from
tradingstate's Fill rows, and posts them as fills (``POST .../fills/``, idempotent on
``trade_id``): the same loop it runs against a real exchange.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from tradingstate.api.fields import AmountField
from tradingstate.errors import NotFound
from tradingstate.models import Order, PaperTrade
from tradingstate.selectors import paper_trade_list
from tradingstate.services.paper import is_paper
from tradingstate.web.base import AccountListApi
from tradingstate.web.pagination import ApiCursorPagination

NOT_A_PAPER_ACCOUNT = "Account '{name}' is not a paper account: it has no paper venue."
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


class PaperTradeFilterSet(django_filters.FilterSet):
    since = AwareIsoDateTimeFilter(
        field_name="executed_at",
        lookup_expr="gte",
        label="Trades executed at or after this time (ISO 8601 with a timezone)",
    )
    order = django_filters.CharFilter(
        field_name="client_order_id", max_length=64, label="The order's client_order_id"
    )
    exchange_order_id = django_filters.CharFilter(max_length=64)
    symbol = django_filters.CharFilter(max_length=64)

    class Meta:
        model = PaperTrade
        fields = ["since", "order", "exchange_order_id", "symbol"]


class OldestFirstPagination(ApiCursorPagination):
    ordering = "id"  # trades in the order the venue executed them


class PaperTradeListApi(AccountListApi):
    """The paper venue's trades on this account, oldest first (paper accounts only; 404
    otherwise). Filter by ``since``, ``order`` (client order id), ``exchange_order_id``,
    ``symbol``. Post each one as a fill (``POST .../fills/``, idempotent on ``trade_id``)."""

    model = PaperTrade
    selector = staticmethod(paper_trade_list)
    pagination_class = OldestFirstPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = PaperTradeFilterSet

    class OutputSerializer(serializers.Serializer):
        trade_id = serializers.CharField()
        exchange_order_id = serializers.CharField()
        client_order_id = serializers.CharField()
        symbol = serializers.CharField()
        side = serializers.ChoiceField(choices=Order.Side.choices)
        quantity = AmountField()
        price = AmountField()
        fee = AmountField()
        fee_currency = serializers.CharField()
        liquidity = serializers.ChoiceField(choices=PaperTrade.Liquidity.choices)
        executed_at = serializers.DateTimeField()

        class Meta:
            ref_name = "PaperTrade"

    serializer_class = OutputSerializer

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not is_paper(self.account):
            raise NotFound(NOT_A_PAPER_ACCOUNT.format(name=self.account.name), fields={})

    @extend_schema(tags=["paper venue"], summary="List the paper venue's trades")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
