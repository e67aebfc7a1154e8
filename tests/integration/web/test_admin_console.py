"""The console dashboard at /admin/console/: per-account health, links into the filtered
changelists, the kill switch state, the SVG chart, and a query count independent of the
number of accounts."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from killswitch.services import killswitch_activate
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory, UserFactory
from tests.integration.console_support import staff_with
from tradingstate.actors import Actor
from tradingstate.services import account_set_enabled

pytestmark = pytest.mark.django_db

CONSOLE = reverse("admin:console")
SYSTEM = Actor.system("test")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return staff_user


def test_home_is_the_console_and_the_model_index_one_click_away(client, staff):
    # issue 18 item 1: staff land on the console; Django's model index is linked from it
    home = client.get(reverse("admin:index"))
    text = home.content.decode()
    assert reverse("admin:index") == "/admin/" and 'class="console-account"' not in text
    assert 'id="console-live"' in text and 'id="panel-accounts"' in text
    assert f'href="{reverse("admin:models")}" id="models-link"' in text
    models = client.get(reverse("admin:models")).content.decode()
    assert f'href="{CONSOLE}" id="console-link"' in models
    assert "Site administration" in models
    assert f'href="{CONSOLE}" id="nav-console"' in models  # on every page


def test_console_needs_staff(client, db):
    assert client.get(CONSOLE).status_code == 302
    client.force_login(UserFactory(username="nobody"))
    assert client.get(CONSOLE).status_code == 302


def test_console_shows_each_account(client, staff, reconciled):
    demo = reconciled.account
    AccountFactory(name="quiet")
    text = client.get(CONSOLE).content.decode()
    row = text[text.index('id="account-paper-demo"') : text.index('id="account-quiet"')]
    # last pass, open discrepancies by type with links into the filtered changelist
    # the runbook's three and the demo's missed fill (issue 14), each listed by type
    assert "Completed" in row and "4 open" in row
    base = f"/admin/reconciliation/discrepancy/?account__id__exact={demo.pk}&amp;status__exact=open"
    assert f'href="{base}"' in row
    assert f'href="{base}&amp;type__exact=position_mismatch"' in row
    assert "Position mismatch: 1" in row and "Stale local order: 1" in row
    assert "Missing fill: 1" in row
    assert f"/admin/reconciliation/reconciliationrun/{reconciled.pk}/change/" in row
    assert "<strong>off</strong>" in row  # auto-repair
    assert "trading" in row and "enabled" in row
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="discrepancy-chart"' in row
    assert 'class="bar"' in row
    assert 'value="reconcile_now"' in row and 'value="halt_trading"' in row
    quiet = text[text.index('id="account-quiet"') :]
    assert "never" in quiet[:2000] and "none" in quiet[:3000]
    assert '<div id="global-killswitch" class="">' in text and "<strong>inactive</strong>" in text


def test_console_flags_persistent_halted_disabled_and_global_switch(client, staff, demo):
    for _ in range(3):
        run_reconciliation(demo, "manual")
    killswitch_activate(reason="desync", actor=SYSTEM, account=demo)
    broken = AccountFactory(name="broken")
    account_set_enabled(
        account=broken,
        enabled=False,
        actor=SYSTEM,
        reason="auth",
        disabled_reason="authentication failed: invalid API key",
    )
    killswitch_activate(reason="market chaos", actor=SYSTEM)
    text = client.get(CONSOLE).content.decode()
    row = text[text.index('id="account-paper-demo"') :]
    assert "4 persistent" in row[:4000]  # the runbook's three and the missed fill (issue 14)
    assert "persistent__exact=1" in row[:4000]
    assert "HALTED" in row[:5000] and "desync" in row[:5000]
    assert 'value="resume_trading"' in row[:8000]
    broken_row = text[text.index('id="account-broken"') : text.index('id="account-paper-demo"')]
    assert "DISABLED" in broken_row and "authentication failed: invalid API key" in broken_row
    assert "<strong>ACTIVE</strong> — market chaos" in text
    assert 'id="total-persistent" class="alert">4<' in text  # with the missed fill


def test_console_actions_hidden_without_permissions(client, reconciled):
    client.force_login(staff_with("tradingstate.view_exchangeaccount"))
    text = client.get(CONSOLE).content.decode()
    assert 'value="reconcile_now"' not in text and 'value="halt_trading"' not in text


def _seed(n_accounts: int) -> None:
    now = timezone.now()
    for i in range(n_accounts):
        account = AccountFactory(name=f"seed-{n_accounts}-{i}")
        for j in range(3):
            run = ReconciliationRun.objects.create(
                account=account,
                trigger="schedule",
                status="completed",
                started_at=now - timedelta(hours=j),
                finished_at=now - timedelta(hours=j),
                discrepancies_found=j,
            )
            Discrepancy.objects.create(
                run=run,
                account=account,
                type="balance_mismatch",
                entity="balances",
                key="USDT",
                persistent=j == 2,
            )
        killswitch_activate(reason="seed", actor=SYSTEM, account=account)


def test_query_count_does_not_grow_with_accounts(client, staff, django_assert_max_num_queries):
    _seed(2)
    with CaptureQueriesContext(connection) as few:
        assert client.get(CONSOLE).status_code == 200
    _seed(12)
    with CaptureQueriesContext(connection) as many:
        resp = client.get(CONSOLE)
    assert resp.content.decode().count('class="console-account"') == 14
    assert len(many) == len(few), [q["sql"][:80] for q in many.captured_queries]
    # issue 18: the page now also shows positions with P&L, balances, the desk's exposure,
    # the worker's heartbeat and the event feed (was 12 with the runs table alone); still
    # independent of the number of accounts (above); the per-panel bounds are in
    # tests/integration/web/test_console_dashboard.py
    with django_assert_max_num_queries(26):
        client.get(CONSOLE)


def test_every_changelist_answers_a_lookup_it_cannot_run_as_an_incorrect_one(client, staff):
    # ?created_at__year=99999 (and ?pk__in= past 64 bits on SQLite) failed while the list
    # was counted: a 500. Every ModelAdmin of ours derives from the console's base
    from django.contrib import admin as django_admin

    from tradingstate.web.console.mixins import ConsoleModelAdmin

    ours = {
        model: model_admin
        for model, model_admin in django_admin.site._registry.items()
        if model._meta.app_label in ("tradingstate", "reconciliation", "killswitch")
    }
    assert len(ours) >= 15
    assert [m for m, a in ours.items() if not isinstance(a, ConsoleModelAdmin)] == []
    for model in ours:
        opts = model._meta
        names = {f.name for f in opts.concrete_fields}
        query = "created_at__year=99999" if "created_at" in names else "pk__in=99999999999999999999"
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(f"{url}?{query}")
        assert response.status_code in (200, 302, 403), (opts.label, response.status_code)
        if response.status_code == 302:
            assert response["Location"].endswith("?e=1"), opts.label
