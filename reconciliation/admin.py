"""Admin for reconciliation history: runs, discrepancies and repairs are read-only records.

The only writes are the discrepancy actions "Apply repair" and "Acknowledge", each behind its
own permission, asking for a reason on an intermediate page and calling the service per row;
and "Reconcile now" on the accounts list. The console dashboard that shows this app's health
is mounted by ``tradingstate.web.console.dashboard``.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from reconciliation.models import Discrepancy, ReconciliationRun, Repair, WorkerHeartbeat
from reconciliation.selectors import discrepancy_list_by_run
from reconciliation.services import discrepancy_acknowledge, repair_apply, run_reconciliation
from tradingstate.actors import Actor
from tradingstate.amounts import amount_display
from tradingstate.models import ExchangeAccount
from tradingstate.web.console.actions import object_action_view, reason_action
from tradingstate.web.console.mixins import (
    AuditLinkMixin,
    ConsoleModelAdmin,
    ReadOnlyMixin,
    model_admin_add_actions,
)


def pretty_json(value) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return format_html('<pre class="json" style="margin:0">{}</pre>', text)


# --- runs ------------------------------------------------------------------------------------
class DiscrepancyInline(admin.TabularInline):
    model = Discrepancy
    fk_name = "run"
    fields = ("type", "key", "status", "persistent", "consecutive_runs", "summary")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    @admin.display(description="Detail")
    def summary(self, obj):
        return json.dumps(obj.detail, sort_keys=True, default=str)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReconciliationRun)
class ReconciliationRunAdmin(ReadOnlyMixin, AuditLinkMixin, ConsoleModelAdmin):
    # the per-entity counts, deferred repairs and dry-run flag are on the run's page
    list_display = (
        "id",
        "account",
        "status",
        "trigger",
        "discrepancies_found",
        "repairs_applied",
        "duration_ms",
        "started_at",
    )
    list_filter = ("status", "trigger", "dry_run", "account")
    search_fields = ("account__name", "requested_by", "error")
    date_hierarchy = "created_at"
    list_select_related = ("account",)
    inlines = (DiscrepancyInline,)
    readonly_fields = ("audit",)

    def audit_params(self, obj) -> dict:
        return {"run_id": obj.pk}


# --- discrepancies ---------------------------------------------------------------------------
@admin.register(Discrepancy)
class DiscrepancyAdmin(ReadOnlyMixin, AuditLinkMixin, ConsoleModelAdmin):
    # the run, consecutive passes and payloads are on the discrepancy's page
    list_display = ("id", "type", "key", "values", "status", "persistent", "account", "created_at")
    list_filter = ("type", "status", "persistent", "account")
    search_fields = ("key",)
    date_hierarchy = "created_at"
    list_select_related = ("account", "run")
    actions = ("apply_repair", "acknowledge")
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "type",
                    "key",
                    "account",
                    "status",
                    "run_link",
                    "consecutive_runs",
                    "persistent",
                    "created_at",
                    "resolved_at",
                    "resolved_by",
                    "resolution_reason",
                    "audit",
                )
            },
        ),
        ("Local vs exchange", {"fields": ("side_by_side",)}),
        ("Proposed repair", {"fields": ("repair_plan",)}),
        ("Repair history", {"fields": ("repair_history",)}),
        ("Exchange payload", {"fields": ("detail_json", "payload")}),
    )
    # everything on the page is shown, nothing edited
    readonly_fields = tuple(f for _, options in fieldsets for f in options["fields"])

    # --- display ---------------------------------------------------------------------------
    @admin.display(description="Local → exchange")
    def values(self, obj):
        detail = obj.detail or {}
        for local, exchange in (
            ("local_qty", "exchange_qty"),
            ("local_total", "exchange_total"),
            ("local_status", "exchange_status"),
        ):
            if local in detail or exchange in detail:
                return f"{_num(detail.get(local))} → {_num(detail.get(exchange))}"
        return "—"

    @admin.display(description="Run")
    def run_link(self, obj):
        url = reverse("admin:reconciliation_reconciliationrun_change", args=[obj.run_id])
        return format_html('<a href="{}">run {}</a>', url, obj.run_id)

    def audit_params(self, obj) -> dict:
        # the acknowledgement (target: the discrepancy) and the repairs (target: the order,
        # position or balance) all carry the discrepancy's id
        return {"discrepancy_id": obj.pk}

    @admin.display(description="Values")
    def side_by_side(self, obj):
        local = obj.local_value or {}
        exchange = obj.exchange_value or {}
        keys = sorted(set(local) | set(exchange))
        if not keys:
            return "—"
        rows = format_html_join(
            "",
            '<tr class="{}"><th>{}</th><td>{}</td><td>{}</td></tr>',
            (
                (
                    "differs" if local.get(k) != exchange.get(k) else "same",
                    k,
                    _cell(local, k, obj.local_value is None),
                    _cell(exchange, k, obj.exchange_value is None),
                )
                for k in keys
            ),
        )
        return format_html(
            '<table class="side-by-side"><thead><tr><th>Field</th><th>Local</th>'
            "<th>Exchange</th></tr></thead><tbody>{}</tbody></table>"
            "<style>.side-by-side tr.differs td{{background:#fff3cd;font-weight:bold}}</style>",
            rows,
        )

    @admin.display(description="Proposed repair")
    def repair_plan(self, obj):
        if not obj.proposed_repair:
            note = (obj.detail or {}).get("note", "")
            return note or "No automatic repair for this discrepancy: acknowledge it."
        return pretty_json(obj.proposed_repair)

    @admin.display(description="Repairs")
    def repair_history(self, obj):
        repairs = list(obj.repairs.order_by("id"))
        if not repairs:
            return "None yet."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{timezone.localtime(r.created_at):%Y-%m-%d %H:%M:%S %z}",
                    r.action,
                    r.get_status_display(),
                    r.actor_name,
                    r.actor_type,
                    r.reason,
                    r.error,
                )
                for r in repairs
            ),
        )
        return format_html(
            '<table class="repair-history"><thead><tr><th>When</th><th>Action</th>'
            "<th>Status</th><th>Who</th><th>Reason</th><th>Error</th></tr></thead>"
            "<tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Structured detail")
    def detail_json(self, obj):
        return pretty_json(obj.detail)

    @admin.display(description="Raw exchange payload")
    def payload(self, obj):
        return pretty_json(obj.exchange_payload)

    # --- actions ---------------------------------------------------------------------------
    def has_apply_repair_permission(self, request):
        return request.user.has_perm("reconciliation.apply_repair")

    def has_acknowledge_discrepancy_permission(self, request):
        return request.user.has_perm("reconciliation.acknowledge_discrepancy")

    @admin.action(description="Apply repair…", permissions=["apply_repair"])
    def apply_repair(self, request, queryset):
        def perform(*, obj, actor, reason):
            repair = repair_apply(discrepancy=obj, actor=actor, reason=reason)
            return f"Repair applied: {obj.type} {obj.key} (discrepancy {obj.pk}, {repair.action})."

        return reason_action(
            self,
            request,
            queryset,
            action="apply_repair",
            title="Apply repair",
            intro="Each selected discrepancy's proposed repair brings the local state to the "
            "exchange's values. A row changed since the pass is refused, never overwritten.",
            button="Apply repair",
            perform=perform,
            describe=self.values,
        )

    @admin.action(description="Acknowledge…", permissions=["acknowledge_discrepancy"])
    def acknowledge(self, request, queryset):
        def perform(*, obj, actor, reason):
            discrepancy_acknowledge(discrepancy=obj, actor=actor, reason=reason)
            return f"Acknowledged: {obj.type} {obj.key} (discrepancy {obj.pk})."

        return reason_action(
            self,
            request,
            queryset,
            action="acknowledge",
            title="Acknowledge discrepancies",
            intro="The selected discrepancies leave the open list; local state is not changed.",
            button="Acknowledge",
            perform=perform,
            describe=self.values,
        )

    def get_urls(self):
        def view(action):
            def inner(request, object_id):
                return object_action_view(self, request, object_id, action)

            return self.admin_site.admin_view(inner)

        return [
            path(
                "<int:object_id>/apply-repair/",
                view("apply_repair"),
                name="reconciliation_discrepancy_apply_repair",
            ),
            path(
                "<int:object_id>/acknowledge/",
                view("acknowledge"),
                name="reconciliation_discrepancy_acknowledge",
            ),
            *super().get_urls(),
        ]

    def console_tools(self, request, obj) -> list[dict]:
        tools = []
        if obj.status != Discrepancy.Status.OPEN:
            return tools
        if obj.repairable and self.has_apply_repair_permission(request):
            url = reverse("admin:reconciliation_discrepancy_apply_repair", args=[obj.pk])
            tools.append({"url": url, "label": "Apply repair…", "id": "apply-repair"})
        if self.has_acknowledge_discrepancy_permission(request):
            url = reverse("admin:reconciliation_discrepancy_acknowledge", args=[obj.pk])
            tools.append({"url": url, "label": "Acknowledge…", "id": "acknowledge"})
        return tools


def _num(value) -> str:
    """A value from a discrepancy's detail as traders read it (numbers without padding)."""
    if value is None:
        return "—"
    try:
        return amount_display(Decimal(str(value))) or "—"
    except (InvalidOperation, ValueError):
        return str(value)


