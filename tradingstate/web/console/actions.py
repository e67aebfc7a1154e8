"""Admin actions that ask for a reason on an intermediate page (like Django's delete
confirmation), then call one service per selected row and report each outcome."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse

from tradingstate.actors import Actor
from tradingstate.errors import ApplicationError
from tradingstate.web.console.forms import ReasonForm

CONFIRM_FIELD = "confirm_reason"
TEMPLATE = "admin/action_reason.html"  # admin/<app>/[<model>/]action_reason.html override it

# perform(obj=..., actor=..., reason=...) -> message, or (message, level); raises
# ApplicationError to report a refusal for that row.
Perform = Callable[..., "str | tuple[str, int]"]


def reason_action(
    modeladmin,
    request,
    queryset,
    *,
    action: str,
    title: str,
    perform: Perform,
    intro: str = "",
    button: str = "Confirm",
    describe: Callable[[object], str] | None = None,
):
    """Render the reason page; once confirmed with a valid reason, perform per row.

    Returns a response (the page) or None (done: the admin redirects to the changelist,
    where the messages show each row's outcome). Nothing is written until the reason is valid.
    """
    confirmed = request.method == "POST" and request.POST.get(CONFIRM_FIELD) == "yes"
    form = ReasonForm(request.POST if confirmed else None)
    rows = list(queryset.order_by("pk"))
    if confirmed and form.is_valid():
        actor = Actor.from_request(request)
        reason = form.cleaned_data["reason"]
        for obj in rows:
            try:
                outcome = perform(obj=obj, actor=actor, reason=reason)
            except ApplicationError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
                continue
            text, level = outcome if isinstance(outcome, tuple) else (outcome, messages.SUCCESS)
            modeladmin.message_user(request, text, level)
        return None
    opts = modeladmin.model._meta
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "button": button,
        "opts": opts,
        "form": form,
        "queryset": rows,
        "rows": [(obj, describe(obj) if describe else "") for obj in rows],
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "confirm_field": CONFIRM_FIELD,
        "form_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
    }
    request.current_app = modeladmin.admin_site.name
    templates = [
        f"admin/{opts.app_label}/{opts.model_name}/action_reason.html",
        f"admin/{opts.app_label}/action_reason.html",
        TEMPLATE,
    ]
    return TemplateResponse(request, templates, context)


def object_action_view(modeladmin, request, object_id: int, action: str):
    """GET .../<pk>/<action>/: the same reason page for one object (an object-tools button).
    The page posts to the changelist, so permission checks and the action are the admin's."""
    actions = modeladmin.get_actions(request)
    if action not in actions:
        raise PermissionDenied
    queryset = modeladmin.get_queryset(request).filter(pk=object_id)
    if not queryset.exists():
        raise Http404
    func = actions[action][0]
    response = func(modeladmin, request, queryset)
    if response is None:  # it acted (its message is queued): back to the object's page
        opts = modeladmin.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
        )
    return response
