"""The paper venue's own read: its trades (what a bot reads from a real venue's trade list).

A bot trading a paper account learns its executions here, from the venue, not from
tradingstate's Fill rows, and posts them as fills (``POST .../fills/``, idempotent on
``trade_id``): the same loop it runs against a real exchange.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers

from tradingstate.api import filtersets
from tradingstate.api.fields import AmountField
from tradingstate.errors import NotFound
from tradingstate.models import Order, PaperTrade
from tradingstate.selectors import paper_trade_list
from tradingstate.services.paper import is_paper
from tradingstate.web.base import AccountListApi
from tradingstate.web.filters import StrictFilterBackend
from tradingstate.web.pagination import ApiCursorPagination

NOT_A_PAPER_ACCOUNT = "Account '{name}' is not a paper account: it has no paper venue."
NAIVE_SINCE = filtersets.NAIVE_SINCE
AwareIsoDateTimeField = filtersets.AwareIsoDateTimeField
AwareIsoDateTimeFilter = filtersets.AwareIsoDateTimeFilter


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
    filter_backends = [StrictFilterBackend]
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
