"""The accounts a caller may see."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from tradingstate.api.access import account_list_visible
from tradingstate.models import ExchangeAccount, MarketType
from tradingstate.web.base import BaseApi
from tradingstate.web.pagination import ApiCursorPagination


class AccountListApi(BaseApi, generics.ListAPIView):
    """Staff see every account; a bot only those granted to it."""

    pagination_class = ApiCursorPagination

    class OutputSerializer(serializers.Serializer):
        name = serializers.CharField()
        exchange = serializers.CharField()
        market_type = serializers.ChoiceField(choices=MarketType.choices)
        sandbox = serializers.BooleanField()
        enabled = serializers.BooleanField()
        auto_repair = serializers.BooleanField()
        reconciliation_interval_seconds = serializers.IntegerField()
        last_reconciled_at = serializers.DateTimeField(allow_null=True)
        recovery_in_progress = serializers.SerializerMethodField()

        class Meta:
            ref_name = "Account"

        def get_recovery_in_progress(self, obj) -> bool:
            return obj.recovery_started_at is not None

    serializer_class = OutputSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ExchangeAccount.objects.none()
        return account_list_visible(self.request.user)

    @extend_schema(tags=["accounts"], summary="List accounts")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)
