"""Kill switch admin: a control page (activate/deactivate with a required reason, global or
per account), the state rows and the event history read-only; "Halt trading…" and "Resume
trading…" on the accounts list. Writes call the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.selectors import killswitch_event_list, killswitch_state
from killswitch.services import killswitch_activate, killswitch_deactivate
from tradingstate.actors import Actor
from tradingstate.errors import ApplicationError
from tradingstate.models import ExchangeAccount
from tradingstate.services.audit import REASON_REQUIRED
from tradingstate.web.console.actions import reason_action
from tradingstate.web.console.mixins import ConsoleModelAdmin, model_admin_add_actions

ACTIVATE_PERM = "killswitch.activate_killswitch"
DEACTIVATE_PERM = "killswitch.deactivate_killswitch"
NO_PERMISSION = "You do not have permission to {action} the kill switch."


class KillSwitchControlForm(forms.Form):
    ACTIONS = (("activate", "Activate (refuse new orders)"), ("deactivate", "Deactivate"))

    action = forms.ChoiceField(choices=ACTIONS, widget=forms.RadioSelect)
    account = forms.ModelChoiceField(
        queryset=ExchangeAccount.objects.order_by("name"),
        required=False,
        empty_label="All accounts (global switch)",
        to_field_name="name",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        error_messages={"required": REASON_REQUIRED},
    )
    cancel_open_orders = forms.BooleanField(
        required=False, help_text="On activation: cancel the open orders on the exchange too."
    )

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(REASON_REQUIRED)
        return reason


class ReadOnlyAdmin(ConsoleModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


@admin.register(KillSwitch)
class KillSwitchAdmin(ReadOnlyAdmin):
    list_display = ("scope", "active", "reason", "activated_by", "activated_at", "updated_at")
    list_filter = ("active",)
    search_fields = ("account__name", "reason", "activated_by")
    change_list_template = "admin/killswitch/killswitch/change_list.html"

    @admin.display(description="Scope", ordering="account__name")
    def scope(self, obj):
        return "global" if obj.account_id is None else obj.account.name

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")

    def get_urls(self):
        control = path(
            "control/",
            self.admin_site.admin_view(self.control_view),
            name="killswitch_killswitch_control",
        )
        return [control, *super().get_urls()]

    def control_view(self, request):
        can_activate = request.user.has_perm(ACTIVATE_PERM)
        can_deactivate = request.user.has_perm(DEACTIVATE_PERM)
        if not (can_activate or can_deactivate or self.has_view_permission(request)):
            raise PermissionDenied
        form = KillSwitchControlForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            action = form.cleaned_data["action"]
            allowed = can_activate if action == "activate" else can_deactivate
            if not allowed:
                self.message_user(request, NO_PERMISSION.format(action=action), messages.ERROR)
                return TemplateResponse(
                    request,
                    "admin/killswitch/control.html",
                    self._context(request, form),
                    status=403,
                )
            try:
                result = self._apply(request, form.cleaned_data)
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                level = messages.SUCCESS if result.changed else messages.WARNING
                self.message_user(request, result.message, level)
                if result.cancel_summary is not None:
                    s = result.cancel_summary
                    self.message_user(
                        request,
                        f"Cancelled {s['cancelled']} open order(s); {s['remaining']} still open.",
                        messages.SUCCESS if s["complete"] else messages.ERROR,
                    )
                return redirect(reverse("admin:killswitch_killswitch_control"))
        return TemplateResponse(
            request, "admin/killswitch/control.html", self._context(request, form)
        )

    def _apply(self, request, data):
        actor = Actor.from_request(request)
        if data["action"] == "activate":
            return killswitch_activate(
                reason=data["reason"],
                actor=actor,
                account=data["account"],
                cancel_open_orders=data["cancel_open_orders"],
            )
        return killswitch_deactivate(actor=actor, reason=data["reason"], account=data["account"])

    def _context(self, request, form):
        return {
            **self.admin_site.each_context(request),
            "title": "Kill switch",
            "opts": self.model._meta,
            "form": form,
            "status": killswitch_state(),
            "events": killswitch_event_list(limit=20),
            "can_activate": request.user.has_perm(ACTIVATE_PERM),
            "can_deactivate": request.user.has_perm(DEACTIVATE_PERM),
        }


@admin.register(KillSwitchEvent)
class KillSwitchEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "scope", "actor_type", "actor_name", "reason")
    list_filter = ("action", "actor_type", "account")
    search_fields = ("actor_name", "reason", "account__name", "correlation_id")
    date_hierarchy = "created_at"

    @admin.display(description="Scope", ordering="account__name")
    def scope(self, obj):
        return "global" if obj.account_id is None else obj.account.name

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("account")


# --- on the accounts list (tradingstate's admin) ---------------------------------------------
@admin.action(description="Halt trading…", permissions=["halt_account"])
def halt_trading(modeladmin, request, queryset):
    def perform(*, obj, actor, reason):
        result = killswitch_activate(reason=reason, actor=actor, account=obj)
        return result.message, messages.SUCCESS if result.changed else messages.WARNING

    return reason_action(
        modeladmin,
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
def resume_trading(modeladmin, request, queryset):
    def perform(*, obj, actor, reason):
        result = killswitch_deactivate(actor=actor, reason=reason, account=obj)
        return result.message, messages.SUCCESS if result.changed else messages.WARNING

    return reason_action(
        modeladmin,
        request,
        queryset,
        action="resume_trading",
        title="Resume trading",
        intro="The selected accounts' halts are lifted (the global kill switch, if active, "
        "still refuses orders).",
        button="Resume trading",
        perform=perform,
    )


model_admin_add_actions(admin.site, ExchangeAccount, halt_trading, resume_trading)
