"""Shared set-up for the admin console tests: the runbook's demo desync on the paper venue,
staff users with exactly the permissions a test names, and the messages a response carried."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.management import call_command

from reconciliation.services import run_reconciliation
from tests.factories import UserFactory
from tradingstate.models import ExchangeAccount

CHANGELIST = {
    "account": "admin:tradingstate_exchangeaccount_changelist",
    "discrepancy": "admin:reconciliation_discrepancy_changelist",
    "position": "admin:tradingstate_position_changelist",
    "balance": "admin:tradingstate_balance_changelist",
}


@pytest.fixture
def demo(db):
    """paper-demo with auto-repair OFF: local 0.05 vs venue 0.08, abc123 stale, def456 new."""
    call_command("demo", stdout=StringIO())
    ExchangeAccount.objects.filter(name="paper-demo").update(auto_repair=False)
    return ExchangeAccount.objects.get(name="paper-demo")


@pytest.fixture
def reconciled(demo):
    """The demo after one pass: three open discrepancies, nothing repaired."""
    return run_reconciliation(demo, "manual")


def staff_with(*perms: str, username: str = "bob"):
    """A staff user (not superuser) holding exactly ``perms`` ("app.codename")."""
    user = UserFactory(username=username, is_staff=True)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


def messages_of(resp) -> list[str]:
    if resp.context is not None and "messages" in resp.context:
        return [str(m) for m in resp.context["messages"]]
    return [str(m) for m in get_messages(resp.wsgi_request)]


def action_post(client, url: str, action: str, ids, *, reason: str | None = None, **extra):
    """POST an admin action; with ``reason`` it is the intermediate page's confirmation."""
    data = {"action": action, "_selected_action": [str(i) for i in ids], **extra}
    if reason is not None:
        data.update({"confirm_reason": "yes", "reason": reason})
    return client.post(url, data, follow=reason is not None)