def _cell(values: dict, key: str, missing: bool) -> str:
    if missing:
        return "(none)"
    value = values.get(key)
    return "—" if value is None else str(value)


# --- repairs and the worker ------------------------------------------------------------------
@admin.register(Repair)
class RepairAdmin(ReadOnlyMixin, AuditLinkMixin, ConsoleModelAdmin):
    list_display = ("id", "discrepancy", "action", "status", "actor_name", "reason", "created_at")
    list_filter = ("status", "action", "actor_type", "account")
    search_fields = ("discrepancy__key", "actor_name", "reason")
    date_hierarchy = "created_at"
    list_select_related = ("discrepancy", "account", "run")
    readonly_fields = ("audit",)

    def audit_params(self, obj) -> dict:
        return {"discrepancy_id": obj.discrepancy_id}


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(ReadOnlyMixin, ConsoleModelAdmin):
    list_display = ("role", "holder", "beat_at")


# --- on the accounts list (tradingstate's admin) ---------------------------------------------
RUN_LEVEL = {
    ReconciliationRun.Status.COMPLETED: messages.SUCCESS,
    ReconciliationRun.Status.INCOMPLETE: messages.WARNING,
    ReconciliationRun.Status.SKIPPED: messages.WARNING,
    ReconciliationRun.Status.FAILED: messages.ERROR,
}


