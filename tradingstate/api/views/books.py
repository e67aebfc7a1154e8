"""Fills, positions and balances."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tradingstate.actors import Actor
from tradingstate.api.fields import (
    AmountField,
    ClientOrderIdField,
    ReasonField,
    StrictBooleanField,
    StrictCharField,
    StrictIntegerField,
)
from tradingstate.api.filtersets import FillFilterSet
from tradingstate.api.serializers import (
    BalanceOutputSerializer,
    FillOutputSerializer,
    InputSerializer,
    PositionOutputSerializer,
    represent,
    validated_input,
)
from tradingstate.models import Balance, Fill, Position
from tradingstate.selectors import balance_list, fill_list, position_list
from tradingstate.services import balance_set, fill_record, position_set
from tradingstate.web.base import AccountApi, AccountListApi
from tradingstate.web.filters import StrictFilterBackend

NAIVE_DATETIME = "must include a timezone (e.g. 2026-01-01T00:00:00Z)"
DATE_ONLY = "must be a moment, not a date: a time and its timezone (e.g. 2026-01-01T00:00:00Z)"


class AwareDateTimeField(serializers.DateTimeField):
    """A timestamp with its timezone: a naive one is refused, not read as server time."""

    default_error_messages = {"naive": NAIVE_DATETIME, "date_only": DATE_ONLY}

    def to_internal_value(self, value):
        # Python reads "2026-01-01" as a naive midnight: say what is missing, the time
        if isinstance(value, str) and "T" not in value.upper() and " " not in value.strip():
            self.fail("date_only")
        return super().to_internal_value(value)

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


VERSION_FIELD = {"min_value": 0, "max_value": 2**63 - 1, "required": False, "allow_null": True}


class FillRecordApi(AccountListApi):
    """GET: the account's fills, newest first (issue 14): the bots' and those reconciliation
    recorded (``origin``), inferred ones flagged (``inferred``), external trades with no order
    (``order`` null). Filter by ``symbol``, ``order`` (client order id), ``origin``,
    ``inferred``, ``external``, ``since``/``until`` (executed time); cursor-paginated.

    POST: record a fill of an order. Idempotent on the trade (``trade_id`` within the order's
    symbol): 201 new, 200 already recorded (by the bot or by a reconciliation pass: no second
    effect), 409 for the same trade id with other content or an overfill."""

    model = Fill
    selector = staticmethod(fill_list)
    serializer_class = FillOutputSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = FillFilterSet

    @extend_schema(tags=["fills"], summary="List fills")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    class InputSerializer(InputSerializer):
        client_order_id = ClientOrderIdField()
        trade_id = StrictCharField(max_length=128)
        quantity = AmountField(positive=True)
        price = AmountField(non_negative=True)
        fee = AmountField(required=False)
        fee_currency = StrictCharField(max_length=32, required=False, allow_blank=True)
        executed_at = AwareDateTimeField(required=False)
        is_maker = StrictBooleanField(required=False, allow_null=True)
        reason = ReasonField()

        class Meta:
            ref_name = "FillRecordInput"

    class OutputSerializer(serializers.Serializer):
        class OrderStateSerializer(serializers.Serializer):
            status = serializers.CharField()
            filled_qty = AmountField()
            remaining_qty = AmountField()
            avg_fill_price = AmountField(allow_null=True)
            version = serializers.IntegerField()

            class Meta:
                ref_name = "FillOrderState"

        trade_id = serializers.CharField()
        client_order_id = serializers.CharField(source="order.client_order_id")
        symbol = serializers.CharField()
        origin = serializers.ChoiceField(choices=Fill.Origin.choices)
        inferred = serializers.BooleanField()
        quantity = AmountField()
        price = AmountField()
        fee = AmountField()
        fee_currency = serializers.CharField()
        executed_at = serializers.DateTimeField()
        created_at = serializers.DateTimeField()
        order = OrderStateSerializer()

        class Meta:
            ref_name = "Fill"

    @extend_schema(
        tags=["fills"],
        summary="Record a fill",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(OutputSerializer, description="Recorded."),
            200: OpenApiResponse(OutputSerializer, description="Already recorded."),
        },
    )
    def post(self, request, account):
        data = validated_input(self.InputSerializer, request.data)
        fill, created = fill_record(account=self.account, actor=Actor.from_request(request), **data)
        return Response(
            represent(self.OutputSerializer, fill),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class PositionListApi(AccountListApi):
    model = Position
    selector = staticmethod(position_list)
    serializer_class = PositionOutputSerializer

    @extend_schema(tags=["positions"], summary="List positions")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class PositionSetApi(AccountApi):
    """Set the local position for ``symbol`` (URL-encoded: ``BTC%2FUSDT``)."""

    class InputSerializer(InputSerializer):
        qty = AmountField()
        entry_price = AmountField(non_negative=True, required=False, allow_null=True)
        expected_version = StrictIntegerField(**VERSION_FIELD)
        reason = ReasonField()

        class Meta:
            ref_name = "PositionSetInput"

    @extend_schema(
        tags=["positions"],
        summary="Set a position",
        request=InputSerializer,
        responses={200: PositionOutputSerializer},
    )
    def put(self, request, account, symbol):
        data = validated_input(self.InputSerializer, request.data)
        position = position_set(
            account=self.account, symbol=symbol, actor=Actor.from_request(request), **data
        )
        return Response(PositionOutputSerializer(position).data)


class BalanceListApi(AccountListApi):
    model = Balance
    selector = staticmethod(balance_list)
    serializer_class = BalanceOutputSerializer

    @extend_schema(tags=["balances"], summary="List balances")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class BalanceSetApi(AccountApi):
    """Set the local balance of ``currency``: give total, free, or both (used defaults to 0)."""

    class InputSerializer(InputSerializer):
        total = AmountField(required=False)
        free = AmountField(required=False)
        used = AmountField(non_negative=True, required=False)
        expected_version = StrictIntegerField(**VERSION_FIELD)
        reason = ReasonField()

        class Meta:
            ref_name = "BalanceSetInput"

    @extend_schema(
        tags=["balances"],
        summary="Set a balance",
        request=InputSerializer,
        responses={200: BalanceOutputSerializer},
    )
    def put(self, request, account, currency):
        data = validated_input(self.InputSerializer, request.data)
        balance = balance_set(
            account=self.account, currency=currency, actor=Actor.from_request(request), **data
        )
        return Response(BalanceOutputSerializer(balance).data)
