"""P&L and exposure (issue 15 item 6): the figures of ``tradingstate.selectors.pnl``.

``GET /api/v1/accounts/{account}/pnl/`` (``?since=``), ``.../pnl/history/`` (``?from=&to=``),
``GET /api/v1/exposure/`` (the caller's accounts only). Amounts are strings in the published
decimal pattern; a figure that needs a price nobody has is null, never zero.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from tradingstate.api.access import account_list_visible
from tradingstate.api.fields import AmountField, FigureField
from tradingstate.api.serializers import InputSerializer, validated_input
from tradingstate.api.views.books import AwareDateTimeField
from tradingstate.models import PnlSnapshot
from tradingstate.selectors.pnl import exposure_report, pnl_history, pnl_report
from tradingstate.web.base import AccountApi, AccountListApi, BaseApi
from tradingstate.web.pagination import ApiCursorPagination

FROM_AFTER_TO = "must not be after 'to'"


class _Strict(serializers.Serializer):
    """Output shapes: every field is always present (required) in the published schema."""


class PnlPositionSerializer(_Strict):
    symbol = serializers.CharField()
    qty = AmountField()
    avg_entry_price = AmountField(allow_null=True)
    mark_price = AmountField(allow_null=True)
    mark_time = serializers.DateTimeField(allow_null=True)
    mark_stale = serializers.BooleanField()
    realized_pnl = FigureField(allow_null=True)
    unrealized_pnl = FigureField(allow_null=True)
    fees = FigureField(allow_null=True)
    net_pnl = FigureField(allow_null=True)

    class Meta:
        ref_name = "PnlPosition"


class PnlTotalsSerializer(_Strict):
    realized_pnl = FigureField(allow_null=True)
    unrealized_pnl = FigureField(allow_null=True)
    fees = FigureField(allow_null=True)
    net_pnl = FigureField(allow_null=True)

    class Meta:
        ref_name = "PnlTotals"


class PnlSerializer(_Strict):
    account = serializers.CharField()
    valuation_currency = serializers.CharField()
    as_of = serializers.DateTimeField()
    positions = PnlPositionSerializer(many=True)
    totals = PnlTotalsSerializer()

    class Meta:
        ref_name = "Pnl"


class PnlApi(AccountApi):
    """Per position: quantity, average entry price, mark, realized and unrealized P&L, fees
    and net (``realized + unrealized - fees``), in the valuation currency. ``?since=T``
    restricts the realized P&L and fees to the fills executed since ``T``. ``mark_stale`` is
    true when a price used is older than ``mark_price_max_age_seconds`` or its last refresh
    failed; a figure with no price at all is null, and so is any total it is part of."""

    class QuerySerializer(InputSerializer):
        since = AwareDateTimeField(required=False)

        class Meta:
            ref_name = "PnlQuery"

    @extend_schema(
        tags=["pnl"],
        summary="P&L of an account",
        parameters=[OpenApiParameter("since", OpenApiTypes.DATETIME, OpenApiParameter.QUERY)],
        responses={200: PnlSerializer},
    )
    def get(self, request, account):
        query = validated_input(self.QuerySerializer, request.query_params.dict())
        report = pnl_report(self.account, since=query.get("since"))
        return Response(PnlSerializer(report).data)


class PnlPointSerializer(_Strict):
    as_of = serializers.DateTimeField(source="taken_at")
    valuation_currency = serializers.CharField()
    realized_pnl = FigureField(allow_null=True)
    unrealized_pnl = FigureField(allow_null=True)
    fees = FigureField(allow_null=True)
    net_pnl = FigureField(allow_null=True)
    net_notional = FigureField(allow_null=True)
    gross_notional = FigureField(allow_null=True)
    stale = serializers.BooleanField()

    class Meta:
        ref_name = "PnlPoint"


class HistoryPagination(ApiCursorPagination):
    ordering = "-taken_at"  # unique per account


class PnlHistoryApi(AccountListApi):
    """The account's hourly P&L and exposure snapshots (newest first), recorded by the
    worker; ``?from=`` and ``?to=`` bound their time (inclusive)."""

    model = PnlSnapshot
    pagination_class = HistoryPagination
    serializer_class = PnlPointSerializer

    class QuerySerializer(InputSerializer):
        # "from" is a Python keyword: declared below
        to = AwareDateTimeField(required=False)
        cursor = serializers.CharField(required=False)
        page_size = serializers.CharField(required=False)

        class Meta:
            ref_name = "PnlHistoryQuery"

        def validate(self, attrs):
            start, end = attrs.get("from"), attrs.get("to")
            if start is not None and end is not None and start > end:
                raise serializers.ValidationError({"from": [FROM_AFTER_TO]})
            return attrs

    QuerySerializer._declared_fields["from"] = AwareDateTimeField(required=False)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return PnlSnapshot.objects.none()
        query = validated_input(self.QuerySerializer, self.request.query_params.dict())
        return pnl_history(account=self.account, start=query.get("from"), end=query.get("to"))

    @extend_schema(
        tags=["pnl"],
        summary="Hourly P&L history of an account",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATETIME, OpenApiParameter.QUERY),
            OpenApiParameter("to", OpenApiTypes.DATETIME, OpenApiParameter.QUERY),
        ],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class ExposureShareSerializer(_Strict):
    venue = serializers.CharField()
    net_qty = FigureField()
    net_notional = FigureField(allow_null=True)
    gross_notional = FigureField(allow_null=True)
    mark_stale = serializers.BooleanField()

    class Meta:
        ref_name = "ExposureShare"


class ExposureAssetSerializer(_Strict):
    asset = serializers.CharField()
    net_qty = FigureField()
    net_notional = FigureField(allow_null=True)
    gross_notional = FigureField(allow_null=True)
    mark_stale = serializers.BooleanField()
    by_account = serializers.DictField(child=ExposureShareSerializer())
    by_venue = serializers.DictField(child=ExposureShareSerializer())

    class Meta:
        ref_name = "ExposureAsset"


class ExposureTotalsSerializer(_Strict):
    net_notional = FigureField(allow_null=True)
    gross_notional = FigureField(allow_null=True)
    excluded_assets = serializers.ListField(child=serializers.CharField())
    stale_assets = serializers.ListField(child=serializers.CharField())

    class Meta:
        ref_name = "ExposureTotals"


class ExposureSerializer(_Strict):
    as_of = serializers.DateTimeField()
    valuation_currency = serializers.CharField()
    assets = ExposureAssetSerializer(many=True)
    totals = ExposureTotalsSerializer(source="*")

    class Meta:
        ref_name = "Exposure"


class ExposureApi(BaseApi):
    """Net quantity, net and gross notional per asset in the valuation currency, from the
    derivative accounts' positions and the spot accounts' balances valued at mark, with the
    per-account and per-venue breakdowns. A bot sees only its granted accounts. An asset with
    no price has null notionals and is listed in ``totals.excluded_assets``; the totals are
    then null (never a partial sum); ``mark_stale`` flags stale prices at every level."""

    @extend_schema(
        tags=["pnl"],
        summary="Exposure across the caller's accounts",
        responses={200: ExposureSerializer},
    )
    def get(self, request):
        report = exposure_report(account_list_visible(request.user))
        return Response(ExposureSerializer(report).data)