@admin.action(description="Reconcile now", permissions=["reconcile_account"])
def reconcile_now(modeladmin, request, queryset):
    """One pass per selected account, synchronously; then show what each pass found."""
    actor = Actor.from_request(request)
    runs = []
    for account in queryset.order_by("name"):
        run = run_reconciliation(account, ReconciliationRun.Trigger.MANUAL, requested_by=actor.name)
        runs.append(run)
        modeladmin.message_user(
            request,
            f"{account.name}: pass {run.pk} {run.get_status_display().lower()}, "
            f"{run.discrepancies_found} discrepancies, {run.repairs_applied} repairs applied"
            + (f" ({run.error})" if run.error else "."),
            RUN_LEVEL.get(run.status, messages.INFO),
        )
    found = discrepancy_list_by_run(run_ids=[r.pk for r in runs])
    for rows in found.values():
        for d in rows:
            d.detail_text = json.dumps(d.detail, default=str)  # the runbook's log line
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Reconciliation result",
        "opts": modeladmin.model._meta,
        "results": [(run, found.get(run.pk, [])) for run in runs],
        "discrepancy_changelist": reverse("admin:reconciliation_discrepancy_changelist"),
    }
    return TemplateResponse(request, "admin/tradingstate/reconcile_result.html", context)


model_admin_add_actions(admin.site, ExchangeAccount, reconcile_now)
