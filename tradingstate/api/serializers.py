"""Base input serializer (unknown fields refused) and the shared output shapes."""

from __future__ import annotations

import threading
from collections.abc import Mapping

from rest_framework import serializers

from tradingstate.api.fields import AmountField
from tradingstate.models import Fill, Order

UNKNOWN_FIELD = "Unknown field."


class InputSerializer(serializers.Serializer):
    """Validates a request body. Fields it does not declare are refused (400 naming them):
    no mass assignment of status, version, account, is_staff, ..."""

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = sorted(str(key) for key in data if key not in self.fields)
            if unknown:
                raise serializers.ValidationError({name: [UNKNOWN_FIELD] for name in unknown})
        return super().to_internal_value(data)


def validated_input(serializer_class: type[InputSerializer], data) -> dict:
    """``serializer_class(data=data).is_valid(raise_exception=True)``'s validated data.

    One serializer per class and thread validates every request (validation keeps no
    per-call state): building one per request deep-copies all its fields, about a
    millisecond of a bot's every write (bench line ``api endpoint=register``)."""
    serializer = shared_serializer(serializer_class)
    try:
        return dict(serializer.run_validation(data))
    except serializers.ValidationError as exc:  # what is_valid(raise_exception=True) raises
        raise serializers.ValidationError(exc.detail) from None


_shared = threading.local()


def shared_serializer(serializer_class: type[serializers.Serializer]) -> serializers.Serializer:
    """This thread's one instance of ``serializer_class`` (built with no data or instance),
    for ``run_validation`` / ``to_representation`` on the hot paths."""
    cache = getattr(_shared, "serializers", None)
    if cache is None:
        cache = _shared.serializers = {}
    serializer = cache.get(serializer_class)
    if serializer is None:
        serializer = cache[serializer_class] = serializer_class()
    return serializer


def represent(serializer_class: type[serializers.Serializer], instance) -> dict:
    """``serializer_class(instance).data`` through the thread's shared instance."""
    return shared_serializer(serializer_class).to_representation(instance)


class ErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="A stable machine-readable code.")
    detail = serializers.CharField(help_text="A human-readable message.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per field (dotted paths for nested input).",
    )

    class Meta:
        ref_name = "Error"


class OrderOutputSerializer(serializers.Serializer):
    account = serializers.CharField(source="account.name")
    client_order_id = serializers.CharField()
    exchange_order_id = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=Order.Side.choices)
    type = serializers.ChoiceField(choices=Order.Type.choices)
    quantity = AmountField()
    price = AmountField(allow_null=True)
    filled_qty = AmountField()
    remaining_qty = AmountField()
    avg_fill_price = AmountField(allow_null=True)
    status = serializers.ChoiceField(choices=Order.Status.choices)
    strategy_id = serializers.CharField()
    origin = serializers.ChoiceField(choices=Order.Origin.choices)
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Order"


class FillOutputSerializer(serializers.Serializer):
    """A fill (issue 14). ``client_order_id``: the local order's (null for an external trade
    recorded against no order); ``reported_client_order_id``/``exchange_order_id``: the ids
    as the venue (or the bot) reported them with the trade."""

    trade_id = serializers.CharField()
    client_order_id = serializers.CharField(
        source="order.client_order_id",
        allow_null=True,
        default=None,
        help_text="The local order's client order id; null for an external trade.",
    )
    reported_client_order_id = serializers.CharField(
        source="client_order_id", help_text="The client order id the venue reported, if any."
    )
    exchange_order_id = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=Order.Side.choices)
    quantity = AmountField()
    price = AmountField()
    fee = AmountField()
    fee_currency = serializers.CharField()
    is_maker = serializers.BooleanField(allow_null=True)
    origin = serializers.ChoiceField(choices=Fill.Origin.choices)
    inferred = serializers.BooleanField(help_text="The venue said filled but gave no trades.")
    external = serializers.SerializerMethodField(help_text="Recorded against no local order.")
    realized_pnl = AmountField()
    fee_quote = AmountField()
    executed_at = serializers.DateTimeField()
    created_at = serializers.DateTimeField()

    class Meta:
        ref_name = "FillItem"

    def get_external(self, fill) -> bool:
        return fill.order_id is None


class OrderDetailOutputSerializer(OrderOutputSerializer):
    """An order with its fills, oldest first (issue 14)."""

    fills_qty = AmountField(help_text="The sum of its fills (equals filled_qty after a pass).")
    fills = FillOutputSerializer(many=True, source="fill_rows")

    class Meta:
        ref_name = "OrderDetail"


class PositionOutputSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    qty = AmountField()
    entry_price = AmountField(allow_null=True)
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Position"


class BalanceOutputSerializer(serializers.Serializer):
    currency = serializers.CharField()
    free = AmountField()
    used = AmountField()
    total = AmountField()
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField()

    class Meta:
        ref_name = "Balance"
