"""Orders: list and register, detail, transition, bulk transition."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from tradingstate.actors import Actor
from tradingstate.api.fields import (
    AmountField,
    ClientOrderIdField,
    ReasonField,
    StrictCharField,
    StrictIntegerField,
)
from tradingstate.api.filtersets import OrderFilterSet
from tradingstate.api.guards import order_register_checked
from tradingstate.api.serializers import (
    ErrorSerializer,
    InputSerializer,
    OrderDetailOutputSerializer,
    OrderOutputSerializer,
    represent,
    validated_input,
)
from tradingstate.errors import NotFound
from tradingstate.models import Order
from tradingstate.selectors import fills_of_order, order_get, order_list
from tradingstate.services import (
    TransitionRequest,
    order_bulk_transition,
    order_transition,
)
from tradingstate.services.orders import ORDER_NOT_FOUND
from tradingstate.web.base import AccountApi, AccountListApi
from tradingstate.web.errors import (
    NON_FIELD,
    application_error_body,
    error_body,
    validation_error_body,
)
from tradingstate.web.filters import StrictFilterBackend

STATUS_CHOICES = Order.Status.choices
TOO_MANY_UPDATES = "At most {limit} updates per request (got {count})."
UPDATES_EMPTY = "Give at least one update."
NOT_AN_OBJECT = "Each update must be a JSON object."

ORDER_TAG = ["orders"]


class OrderListRegisterApi(AccountListApi):
    """GET: the account's orders, newest first. POST: register a new order (idempotent on
    ``client_order_id``: same content 200 with the existing order, different content 409)."""

    model = Order
    selector = staticmethod(order_list)
    serializer_class = OrderOutputSerializer
    filter_backends = [StrictFilterBackend]
    filterset_class = OrderFilterSet

    class InputSerializer(InputSerializer):
        client_order_id = ClientOrderIdField()
        symbol = StrictCharField(max_length=64)
        side = serializers.ChoiceField(choices=Order.Side.choices)
        type = serializers.ChoiceField(choices=Order.Type.choices, required=False)
        quantity = AmountField(positive=True)
        price = AmountField(non_negative=True, required=False, allow_null=True)
        strategy_id = StrictCharField(max_length=64, required=False, allow_blank=True)
        reason = ReasonField()

        class Meta:
            ref_name = "OrderRegisterInput"

    @extend_schema(tags=ORDER_TAG, summary="List orders")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=ORDER_TAG,
        summary="Register an order",
        request=InputSerializer,
        responses={
            201: OpenApiResponse(OrderOutputSerializer, description="Registered."),
            200: OpenApiResponse(
                OrderOutputSerializer, description="Already registered with the same content."
            ),
            423: OpenApiResponse(ErrorSerializer, description="The kill switch is active."),
            503: OpenApiResponse(
                ErrorSerializer, description="Reconciliation after a restart is in progress."
            ),
        },
    )
    def post(self, request, account):
        data = validated_input(self.InputSerializer, request.data)
        order, created = order_register_checked(
            account=self.account, actor=Actor.from_request(request), **data
        )
        return Response(
            represent(OrderOutputSerializer, order),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class OrderDetailApi(AccountApi):
    @extend_schema(
        tags=ORDER_TAG, summary="One order, with its fills", responses=OrderDetailOutputSerializer
    )
    def get(self, request, account, client_order_id):
        order = order_get(account=self.account, client_order_id=client_order_id)
        if order is None:
            raise NotFound(
                ORDER_NOT_FOUND.format(
                    client_order_id=client_order_id[:64], account=self.account.name
                )
            )
        order.fill_rows = fills_of_order(order=order)
        return Response(OrderDetailOutputSerializer(order).data)


class TransitionFieldsSerializer(InputSerializer):
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    filled_qty = AmountField(non_negative=True, required=False, allow_null=True)
    avg_fill_price = AmountField(non_negative=True, required=False, allow_null=True)
    exchange_order_id = StrictCharField(max_length=128, required=False, allow_blank=True)
    expected_version = StrictIntegerField(
        min_value=1, max_value=2**63 - 1, required=False, allow_null=True
    )
    reason = ReasonField()


class OrderTransitionApi(AccountApi):
    """Move the order along the status machine; an illegal move is 409 and changes nothing."""

    class InputSerializer(TransitionFieldsSerializer):
        class Meta:
            ref_name = "OrderTransitionInput"

    @extend_schema(
        tags=ORDER_TAG,
        summary="Change an order's status",
        request=InputSerializer,
        responses={200: OrderOutputSerializer},
    )
    def post(self, request, account, client_order_id):
        data = validated_input(self.InputSerializer, request.data)
        order = order_transition(
            account=self.account,
            client_order_id=client_order_id,
            to_status=data.pop("status"),
            actor=Actor.from_request(request),
            **data,
        )
        return Response(represent(OrderOutputSerializer, order))


class BulkTransitionItemSerializer(TransitionFieldsSerializer):
    client_order_id = ClientOrderIdField()

    class Meta:
        ref_name = "OrderBulkTransitionItem"


class BulkTransitionResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    client_order_id = serializers.CharField(allow_null=True)
    ok = serializers.BooleanField()
    status = serializers.CharField(required=False)
    version = serializers.IntegerField(required=False)
    filled_qty = AmountField(required=False)
    error = ErrorSerializer(required=False)

    class Meta:
        ref_name = "OrderBulkTransitionResult"


class BulkUpdatesField(serializers.ListField):
    """The items, counted before any is looked at: the count was checked after every item
    had been validated (a 200,000-item body cost seconds of CPU before its 400)."""

    def to_internal_value(self, data):
        if isinstance(data, list):
            limit = settings.TRADINGSTATE.api.bulk_max_items
            if not data:
                raise serializers.ValidationError(UPDATES_EMPTY)
            if len(data) > limit:
                raise serializers.ValidationError(
                    TOO_MANY_UPDATES.format(limit=limit, count=len(data))
                )
        return super().to_internal_value(data)


class OrderBulkTransitionApi(AccountApi):
    """Many transitions in one call: each item's result is reported; the valid ones are
    applied (in one transaction), the others change nothing."""

    ItemSerializer = BulkTransitionItemSerializer

    class InputSerializer(InputSerializer):
        # items are validated one by one in the view, so one bad item does not sink the rest
        updates = BulkUpdatesField(child=serializers.JSONField(allow_null=True))  # null too

        class Meta:
            ref_name = "OrderBulkTransitionEnvelope"

    class RequestSchemaSerializer(serializers.Serializer):
        # what the server enforces on the envelope: 1..bulk_max_items items, each any JSON
        # value; each item is then checked on its own (OrderBulkTransitionItem: client_order_id,
        # status, filled_qty, avg_fill_price, exchange_order_id, expected_version, reason) and
        # a malformed one fails alone, reported in `results` (it does not sink the request)
        updates = serializers.ListField(
            child=serializers.JSONField(),
            min_length=1,
            max_length=settings.TRADINGSTATE.api.bulk_max_items,
            help_text=(
                "Transitions, each {client_order_id, status, filled_qty?, avg_fill_price?, "
                "exchange_order_id?, expected_version?, reason?} as for the single transition. "
                "Each item is validated on its own: a malformed or refused item fails alone "
                "and is reported in `results` with its error."
            ),
        )

        class Meta:
            ref_name = "OrderBulkTransitionInput"

    class OutputSerializer(serializers.Serializer):
        applied = serializers.IntegerField()
        failed = serializers.IntegerField()
        results = BulkTransitionResultSerializer(many=True)

        class Meta:
            ref_name = "OrderBulkTransitionOutput"

    @extend_schema(
        tags=ORDER_TAG,
        summary="Change many orders' statuses",
        request=RequestSchemaSerializer,
        responses={200: OutputSerializer},
    )
    def post(self, request, account):
        updates = validated_input(self.InputSerializer, request.data)["updates"]
        results: list[dict] = [{} for _ in updates]
        requests: list[TransitionRequest] = []
        indexes: list[int] = []
        for index, raw in enumerate(updates):
            item = self._validate_item(raw)
            if isinstance(item, TransitionRequest):
                requests.append(item)
                indexes.append(index)
            else:
                results[index] = {
                    "index": index,
                    "client_order_id": _coid(raw),
                    "ok": False,
                    **item,
                }
        outcomes = []
        if requests:
            outcomes = order_bulk_transition(
                account=self.account, requests=requests, actor=Actor.from_request(request)
            )
        for index, outcome in zip(indexes, outcomes, strict=True):
            entry = {"index": index, "client_order_id": outcome.client_order_id, "ok": outcome.ok}
            if outcome.ok:
                entry.update(
                    status=outcome.status, version=outcome.version, filled_qty=outcome.filled_qty
                )
            else:
                entry["error"] = application_error_body(outcome.error)
            results[index] = entry
        applied = sum(1 for r in results if r["ok"])
        body = {
            "applied": applied,
            "failed": len(results) - applied,
            "results": BulkTransitionResultSerializer(results, many=True).data,
        }
        return Response(body)

    def _validate_item(self, raw) -> TransitionRequest | dict:
        if not isinstance(raw, dict):
            fields = {NON_FIELD: [NOT_AN_OBJECT]}
            return {"error": error_body("validation_error", NOT_AN_OBJECT, fields)}
        # one serializer for every item: building one per item deep-copies its fields each
        # time (most of a 1,000-item call); validation itself keeps no per-item state
        serializer = getattr(self, "_item_serializer", None)
        if serializer is None:
            serializer = self._item_serializer = self.ItemSerializer()
        try:
            data = serializer.run_validation(raw)
        except serializers.ValidationError as exc:  # what is_valid() would report
            return {"error": validation_error_body(exc.detail)}
        return TransitionRequest(
            client_order_id=data["client_order_id"],
            status=data["status"],
            filled_qty=data.get("filled_qty"),
            avg_fill_price=data.get("avg_fill_price"),
            exchange_order_id=data.get("exchange_order_id"),
            expected_version=data.get("expected_version"),
            reason=data.get("reason", ""),
        )


def _coid(raw) -> str | None:
    value = raw.get("client_order_id") if isinstance(raw, dict) else None
    return value[:64] if isinstance(value, str) else None
