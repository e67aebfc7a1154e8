"""Reconciliation runs (list, trigger) and discrepancies (list) for one account."""

from __future__ import annotations

import re
from decimal import Decimal

import django_filters
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from reconciliation.analytics import discrepancy_stats
from reconciliation.asof import account_state_with_exchange_at
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.selectors import discrepancy_list, run_list
from reconciliation.services import reconciliation_request, wait_budget
from tradingstate.actors import Actor
from tradingstate.api.access import account_get_visible, account_list_visible
from tradingstate.api.fields import AmountField, StrictBooleanField
from tradingstate.api.filtersets import StrictBooleanFilter
from tradingstate.api.serializers import InputSerializer, validated_input
from tradingstate.api.views.books import AwareDateTimeField
from tradingstate.web.base import AccountApi, AccountListApi, BaseApi
from tradingstate.web.filters import StrictFilterBackend

WAIT_VALUES = {"true": True, "1": True, "false": False, "0": False}
WAIT_INVALID = "Use wait=true or wait=false."
TIMEOUT_PATTERN = re.compile(r"[0-9]{1,6}(\.[0-9]{1,3})?\Z")
TIMEOUT_INVALID = "Seconds, more than 0 (for example 5 or 2.5)."
TIMEOUT_WITHOUT_WAIT = "Only with wait=true."


def _wait_seconds(params) -> float | None:
    """``?wait=true`` [``&timeout=<seconds>``] -> how long this request may wait for the
    pass (None: queue it). The server waits at most its ``api.reconcile_wait_seconds``."""
    wait = WAIT_VALUES.get(params.get("wait", "false").lower())
    if wait is None:
        raise serializers.ValidationError({"wait": [WAIT_INVALID]})
    timeout = params.get("timeout")
    if timeout is None:
        return wait_budget(None) if wait else None
    if not wait:
        raise serializers.ValidationError({"timeout": [TIMEOUT_WITHOUT_WAIT]})
    if not TIMEOUT_PATTERN.match(timeout) or Decimal(timeout) <= 0:
        raise serializers.ValidationError({"timeout": [TIMEOUT_INVALID]})
    return wait_budget(float(timeout))


class ReconciliationRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    account = serializers.CharField(source="account.name")
    trigger = serializers.CharField()
    status = serializers.CharField()
    dry_run = serializers.BooleanField()
    requested_by = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    orders_synced = serializers.IntegerField()
    positions_synced = serializers.IntegerField()
    balances_synced = serializers.IntegerField()
    discrepancies_found = serializers.IntegerField()
    repairs_applied = serializers.IntegerField()
    repairs_deferred = serializers.IntegerField()
    error = serializers.CharField()

    class Meta:
        ref_name = "ReconciliationRun"


class ReconciliationListTriggerApi(AccountListApi):
    """GET: the account's passes, newest first. POST: request a pass now (202 with the queued
    run, for the worker); with ``?wait=true`` run it here, synchronously, for at most
    ``api.reconcile_wait_seconds`` or ``?timeout=<seconds>``, whichever is shorter (200 with
    the finished run, or 202 if it is still running)."""

    model = ReconciliationRun
    selector = staticmethod(run_list)
    serializer_class = ReconciliationRunOutputSerializer

    class InputSerializer(InputSerializer):
        dry_run = StrictBooleanField(required=False, default=False)

        class Meta:
            ref_name = "ReconciliationTriggerInput"

    @extend_schema(tags=["reconciliation"], summary="List reconciliation runs")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        tags=["reconciliation"],
        summary="Reconcile now",
        parameters=[
            OpenApiParameter("wait", OpenApiTypes.BOOL, OpenApiParameter.QUERY),
            OpenApiParameter(
                "timeout",
                OpenApiTypes.NUMBER,
                OpenApiParameter.QUERY,
                description="With wait=true: wait at most this many seconds (and at most the "
                "server's api.reconcile_wait_seconds), then answer 202 with the run as it "
                "stands.",
            ),
        ],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(ReconciliationRunOutputSerializer, description="Queued."),
            200: OpenApiResponse(ReconciliationRunOutputSerializer, description="Finished."),
        },
    )
    def post(self, request, account):
        wait_seconds = _wait_seconds(request.query_params)
        data = validated_input(self.InputSerializer, request.data)
        run = reconciliation_request(
            account=self.account,
            trigger=ReconciliationRun.Trigger.API,
            actor=Actor.from_request(request),
            dry_run=data["dry_run"],
            wait_seconds=wait_seconds,
        )
        finished = run.status in ReconciliationRun.FINISHED_STATUSES
        return Response(
            ReconciliationRunOutputSerializer(run).data,
            status=status.HTTP_200_OK if finished else status.HTTP_202_ACCEPTED,
        )


class DiscrepancyFilterSet(django_filters.FilterSet):
    type = django_filters.ChoiceFilter(choices=Discrepancy.Type.choices)
    status = django_filters.ChoiceFilter(choices=Discrepancy.Status.choices)
    persistent = StrictBooleanFilter()

    class Meta:
        model = Discrepancy
        fields = ["type", "status", "persistent"]


