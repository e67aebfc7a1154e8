"""Admin for the state of record. State fields are read-only: writes arrive as actions and
small forms that call the services (with a reason), never as direct edits."""

from __future__ import annotations

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from tradingstate.models import (
    AuditEntry,
    Balance,
    BotProfile,
    ExchangeAccount,
    Fill,
    Instrument,
    Order,
    PaperBalance,
    PaperOrder,
    PaperPosition,
    Position,
)


def audit_link(target_type: str, target_id: object, label: str = "audit trail") -> str:
    url = reverse("admin:tradingstate_auditentry_changelist")
    return format_html(
        '<a href="{}?target_type={}&target_id={}">{}</a>', url, target_type, target_id, label
    )


class NoDeleteMixin:
    """Audited models keep their history: nothing is deleted from the admin."""

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class ReadOnlyMixin(NoDeleteMixin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AuditLinkMixin:
    @admin.display(description="Audit")
    def audit(self, obj):
        return audit_link(obj._meta.model_name, obj.pk)


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(NoDeleteMixin, AuditLinkMixin, admin.ModelAdmin):
    list_display = (
        "name",
        "exchange",
        "market_type",
        "enabled",
        "auto_repair",
        "reconciliation_interval_seconds",
        "last_reconciled_at",
        "audit",
    )
    list_filter = ("exchange", "market_type", "enabled", "auto_repair", "sandbox")
    search_fields = ("name", "exchange")
    readonly_fields = ("last_reconciled_at", "disabled_reason", "created_at", "updated_at")

    def has_change_permission(self, request, obj=None):
        # account settings change through the configuration (recover) or services
        return False


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("symbol", "account", "base", "quote", "market_type", "amount_step", "active")
    list_filter = ("account", "market_type", "active")
    search_fields = ("symbol", "base", "quote")


@admin.register(Order)
class OrderAdmin(ReadOnlyMixin, AuditLinkMixin, admin.ModelAdmin):
    list_display = (
        "client_order_id",
        "account",
        "symbol",
        "side",
        "type",
        "quantity",
        "price",
        "filled_qty",
        "status",
        "origin",
        "updated_at",
        "audit",
    )
    list_filter = ("account", "status", "side", "type", "origin")
    search_fields = ("client_order_id", "exchange_order_id", "symbol", "strategy_id")
    date_hierarchy = "created_at"
    list_select_related = ("account",)


@admin.register(Fill)
class FillAdmin(ReadOnlyMixin, AuditLinkMixin, admin.ModelAdmin):
    list_display = ("trade_id", "account", "order", "quantity", "price", "fee", "executed_at")
    list_filter = ("account",)
    search_fields = ("trade_id", "order__client_order_id")
    list_select_related = ("account", "order")


@admin.register(Position)
class PositionAdmin(ReadOnlyMixin, AuditLinkMixin, admin.ModelAdmin):
    list_display = ("symbol", "account", "qty", "entry_price", "version", "updated_at", "audit")
    list_filter = ("account",)
    search_fields = ("symbol",)
    list_select_related = ("account",)


@admin.register(Balance)
class BalanceAdmin(ReadOnlyMixin, AuditLinkMixin, admin.ModelAdmin):
    list_display = (
        "currency",
        "account",
        "free",
        "used",
        "total",
        "version",
        "updated_at",
        "audit",
    )
    list_filter = ("account",)
    search_fields = ("currency",)
    list_select_related = ("account",)


@admin.register(BotProfile)
class BotProfileAdmin(NoDeleteMixin, admin.ModelAdmin):
    list_display = ("user", "created_at")
    search_fields = ("user__username",)
    filter_horizontal = ("accounts",)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "actor_type",
        "actor_name",
        "action",
        "account",
        "target_type",
        "target_id",
        "target_repr",
        "reason",
    )
    list_filter = ("actor_type", "action", "account", "target_type", "created_at")
    search_fields = ("actor_name", "action", "target_repr", "target_id", "reason", "correlation_id")
    date_hierarchy = "created_at"
    list_select_related = ("account",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}

    def lookup_allowed(self, lookup, value, request=None):
        if lookup in ("target_id", "target_type", "run_id", "discrepancy_id"):
            return True
        return super().lookup_allowed(lookup, value, request)


class PaperAdmin(admin.ModelAdmin):
    """The paper venue is the *exchange's* side: editable so staff can stage desync."""

    list_filter = ("account",)


@admin.register(PaperOrder)
class PaperOrderAdmin(PaperAdmin):
    list_display = (
        "exchange_order_id",
        "client_order_id",
        "account",
        "symbol",
        "side",
        "amount",
        "filled",
        "status",
    )
    search_fields = ("exchange_order_id", "client_order_id", "symbol")


@admin.register(PaperPosition)
class PaperPositionAdmin(PaperAdmin):
    list_display = ("symbol", "account", "qty", "entry_price")


@admin.register(PaperBalance)
class PaperBalanceAdmin(PaperAdmin):
    list_display = ("currency", "account", "free", "used", "total")
