"""Admin for the state of record. State fields are read-only: writes arrive as actions and
small forms that call the services (with a reason), never as direct edits.

Accounts: "Reconcile now", "Halt trading…", "Resume trading…". Positions and balances:
"Correct…" (new value + reason, with the version seen, so a concurrent change is refused).
Every change page links to its audit entries.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from killswitch.services import killswitch_activate, killswitch_deactivate
from reconciliation.console import last_exchange_value
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.services import run_reconciliation
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str
from tradingstate.console.actions import reason_action
from tradingstate.console.forms import BalanceCorrectForm, PositionCorrectForm
from tradingstate.errors import ApplicationError, VersionConflict
from tradingstate.models import (
    AuditEntry,
    Balance,
    BotProfile,
    ExchangeAccount,
    Fill,
    Instrument,
    Notification,
    Order,
    PaperBalance,
    PaperOrder,
    PaperPosition,
    Position,
)
from tradingstate.services import (
    account_set_enabled,
    account_upsert,
    balance_correct,
    position_correct,
)


def audit_link(target_type: str, target_id: object, label: str = "audit trail") -> str:
    url = reverse("admin:tradingstate_auditentry_changelist")
    return format_html(
        '<a href="{}?target_type={}&target_id={}">{}</a>', url, target_type, target_id, label
    )


def audit_url(**params) -> str:
    return f"{reverse('admin:tradingstate_auditentry_changelist')}?{urlencode(params)}"


def audit_filter_link(label: str, **params) -> str:
    """A link to the audit entries matching ``params`` (target, run_id, discrepancy_id, …)."""
    return format_html('<a href="{}">{}</a>', audit_url(**params), label)


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
    """An "Audit" column in the list, and "Audit trail" (plus any ``console_tools``) among
    the change page's object tools (``templates/admin/change_form_object_tools.html``)."""

    @admin.display(description="Audit")
    def audit(self, obj):
        return audit_filter_link("audit trail", **self.audit_params(obj))

    def audit_params(self, obj) -> dict:
        return {"target_type": obj._meta.model_name, "target_id": obj.pk}

    def console_tools(self, request, obj) -> list[dict]:
        return []

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        tools = []
        if obj is not None:
            tools = [
                *self.console_tools(request, obj),
                {"url": audit_url(**self.audit_params(obj)), "label": "Audit trail", "id": "audit"},
            ]
        extra_context = {**(extra_context or {}), "console_tools": tools}
        return super().change_view(request, object_id, form_url, extra_context)


RUN_LEVEL = {
    ReconciliationRun.Status.COMPLETED: messages.SUCCESS,
    ReconciliationRun.Status.INCOMPLETE: messages.WARNING,
    ReconciliationRun.Status.SKIPPED: messages.WARNING,
    ReconciliationRun.Status.FAILED: messages.ERROR,
}
SELECT_ONE = "Select exactly one {what} to correct."
VERSION_HINT = " The current values are shown below; review them and submit again."


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
    actions = ("reconcile_now", "halt_trading", "resume_trading", "enable_passes")

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

    @admin.action(description="Reconcile now", permissions=["reconcile_account"])
    def reconcile_now(self, request, queryset):
        """One pass per selected account, synchronously; then show what each pass found."""
        actor = Actor.from_request(request)
        runs = []
        for account in queryset.order_by("name"):
            run = run_reconciliation(
                account, ReconciliationRun.Trigger.MANUAL, requested_by=actor.name
            )
            runs.append(run)
            self.message_user(
                request,
                f"{account.name}: pass {run.pk} {run.get_status_display().lower()}, "
                f"{run.discrepancies_found} discrepancies, {run.repairs_applied} repairs applied"
                + (f" ({run.error})" if run.error else "."),
                RUN_LEVEL.get(run.status, messages.INFO),
            )
        found = {
            run_id: rows for run_id, rows in _discrepancies_by_run([r.pk for r in runs]).items()
        }
        context = {
            **self.admin_site.each_context(request),
            "title": "Reconciliation result",
            "opts": self.model._meta,
            "results": [(run, found.get(run.pk, [])) for run in runs],
            "discrepancy_changelist": reverse("admin:reconciliation_discrepancy_changelist"),
        }
        return TemplateResponse(request, "admin/tradingstate/reconcile_result.html", context)

    @admin.action(description="Halt trading…", permissions=["halt_account"])
    def halt_trading(self, request, queryset):
        def perform(*, obj, actor, reason):
            result = killswitch_activate(reason=reason, actor=actor, account=obj)
            return result.message, messages.SUCCESS if result.changed else messages.WARNING

        return reason_action(
            self,
            request,
            queryset,
            action="halt_trading",
            title="Halt trading",
            intro="New orders for the selected accounts are refused until trading resumes. "
            "Status updates, fills and reconciliation go on.",
            button="Halt trading",
            perform=perform,
        )

    @admin.action(description="Resume trading…", permissions=["resume_account"])
    def resume_trading(self, request, queryset):
        def perform(*, obj, actor, reason):
            result = killswitch_deactivate(actor=actor, reason=reason, account=obj)
            return result.message, messages.SUCCESS if result.changed else messages.WARNING

        return reason_action(
            self,
            request,
            queryset,
            action="resume_trading",
            title="Resume trading",
            intro="The selected accounts' halts are lifted (the global kill switch, if active, "
            "still refuses orders).",
            button="Resume trading",
            perform=perform,
        )

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