class DiscrepancyListApi(AccountListApi):
    """The account's discrepancies, newest first; filter by type, status, persistent."""

    model = Discrepancy
    selector = staticmethod(discrepancy_list)
    filter_backends = [StrictFilterBackend]
    filterset_class = DiscrepancyFilterSet

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        run = serializers.IntegerField(source="run_id")
        type = serializers.CharField()
        entity = serializers.CharField()
        key = serializers.CharField()
        status = serializers.CharField()
        persistent = serializers.BooleanField()
        consecutive_runs = serializers.IntegerField()
        local_value = serializers.JSONField(allow_null=True)
        exchange_value = serializers.JSONField(allow_null=True)
        detail = serializers.JSONField()
        proposed_repair = serializers.JSONField(allow_null=True)
        created_at = serializers.DateTimeField()
        resolved_at = serializers.DateTimeField(allow_null=True)
        resolved_by = serializers.CharField()
        resolution_reason = serializers.CharField()

        class Meta:
            ref_name = "Discrepancy"

    serializer_class = OutputSerializer

    @extend_schema(tags=["reconciliation"], summary="List discrepancies")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


# --- state as of a moment (issue 18 item 7) --------------------------------------------------
class _Strict(serializers.Serializer):
    """Output shapes: every field is always present."""


class SnapshotAmountField(AmountField):
    """An amount from an audit snapshot (stored as its canonical string)."""

    def to_representation(self, value):
        return super().to_representation(Decimal(value) if isinstance(value, str) else value)


class HeldOrderSerializer(_Strict):
    client_order_id = serializers.CharField()
    exchange_order_id = serializers.CharField(required=False, allow_blank=True)
    symbol = serializers.CharField()
    side = serializers.CharField()
    type = serializers.CharField(required=False)
    status = serializers.CharField()
    quantity = SnapshotAmountField(allow_null=True)
    filled_qty = SnapshotAmountField(allow_null=True)
    price = SnapshotAmountField(allow_null=True, required=False)
    avg_fill_price = SnapshotAmountField(allow_null=True, required=False)
    version = serializers.IntegerField(required=False)

    class Meta:
        ref_name = "HeldOrder"


class HeldPositionSerializer(_Strict):
    symbol = serializers.CharField()
    qty = SnapshotAmountField()
    entry_price = SnapshotAmountField(allow_null=True)
    version = serializers.IntegerField(required=False)

    class Meta:
        ref_name = "HeldPosition"


class HeldBalanceSerializer(_Strict):
    currency = serializers.CharField()
    free = SnapshotAmountField()
    used = SnapshotAmountField()
    total = SnapshotAmountField()
    version = serializers.IntegerField(required=False)

    class Meta:
        ref_name = "HeldBalance"


class HeldPnlSerializer(_Strict):
    taken_at = serializers.DateTimeField()
    valuation_currency = serializers.CharField()
    realized_pnl = AmountField(allow_null=True)
    unrealized_pnl = AmountField(allow_null=True)
    fees = AmountField(allow_null=True)
    net_pnl = AmountField(allow_null=True)

    class Meta:
        ref_name = "HeldPnl"


class HeldStateSerializer(_Strict):
    last_change_at = serializers.DateTimeField(allow_null=True)
    orders = HeldOrderSerializer(many=True)
    positions = HeldPositionSerializer(many=True)
    balances = HeldBalanceSerializer(many=True)
    pnl = HeldPnlSerializer(allow_null=True, help_text="The hourly snapshot at or before T.")

    class Meta:
        ref_name = "HeldState"


class ExchangeOrderViewSerializer(_Strict):
    client_order_id = serializers.CharField()
    symbol = serializers.CharField(allow_null=True)
    side = serializers.CharField(allow_null=True)
    status = serializers.CharField(allow_null=True)
    amount = SnapshotAmountField(allow_null=True)
    filled = SnapshotAmountField(allow_null=True)
    source = serializers.ChoiceField(choices=["agreed", "reported"])

    class Meta:
        ref_name = "ExchangeOrderView"


class ExchangePositionViewSerializer(_Strict):
    symbol = serializers.CharField()
    qty = SnapshotAmountField(allow_null=True)
    entry_price = SnapshotAmountField(allow_null=True)
    source = serializers.ChoiceField(choices=["agreed", "reported"])

    class Meta:
        ref_name = "ExchangePositionView"


class ExchangeBalanceViewSerializer(_Strict):
    currency = serializers.CharField()
    free = SnapshotAmountField(allow_null=True)
    used = SnapshotAmountField(allow_null=True)
    total = SnapshotAmountField(allow_null=True)
    source = serializers.ChoiceField(choices=["agreed", "reported"])

    class Meta:
        ref_name = "ExchangeBalanceView"


class ExchangeViewSerializer(_Strict):
    run_id = serializers.IntegerField()
    run_status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    orders = ExchangeOrderViewSerializer(many=True)
    positions = ExchangePositionViewSerializer(many=True)
    balances = ExchangeBalanceViewSerializer(many=True)
    errors = serializers.ListField(child=serializers.CharField())

    class Meta:
        ref_name = "ExchangeView"


