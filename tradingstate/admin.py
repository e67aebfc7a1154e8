"""Admin for the state of record. State fields are read-only: writes arrive as actions and
small forms that call the services (with a reason), never as direct edits.

Accounts: "Re-enable reconciliation…" (plus "Reconcile now" from ``reconciliation.admin`` and
"Halt trading…"/"Resume trading…" from ``killswitch.admin``). Positions and balances:
"Correct…" (new value + reason, with the version seen, so a concurrent change is refused).
Every change page links to its audit entries.
"""

from __future__ import annotations

from django.contrib import admin, messages

from tradingstate.actors import Actor
from tradingstate.amounts import amount_str
from tradingstate.models import (
    AuditEntry,
    Balance,
    BotProfile,
    ExchangeAccount,
    Fill,
    Instrument,
    MarkPrice,
    Notification,
    Order,
    PaperBalance,
    PaperMarkPrice,
    PaperOrder,
    PaperPosition,
    PaperTrade,
    PnlSnapshot,
    Position,
)
from tradingstate.services import (
    account_set_enabled,
    account_upsert,
    balance_correct,
    paper_mark_set,
    position_correct,
)
from tradingstate.web.console.actions import reason_action
from tradingstate.web.console.forms import BalanceCorrectForm, PaperMarkForm, PositionCorrectForm
from tradingstate.web.console.mixins import (
    AuditLinkMixin,
    CorrectionMixin,
    NoDeleteMixin,
    ReadOnlyMixin,
)
from tradingstate.web.console.pnl import register_pnl_console

# /admin/console/pnl/: P&L and exposure (issue 15)
register_pnl_console(admin.site)


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
    # "Reconcile now" (reconciliation.admin) and "Halt/Resume trading…" (killswitch.admin)
    # are added by their apps, ahead of this one
    actions = ("enable_passes",)

    def has_change_permission(self, request, obj=None):
        # account settings change through the configuration (recover) or services
        return False

    def save_model(self, request, obj, form, change):
        """A new account goes through the audited service like one loaded from the config."""
        values = {name: form.cleaned_data[name] for name in form.cleaned_data if name != "name"}
        saved = account_upsert(
            name=obj.name,
            values=values,
            actor=Actor.from_request(request),
            reason="created in the admin",
        )
        obj.pk = saved.pk

    def audit_params(self, obj) -> dict:
        return {"account__id__exact": obj.pk}

    def has_reconcile_account_permission(self, request):
        return request.user.has_perm("tradingstate.reconcile_account")

    def has_halt_account_permission(self, request):
        return request.user.has_perm("tradingstate.halt_account")

    def has_resume_account_permission(self, request):
        return request.user.has_perm("killswitch.deactivate_killswitch")

    @admin.action(description="Re-enable reconciliation…", permissions=["reconcile_account"])
    def enable_passes(self, request, queryset):
        """After an authentication failure stopped an account's passes (credentials fixed)."""

        def perform(*, obj, actor, reason):
            if obj.enabled:
                return f"{obj.name}: already enabled.", messages.WARNING
            account_set_enabled(account=obj, enabled=True, actor=actor, reason=reason)
            return f"{obj.name}: reconciliation re-enabled.", messages.SUCCESS

        return reason_action(
            self,
            request,
            queryset,
            action="enable_passes",
            title="Re-enable reconciliation",
            intro="Passes resume for the selected accounts (stopped after an authentication "
            "failure). Fix the credentials first, or the next pass stops them again.",
            button="Re-enable",
            perform=perform,
            describe=lambda obj: obj.disabled_reason or "enabled",
        )


@admin.register(Instrument)
class InstrumentAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("symbol", "account", "base", "quote", "market_type", "amount_step", "active")
    list_filter = ("account", "market_type", "active")
    search_fields = ("symbol", "base", "quote")


@admin.register(MarkPrice)
class MarkPriceAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The prices positions and balances are valued at (refreshed by each pass)."""

    list_display = ("symbol", "account", "price", "source", "time", "stale", "fetched_at")
    list_filter = ("account", "source", "stale")
    search_fields = ("symbol",)
    list_select_related = ("account",)


@admin.register(PnlSnapshot)
class PnlSnapshotAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The hourly P&L and exposure snapshots (account empty: the desk)."""

    list_display = (
        "taken_at",
        "account",
        "realized_pnl",
        "unrealized_pnl",
        "fees",
        "net_pnl",
        "net_notional",
        "gross_notional",
        "stale",
    )
    list_filter = ("account", "stale")
    date_hierarchy = "taken_at"
    list_select_related = ("account",)


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
    """Fills (issue 14): the bots' and those reconciliation recorded (``origin``), inferred
    ones flagged, external trades (no order) shown as such."""

    list_display = (
        "trade_id",
        "account",
        "symbol",
        "side",
        "order",
        "quantity",
        "price",
        "fee",
        "fee_currency",
        "origin",
        "inferred",
        "is_maker",
        "executed_at",
    )
    list_filter = (
        "account",
        "origin",
        "inferred",
        ("order", admin.EmptyFieldListFilter),
        "symbol",
    )
    search_fields = ("trade_id", "order__client_order_id", "client_order_id", "exchange_order_id")
    list_select_related = ("account", "order")


