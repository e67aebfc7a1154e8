"""Admin plumbing shared by every app's ``admin.py``: audit links, no-delete and read-only
mixins, the "Correct…" page, and a way for an app to add its actions to another app's
model admin (the kill switch's "Halt trading…" and reconciliation's "Reconcile now" on the
accounts list) without the owning app importing it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from reconciliation.selectors import last_exchange_value
from tradingstate.actors import Actor
from tradingstate.amounts import amount_display, amount_str
from tradingstate.errors import ApplicationError, VersionConflict
from tradingstate.fields import AmountField
from tradingstate.models import Instrument
from tradingstate.services import account_auto_repair_pause
from tradingstate.templatetags.money import moment_str

SELECT_ONE = "Select exactly one {what} to correct."
VERSION_HINT = " The current values are shown below; review them and submit again."


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


def amount_html(value, step=None) -> str:
    """An amount as traders read it (``amount_display``: the instrument's precision when its
    ``step`` is known), the full stored value on hover."""
    if value is None:
        return "—"
    return format_html(
        '<span class="num" title="{}">{}</span>', amount_str(value), amount_display(value, step)
    )


class ConsoleModelAdmin(admin.ModelAdmin):
    """The base of every ModelAdmin here. A changelist's query string is the visitor's
    text: a lookup Django accepts but the database or Python cannot run
    (``?created_at__year=99999``, ``?pk__in=`` past 64 bits on SQLite) failed while the
    list was counted, a 500. It is Django's "incorrect lookup" instead (the list with
    ``?e=1``), as an unknown filter is."""

    def get_changelist_instance(self, request):
        try:
            return super().get_changelist_instance(request)
        except (ValueError, OverflowError, DjangoValidationError) as exc:
            raise IncorrectLookupParameters(exc) from None


class AmountInput(forms.TextInput):
    """A text input showing an amount without the 18-place padding of its column."""

    def format_value(self, value):
        if isinstance(value, Decimal):
            return amount_str(value)
        return super().format_value(value)


STEP_KINDS = {"amount": "amount_step", "price": "price_step"}


class AmountDisplayMixin:
    """Every ``AmountField`` of the model shown as traders read it: in the list columns and
    on read-only change pages through ``amount_html`` (never "0.080000000000000000"), in
    edit forms through ``AmountInput``. The full stored value stays one hover away.

    ``amount_steps`` maps fields to the instrument's step that sets their precision
    (``{"qty": "amount", "entry_price": "price"}``); the queryset then carries the steps of
    the row's instrument (account + symbol) as subqueries, so the list reads no more
    statements. Without a known step, trailing zeros are dropped."""

    amount_steps: dict[str, str] = {}
    amount_symbol = "symbol"  # the row's instrument symbol (``order__symbol`` for fills)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not self.amount_steps:
            return qs
        instrument = Instrument.objects.filter(
            account_id=OuterRef("account_id"), symbol=OuterRef(self.amount_symbol)
        )
        return qs.annotate(
            **{
                f"_{column}": Subquery(instrument.values(column)[:1])
                for column in sorted({STEP_KINDS[k] for k in self.amount_steps.values()})
            }
        )

    def _amount_names(self) -> set[str]:
        return {f.name for f in self.model._meta.get_fields() if isinstance(f, AmountField)}

    @classmethod
    def _amount_attr(cls, model, name: str) -> str:
        attr = f"{name}_num"
        if not hasattr(cls, attr):
            field = model._meta.get_field(name)

            def show(self, obj, _name=name):
                kind = self.amount_steps.get(_name)
                step = getattr(obj, f"_{STEP_KINDS[kind]}", None) if kind else None
                return amount_html(getattr(obj, _name), step)

            show.short_description = field.verbose_name
            show.admin_order_field = name
            setattr(cls, attr, show)
        return attr

    def get_list_display(self, request):
        names = self._amount_names()
        return tuple(
            self._amount_attr(self.model, n) if isinstance(n, str) and n in names else n
            for n in super().get_list_display(request)
        )

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields + tuple(
            self._amount_attr(self.model, n) for n in sorted(self._amount_names())
        )

    def get_fields(self, request, obj=None):
        names = self._amount_names()
        extra = {f"{n}_num" for n in names}
        fields = [f for f in super().get_fields(request, obj) if f not in extra]
        if obj is None:
            return fields
        if not self.has_change_permission(request, obj):
            shown = names
        else:
            shown = names & set(super().get_readonly_fields(request, obj))
        return [self._amount_attr(self.model, f) if f in shown else f for f in fields]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, AmountField):
            kwargs.setdefault("widget", AmountInput(attrs={"inputmode": "decimal"}))
        return super().formfield_for_dbfield(db_field, request, **kwargs)


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

    def _correct(self, obj, data: dict, actor):
        """The correction, and the auto-repair pause when asked, in one transaction (the
        account row first, then the position or balance: the pass's lock order). Returns the
        paused account, or None."""
        with transaction.atomic():
            paused = None
            if data.get("pause_auto_repair") and obj.account.auto_repair:
                paused = account_auto_repair_pause(
                    account=obj.account,
                    until=timezone.now() + timedelta(hours=data.get("pause_hours") or 4),
                    actor=actor,
                    reason=f"{data['reason']} (correcting {self.what} "
                    f"{obj.account.name}:{self.key_of(obj)})",
                )
            self.apply_correction(obj, data, actor)
            return paused

    def correct_view(self, request, object_id):
        if not self.has_correct_permission(request):
            raise PermissionDenied
        obj = get_object_or_404(self.model.objects.select_related("account"), pk=object_id)
        auto_repair_on = obj.account.auto_repair_active(timezone.now())
        if request.method == "POST":
            form = self.correct_form(request.POST)
            if form.is_valid():
                try:
                    paused = self._correct(obj, form.cleaned_data, Actor.from_request(request))
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
                    if paused is not None:
                        self.message_user(
                            request,
                            f"Auto-repair paused for {obj.account.name} until "
                            f"{moment_str(paused.auto_repair_paused_until)}.",
                            messages.WARNING,
                        )
                    elif auto_repair_on:
                        self.message_user(
                            request,
                            f"Auto-repair is on for {obj.account.name}: the next pass will set "
                            f"this {self.what} back to the exchange's value.",
                            messages.WARNING,
                        )
                    opts = self.model._meta
                    return redirect(
                        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
                    )
        else:
            form = self.correct_form(
                initial={
                    **self.current_values(obj),
                    "version": obj.version,
                    "pause_auto_repair": auto_repair_on,
                }
            )
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
            "auto_repair_on": auto_repair_on,
            "paused_until": obj.account.auto_repair_paused_until
            if obj.account.auto_repair_paused(timezone.now())
            else None,
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


def model_admin_add_actions(site: admin.AdminSite, model, *actions) -> None:
    """Put ``actions`` (admin action functions) first in ``model``'s admin on ``site``.

    Each app owns its actions; the model's own admin lists them without importing the app.
    Permission checks named in ``@admin.action(permissions=[...])`` stay on that admin.
    """
    model_admin = site.get_model_admin(model)
    own = tuple(a for a in (model_admin.actions or ()) if a not in actions)
    model_admin.actions = (*actions, *own)