class AccountStateSerializer(_Strict):
    account = serializers.CharField()
    at = serializers.DateTimeField()
    held = HeldStateSerializer()
    exchange = ExchangeViewSerializer(allow_null=True)

    class Meta:
        ref_name = "AccountState"


class AccountStateApi(AccountApi):
    """What tradingstate held for the account at ``?at=T`` (orders, positions, balances,
    rebuilt from the audit trail; the hourly P&L snapshot at or before T), beside what the
    exchange reported at the pass nearest T ("agreed" rows matched what was held; "reported"
    rows are the exchange's differing values, from that pass's discrepancies). Without
    ``at``: now."""

    class QuerySerializer(InputSerializer):
        at = AwareDateTimeField(required=False)

        class Meta:
            ref_name = "AccountStateQuery"

    @extend_schema(
        tags=["reconciliation"],
        summary="State as of a moment",
        parameters=[OpenApiParameter("at", OpenApiTypes.DATETIME, OpenApiParameter.QUERY)],
        responses={200: AccountStateSerializer},
    )
    def get(self, request, account):
        query = validated_input(self.QuerySerializer, request.query_params.dict())
        at = query.get("at") or timezone.now()
        state = account_state_with_exchange_at(account=self.account, at=at)
        body = {
            "account": self.account.name,
            "at": at,
            "held": {
                "last_change_at": state.held.last_change_at,
                "orders": state.held.orders,
                "positions": state.held.positions,
                "balances": state.held.balances,
                "pnl": state.held.pnl,
            },
            "exchange": state.exchange,
        }
        return Response(AccountStateSerializer(body).data)


# --- discrepancy analytics (issue 18 item 8) ---------------------------------------------------
class RepairTimeSerializer(_Strict):
    type = serializers.CharField()
    repaired = serializers.IntegerField()
    p50_seconds = serializers.FloatField(allow_null=True)
    p95_seconds = serializers.FloatField(allow_null=True)

    class Meta:
        ref_name = "RepairTime"


class CountByTypeSerializer(_Strict):
    type = serializers.CharField()
    occurrences = serializers.IntegerField()

    class Meta:
        ref_name = "RecurrenceByType"


class CountBySymbolSerializer(_Strict):
    type = serializers.CharField()
    symbol = serializers.CharField()
    occurrences = serializers.IntegerField()

    class Meta:
        ref_name = "RecurrenceBySymbol"


class CountByVenueSerializer(_Strict):
    venue = serializers.CharField()
    occurrences = serializers.IntegerField()

    class Meta:
        ref_name = "RecurrenceByVenue"


class PersistentDaySerializer(_Strict):
    day = serializers.DateField()
    became_persistent = serializers.IntegerField()

    class Meta:
        ref_name = "PersistentDay"


class DiscrepancyStatsSerializer(_Strict):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    days = serializers.IntegerField()
    accounts = serializers.ListField(child=serializers.CharField())
    time_to_repair = RepairTimeSerializer(many=True)
    recurrence_by_type = CountByTypeSerializer(many=True)
    recurrence_by_symbol = CountBySymbolSerializer(many=True)
    recurrence_by_venue = CountByVenueSerializer(many=True)
    persistent_trend = PersistentDaySerializer(many=True)
    stale_orders = serializers.IntegerField()
    stale_later_seen_alive = serializers.IntegerField()
    false_stale_rate = serializers.FloatField(allow_null=True)

    class Meta:
        ref_name = "DiscrepancyStats"


class DiscrepancyStatsApi(BaseApi):
    """Discrepancy analytics over the caller's accounts (``?account=NAME`` for one) and the
    last ``?days=`` (1-365, default 30): time to repair per type (p50/p95 seconds, from the
    first pass that saw it), recurrence by type, symbol and venue, the persistent-desync
    trend per day, and the false-stale rate (stale orders later seen alive)."""

    class QuerySerializer(InputSerializer):
        days = serializers.IntegerField(min_value=1, max_value=365, required=False, default=30)
        account = serializers.CharField(required=False, max_length=63)

        class Meta:
            ref_name = "DiscrepancyStatsQuery"

    @extend_schema(
        tags=["reconciliation"],
        summary="Discrepancy analytics",
        parameters=[
            OpenApiParameter("days", OpenApiTypes.INT, OpenApiParameter.QUERY),
            OpenApiParameter("account", OpenApiTypes.STR, OpenApiParameter.QUERY),
        ],
        responses={200: DiscrepancyStatsSerializer},
    )
    def get(self, request):
        query = validated_input(self.QuerySerializer, request.query_params.dict())
        if "account" in query:
            accounts = [account_get_visible(request.user, query["account"])]
        else:
            accounts = account_list_visible(request.user)
        stats = discrepancy_stats(accounts=accounts, days=query["days"])
        return Response(DiscrepancyStatsSerializer(stats).data)