@admin.register(Position)
class PositionAdmin(ReadOnlyMixin, CorrectionMixin, admin.ModelAdmin):
    list_display = (
        "symbol",
        "account",
        "qty",
        "entry_price",
        "realized_pnl",
        "fees",
        "version",
        "updated_at",
        "audit",
    )
    list_filter = ("account",)
    search_fields = ("symbol",)
    list_select_related = ("account",)
    actions = ("correct",)
    correct_permission = "correct_position"
    correct_form = PositionCorrectForm
    discrepancy_type = "position_mismatch"
    what = "position"

    def key_of(self, obj):
        return obj.symbol

    def current_values(self, obj) -> dict:
        return {"qty": amount_str(obj.qty), "entry_price": amount_str(obj.entry_price) or ""}

    def apply_correction(self, obj, data, actor):
        return position_correct(
            account=obj.account,
            symbol=obj.symbol,
            qty=data["qty"],
            entry_price=data["entry_price"],
            reason=data["reason"],
            expected_version=data["version"],
            actor=actor,
        )


@admin.register(Balance)
class BalanceAdmin(ReadOnlyMixin, CorrectionMixin, admin.ModelAdmin):
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
    actions = ("correct",)
    correct_permission = "correct_balance"
    correct_form = BalanceCorrectForm
    discrepancy_type = "balance_mismatch"
    what = "balance"

    def key_of(self, obj):
        return obj.currency

    def current_values(self, obj) -> dict:
        return {
            "free": amount_str(obj.free),
            "used": amount_str(obj.used),
            "total": amount_str(obj.total),
        }

    def apply_correction(self, obj, data, actor):
        return balance_correct(
            account=obj.account,
            currency=obj.currency,
            free=data["free"],
            used=data["used"],
            total=data["total"],
            reason=data["reason"],
            expected_version=data["version"],
            actor=actor,
        )


@admin.register(BotProfile)
class BotProfileAdmin(NoDeleteMixin, AuditLinkMixin, admin.ModelAdmin):
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


@admin.register(PaperTrade)
class PaperTradeAdmin(PaperAdmin):
    """The venue's trades: edit or add one to stage a fee mismatch or a missed fill."""

    list_display = (
        "trade_id",
        "account",
        "client_order_id",
        "symbol",
        "side",
        "quantity",
        "price",
        "fee",
        "fee_currency",
        "liquidity",
        "executed_at",
    )
    list_filter = ("account", "symbol", "liquidity")
    search_fields = ("trade_id", "exchange_order_id", "client_order_id")
    raw_id_fields = ("paper_order",)


@admin.register(PaperMarkPrice)
class PaperMarkPriceAdmin(NoDeleteMixin, AuditLinkMixin, admin.ModelAdmin):
    """The venue's mark prices. Setting one (with a reason) executes the resting orders it
    crosses; every change is audited (``paper.mark_set``)."""

    form = PaperMarkForm
    list_display = ("symbol", "account", "price", "walk", "walk_steps", "updated_at", "audit")
    list_filter = ("account", "walk")
    search_fields = ("symbol",)
    readonly_fields = ("walk_steps", "updated_at", "version")

    def get_readonly_fields(self, request, obj=None):
        fixed = ("account", "symbol") if obj is not None else ()
        return (*fixed, *self.readonly_fields)

    def save_model(self, request, obj, form, change):
        row = paper_mark_set(
            account=obj.account,
            symbol=obj.symbol,
            price=obj.price,
            walk=obj.walk,
            actor=Actor.from_request(request),
            reason=form.cleaned_data["reason"],
        )
        obj.pk = row.pk


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every message sent (or tried) to a notification channel: read-only."""

    list_display = ("created_at", "event", "key", "state", "channel", "outcome", "attempts",
                    "sent_at", "last_error")  # fmt: skip
    list_filter = ("outcome", "event", "channel", "state")
    search_fields = ("key", "title")
    date_hierarchy = "created_at"
