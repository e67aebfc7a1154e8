"""Reconciliation runs (list, trigger) and discrepancies (list) for one account."""

from __future__ import annotations

import django_filters
from django.conf import settings
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.selectors import discrepancy_list, run_list
from reconciliation.services import reconciliation_request
from tradingstate.actors import Actor
from tradingstate.api.fields import StrictBooleanField
from tradingstate.api.filtersets import StrictBooleanFilter
from tradingstate.api.serializers import InputSerializer, validated_input
from tradingstate.web.base import AccountListApi

WAIT_VALUES = {"true": True, "1": True, "false": False, "0": False}
WAIT_INVALID = "Use wait=true or wait=false."


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
    ``api.reconcile_wait_seconds`` (200 with the finished run, or 202 if it is still running)."""

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
        parameters=[OpenApiParameter("wait", OpenApiTypes.BOOL, OpenApiParameter.QUERY)],
        request=InputSerializer,
        responses={
            202: OpenApiResponse(ReconciliationRunOutputSerializer, description="Queued."),
            200: OpenApiResponse(ReconciliationRunOutputSerializer, description="Finished."),
        },
    )
    def post(self, request, account):
        wait = WAIT_VALUES.get(request.query_params.get("wait", "false").lower())
        if wait is None:
            raise serializers.ValidationError({"wait": [WAIT_INVALID]})
        data = validated_input(self.InputSerializer, request.data)
        run = reconciliation_request(
            account=self.account,
            trigger=ReconciliationRun.Trigger.API,
            actor=Actor.from_request(request),
            dry_run=data["dry_run"],
            wait_seconds=settings.TRADINGSTATE.api.reconcile_wait_seconds if wait else None,
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
    filter_backends = [DjangoFilterBackend]
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
