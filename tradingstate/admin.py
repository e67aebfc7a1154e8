"""Admin for the state of record. State fields are read-only: writes arrive as actions and
small forms that call the services (with a reason), never as direct edits.

Accounts: "Re-enable reconciliation…" (plus "Reconcile now" from ``reconciliation.admin`` and
"Halt trading…"/"Resume trading…" from ``killswitch.admin``). Positions and balances:
"Correct…" (new value + reason, with the version seen, so a concurrent change is refused).
Every change page links to its audit entries.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from tradingstate.actors import Actor
from tradingstate.amounts import amount_str, unpad_numbers
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
    account_auto_repair_pause,
    account_set_enabled,
    account_upsert,
    balance_correct,
    paper_mark_set,
    position_correct,
)
from tradingstate.services.bots import bot_grants_set
from tradingstate.services.paper import paper_row_edit
from tradingstate.templatetags.money import moment_str
from tradingstate.web.console.actions import reason_action
from tradingstate.web.console.dashboard import register_dashboard
from tradingstate.web.console.forms import (
    BalanceCorrectForm,
    BotGrantsForm,
    PaperMarkForm,
    PaperRowForm,
    PositionCorrectForm,
)
from tradingstate.web.console.mixins import (
    AmountDisplayMixin,
    AuditLinkMixin,
    ConsoleModelAdmin,
    CorrectionMixin,
    NoDeleteMixin,
    ReadOnlyMixin,
    audit_url,
)
from tradingstate.web.console.pnl import register_pnl_console

# /admin/ (and /admin/console/): the console dashboard; Django's model index at /admin/models/
register_dashboard(admin.site)
# /admin/console/pnl/: P&L and exposure (issue 15)
register_pnl_console(admin.site)


@admin.register(ExchangeAccount)
class ExchangeAccountAdmin(AmountDisplayMixin, NoDeleteMixin, AuditLinkMixin, ConsoleModelAdmin):
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
    actions = ("enable_passes", "resume_auto_repair")

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

    @admin.action(description="Resume auto-repair now…", permissions=["reconcile_account"])
    def resume_auto_repair(self, request, queryset):
        """End a pause of auto-repair (set with a correction) before it expires."""

        def perform(*, obj, actor, reason):
            if obj.auto_repair_paused_until is None:
                return f"{obj.name}: auto-repair is not paused.", messages.WARNING
            account_auto_repair_pause(account=obj, until=None, actor=actor, reason=reason)
            return f"{obj.name}: auto-repair resumed.", messages.SUCCESS

        return reason_action(
            self,
            request,
            queryset,
            action="resume_auto_repair",
            title="Resume auto-repair",
            intro="The next pass of each selected account repairs what it finds again (a "
            "manual correction that differs from the exchange is set back to its value).",
            button="Resume auto-repair",
            perform=perform,
            describe=lambda obj: (
                f"paused until {moment_str(obj.auto_repair_paused_until)}: "
                f"{obj.auto_repair_paused_reason}"
                if obj.auto_repair_paused_until
                else "not paused"
            ),
        )


@admin.register(Instrument)
class InstrumentAdmin(AmountDisplayMixin, ReadOnlyMixin, ConsoleModelAdmin):
    list_display = ("symbol", "account", "base", "quote", "market_type", "amount_step", "active")
    list_filter = ("account", "market_type", "active")
    search_fields = ("symbol", "base", "quote")


@admin.register(MarkPrice)
class MarkPriceAdmin(AmountDisplayMixin, ReadOnlyMixin, ConsoleModelAdmin):
    """The prices positions and balances are valued at (refreshed by each pass)."""

    amount_steps = {"price": "price"}
    list_display = ("symbol", "account", "price", "source", "time", "stale", "fetched_at")
    list_filter = ("account", "source", "stale")
    search_fields = ("symbol",)
    list_select_related = ("account",)


@admin.register(PnlSnapshot)
class PnlSnapshotAdmin(AmountDisplayMixin, ReadOnlyMixin, ConsoleModelAdmin):
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
class OrderAdmin(AmountDisplayMixin, ReadOnlyMixin, AuditLinkMixin, ConsoleModelAdmin):
    # what matters first; type, origin, ids and the audit trail are on the order's page
    amount_steps = {"quantity": "amount", "filled_qty": "amount", "remaining_qty": "amount",
                    "price": "price", "avg_fill_price": "price"}  # fmt: skip
    list_display = (
        "client_order_id",
        "status",
        "symbol",
        "side",
        "quantity",
        "filled_qty",
        "price",
        "account",
        "updated_at",
    )
    list_filter = ("account", "status", "side", "type", "origin")
    search_fields = ("client_order_id", "exchange_order_id", "symbol", "strategy_id")
    date_hierarchy = "created_at"
    list_select_related = ("account",)


@admin.register(Fill)
class FillAdmin(AmountDisplayMixin, ReadOnlyMixin, AuditLinkMixin, ConsoleModelAdmin):
    """Fills (issue 14): the bots' and those reconciliation recorded (``origin``), inferred
    ones flagged, external trades (no order) shown as such. The important columns first; the
    venue ids, fee currency and maker flag are on the detail page."""

    amount_steps = {"quantity": "amount", "price": "price"}
    amount_symbol = "symbol"
    list_display = (
        "trade_id",
        "account",
        "symbol",
        "side",
        "quantity",
        "price",
        "fee",
        "origin",
        "inferred",
        "order",
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
class PositionAdmin(AmountDisplayMixin, ReadOnlyMixin, CorrectionMixin, ConsoleModelAdmin):
    amount_steps = {"qty": "amount", "entry_price": "price"}
    list_display = ("symbol", "account", "qty", "entry_price", "realized_pnl", "fees", "updated_at")
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
class BalanceAdmin(AmountDisplayMixin, ReadOnlyMixin, CorrectionMixin, ConsoleModelAdmin):
    list_display = ("currency", "account", "free", "used", "total", "updated_at")
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
class BotProfileAdmin(NoDeleteMixin, AuditLinkMixin, ConsoleModelAdmin):
    """A bot's grants, changed with a reason and audited (``bot.update``). Bots and their
    tokens are created with ``manage.py create_bot``."""

    form = BotGrantsForm
    list_display = ("user", "created_at")
    search_fields = ("user__username",)
    filter_horizontal = ("accounts",)

    def has_add_permission(self, request):
        return False  # a bot without a token is no use: manage.py create_bot issues one

    def save_model(self, request, obj, form, change):
        pass  # the profile's own fields do not change here; its grants do (save_related)

    def save_related(self, request, form, formsets, change):
        bot_grants_set(
            profile=form.instance,
            accounts=form.cleaned_data["accounts"],
            actor=Actor.from_request(request),
            reason=form.cleaned_data["reason"],
        )


AUDIT_FILTERS = ("target_id", "target_type", "run_id", "discrepancy_id", "correlation_id",
                 "actor_name")  # fmt: skip


# one object's history, one request, one pass, one discrepancy: listed oldest first
CHRONOLOGICAL = ("target_id", "correlation_id", "run_id", "discrepancy_id")


@admin.register(AuditEntry)
class AuditEntryAdmin(ConsoleModelAdmin):
    """The audit trail, read-only. The list shows who, what, on which object and why; each
    row links to everything its request or pass did (``?correlation_id=``), to everything its
    actor did (``?actor_name=``) and to its object's history (``?target_type=&target_id=``,
    oldest first)."""

    list_display = ("created_at", "who", "action", "target", "why", "correlation")
    list_filter = ("actor_type", "action", "account", "target_type", "created_at")
    search_fields = ("actor_name", "action", "target_repr", "target_id", "reason", "correlation_id")
    date_hierarchy = "created_at"
    list_select_related = ("account",)
    readonly_fields = ("history",)

    @admin.display(description="Who", ordering="actor_name")
    def who(self, obj):
        return format_html(
            '<a class="audit-actor" href="?actor_name={}" title="everything {} did">{}</a>'
            ' <span class="help">{}</span>',
            obj.actor_name,
            obj.actor_name,
            obj.actor_name,
            obj.actor_type,
        )

    @admin.display(description="Target")
    def target(self, obj):
        # entries written before numbers were normalised carry "0.080000000000000000"
        text = unpad_numbers(obj.target_repr) or f"{obj.target_type} {obj.target_id}".strip()
        if not obj.target_id:
            return text or "—"
        return format_html(
            '<a class="audit-target" href="{}" title="this object\'s history, oldest first">{}</a>',
            audit_url(target_type=obj.target_type, target_id=obj.target_id),
            f"{obj.target_type}: {text}",
        )

    @admin.display(description="Reason")
    def why(self, obj):
        reason = obj.reason or ""
        short = reason if len(reason) <= 140 else reason[:139] + "…"
        return format_html('<span class="audit-reason" title="{}">{}</span>', reason, short)

    @admin.display(description="Request / pass")
    def correlation(self, obj):
        if not obj.correlation_id:
            return "—"
        return format_html(
            '<a class="audit-correlation" href="?correlation_id={}" '
            'title="everything this request or pass did">{}</a>',
            obj.correlation_id,
            obj.correlation_id[:8],
        )

    @admin.display(description="Related")
    def history(self, obj):
        links = [("this object's history", audit_url(target_type=obj.target_type,
                                                     target_id=obj.target_id))]  # fmt: skip
        if obj.correlation_id:
            links.append(("everything this request or pass did",
                          audit_url(correlation_id=obj.correlation_id)))  # fmt: skip
        links.append((f"everything {obj.actor_name} did", audit_url(actor_name=obj.actor_name)))
        return format_html_join(" · ", '<a href="{}">{}</a>', ((u, t) for t, u in links))

    def get_ordering(self, request):
        # one object's history, one request or one pass: in the order it happened
        if any(k in request.GET for k in CHRONOLOGICAL):
            return ["id"]
        return ["-id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}

    def lookup_allowed(self, lookup, value, request=None):
        if lookup in AUDIT_FILTERS:
            return True
        return super().lookup_allowed(lookup, value, request)


class PaperAdmin(AmountDisplayMixin, NoDeleteMixin, ConsoleModelAdmin):
    """The paper venue is the *exchange's* side: editable so staff can stage desync, each
    change with a reason and audited (``paper.staff_edit``); rows are not deleted."""

    form = PaperRowForm
    list_filter = ("account",)

    def save_model(self, request, obj, form, change):
        paper_row_edit(
            row=obj, actor=Actor.from_request(request), reason=form.cleaned_data["reason"]
        )


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
class PaperMarkPriceAdmin(AmountDisplayMixin, NoDeleteMixin, AuditLinkMixin, ConsoleModelAdmin):
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
class NotificationAdmin(ReadOnlyMixin, ConsoleModelAdmin):
    """Every message sent (or tried) to a notification channel: read-only."""

    list_display = ("created_at", "event", "key", "state", "channel", "outcome", "attempts",
                    "sent_at", "last_error")  # fmt: skip
    list_filter = ("outcome", "event", "channel", "state")
    search_fields = ("key", "title")
    date_hierarchy = "created_at"
