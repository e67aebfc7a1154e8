"""Liveness for load balancers and the runbook: database, worker heartbeat, pass age.

Unauthenticated callers get the summary only; bots and staff also get the accounts they
may see. Nothing secret is ever included.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import DatabaseError, connection
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from reconciliation.selectors import (
    account_intervals_enabled,
    accounts_with_last_run_at,
    worker_last_seen,
)
from tradingstate.api.access import account_list_visible
from tradingstate.web.permissions import IsBotOrStaff

logger = logging.getLogger("tradingstate.api")

WORKER_STALE_MIN_SECONDS = 120
WORKER_STALE_INTERVALS = 4


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 3)


def worker_health(now: datetime) -> dict:
    """The worker's liveness: its newest sign of life and whether it is recent enough
    (``stale_after_seconds``: 4 of the shortest enabled interval, at least 120 s). Shared by
    ``/api/v1/health/`` and the console."""
    intervals = account_intervals_enabled()
    stale_after = max(WORKER_STALE_MIN_SECONDS, WORKER_STALE_INTERVALS * min(intervals, default=30))
    last_seen, source = worker_last_seen()
    age = _age(last_seen, now)
    return {
        "ok": age is not None and age <= stale_after,
        "last_seen": last_seen,
        "age_seconds": age,
        "source": source,
        "stale_after_seconds": stale_after,
    }


class HealthApi(APIView):
    permission_classes = [AllowAny]
    throttle_classes = []

    class WorkerSerializer(serializers.Serializer):
        ok = serializers.BooleanField()
        last_seen = serializers.DateTimeField(allow_null=True)
        age_seconds = serializers.FloatField(allow_null=True)
        source = serializers.CharField()
        stale_after_seconds = serializers.IntegerField()

        class Meta:
            ref_name = "HealthWorker"

    class AccountSerializer(serializers.Serializer):
        name = serializers.CharField()
        enabled = serializers.BooleanField()
        last_pass_at = serializers.DateTimeField(allow_null=True)
        last_pass_age_seconds = serializers.FloatField(allow_null=True)
        reconciliation_interval_seconds = serializers.IntegerField()
        recovery_in_progress = serializers.BooleanField()

        class Meta:
            ref_name = "HealthAccount"

    class OutputSerializer(serializers.Serializer):
        status = serializers.CharField(help_text="ok, degraded (worker stale) or error")
        time = serializers.DateTimeField()
        db = serializers.CharField(help_text="ok or error")
        worker = serializers.DictField(allow_null=True)
        accounts = serializers.ListField(child=serializers.DictField(), required=False)

        class Meta:
            ref_name = "Health"

    @extend_schema(
        tags=["health"],
        summary="Health",
        auth=[{}, {"knoxApiToken": []}, {"cookieAuth": []}],
        responses={200: OutputSerializer, 503: OutputSerializer},
    )
    def get(self, request):
        now = timezone.now()
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            body = self._report(request, now)
        except DatabaseError as exc:
            logger.error("Health check: database unavailable (%s)", type(exc).__name__)
            body = {"status": "error", "time": now, "db": "error", "worker": None}
            return Response(self.OutputSerializer(body).data, status=503)
        return Response(self.OutputSerializer(body).data)

    def _report(self, request, now: datetime) -> dict:
        worker = worker_health(now)
        body = {
            "status": "ok" if worker["ok"] else "degraded",
            "time": now,
            "db": "ok",
            "worker": self.WorkerSerializer(worker).data,
        }
        if IsBotOrStaff().has_permission(request, self):
            body["accounts"] = self.AccountSerializer(
                self._accounts(request.user, now), many=True
            ).data
        return body

    @staticmethod
    def _accounts(user, now: datetime) -> list[dict]:
        rows = accounts_with_last_run_at(account_list_visible(user))
        result = []
        for account in rows:
            moments = [m for m in (account.last_reconciled_at, account.last_run_at) if m]
            last = max(moments) if moments else None
            result.append(
                {
                    "name": account.name,
                    "enabled": account.enabled,
                    "last_pass_at": last,
                    "last_pass_age_seconds": _age(last, now),
                    "reconciliation_interval_seconds": account.reconciliation_interval_seconds,
                    "recovery_in_progress": account.recovery_started_at is not None,
                }
            )
        return result