def _discrepancies_by_run(run_ids: list[int]) -> dict[int, list[Discrepancy]]:
    rows: dict[int, list[Discrepancy]] = {}
    for d in Discrepancy.objects.filter(run_id__in=run_ids).order_by("id"):
        d.detail_text = json.dumps(d.detail, default=str)  # the runbook's log line
        rows.setdefault(d.run_id, []).append(d)
    return rows


class CorrectionMixin(AuditLinkMixin):
    """A "Correct…" page per row (object tool and single-row action): the current local
    value, the exchange's last reported value, and a form (new value + reason) calling the
    correction service with the version shown, so a concurrent change is refused."""

    correct_permission: str
    correct_form: type
    discrepancy_type: str
    what: str

    def has_correct_permission(self, request):
        return request.user.has_perm(f"tradingstate.{self.correct_permission}")

    def correct_url(self, obj) -> str:
        opts = self.model._meta
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_correct", args=[obj.pk])

    def console_tools(self, request, obj):
        if not self.has_correct_permission(request):
            return []
        return [{"url": self.correct_url(obj), "label": "Correct…", "id": "correct"}]

    @admin.action(description="Correct…", permissions=["correct"])
    def correct(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, SELECT_ONE.format(what=self.what), messages.WARNING)
            return None
        return redirect(self.correct_url(queryset.get()))

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<int:object_id>/correct/",
                self.admin_site.admin_view(self.correct_view),
                name=f"{opts.app_label}_{opts.model_name}_correct",
            ),
            *super().get_urls(),
        ]

    def correct_view(self, request, object_id):
        if not self.has_correct_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.model.objects.select_related("account"), pk=object_id)
        if request.method == "POST":
            form = self.correct_form(request.POST)
            if form.is_valid():
                try:
                    self.apply_correction(obj, form.cleaned_data, Actor.from_request(request))
                except VersionConflict as exc:
                    obj.refresh_from_db()
                    data = request.POST.copy()
                    data["version"] = str(obj.version)
                    form = self.correct_form(data)
                    form.is_valid()
                    form.add_error(None, exc.message + VERSION_HINT)
                    self.message_user(request, exc.message, messages.ERROR)
                except ApplicationError as exc:
                    _add_service_errors(form, exc)
                    self.message_user(request, exc.message, messages.ERROR)
                else:
                    self.message_user(
                        request,
                        f"{self.what.capitalize()} {obj.account.name}:{self.key_of(obj)} "
                        "corrected.",
                    )
                    opts = self.model._meta
                    return redirect(
                        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
                    )
        else:
            form = self.correct_form(initial={**self.current_values(obj), "version": obj.version})
        exchange = last_exchange_value(
            account_id=obj.account_id, type=self.discrepancy_type, key=self.key_of(obj)
        )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Correct {self.what} {obj.account.name}:{self.key_of(obj)}",
            "opts": self.model._meta,
            "original": obj,
            "form": form,
            "current": self.current_values(obj),
            "exchange": exchange,
            "audit_url": audit_url(target_type=obj._meta.model_name, target_id=obj.pk),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/tradingstate/correct_form.html", context)


def _add_service_errors(form, exc: ApplicationError) -> None:
    placed = False
    for name, errors in exc.fields.items():
        if name in form.fields and name not in ("version",):
            for error in errors:
                form.add_error(name, f"{name}: {error}")
            placed = True
    if not placed:
        form.add_error(None, exc.message)


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
class PositionAdmin(ReadOnlyMixin, CorrectionMixin, admin.ModelAdmin):
    list_display = ("symbol", "account", "qty", "entry_price", "version", "updated_at", "audit")
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


@admin.register(Notification)
class NotificationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every message sent (or tried) to a notification channel: read-only."""

    list_display = ("created_at", "event", "key", "state", "channel", "outcome", "attempts",
                    "sent_at", "last_error")  # fmt: skip
    list_filter = ("outcome", "event", "channel", "state")
    search_fields = ("key", "title")
    date_hierarchy = "created_at"
