"""D2/D3 (issue 13): who may halt what through the API, what cancel-all touches, and what a
bot reads back. A bot granted account A must never halt, cancel or learn about account B."""

import json

import pytest
from django.contrib.auth.models import Permission

from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.services import killswitch_activate
from tests.api_support import api_cache_table, assert_error, make_bot  # noqa: F401
from tests.factories import AccountFactory, UserFactory
from tradingstate.actors import Actor
from tradingstate.models import PaperOrder

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

URL = "/api/v1/killswitch/"
STAFF = Actor.system("test")


@pytest.fixture
def tenants():
    a, b = AccountFactory(name="acct-a"), AccountFactory(name="acct-b")
    for account, venue_id in ((a, "EX-A"), (b, "EX-B")):
        PaperOrder.objects.create(
            account=account, exchange_order_id=venue_id, symbol="BTC/USDT", side="buy", amount="1"
        )
    bot_a, user_a = make_bot("bot-a", a)
    return a, b, bot_a, user_a


def grant_global(user):
    user.user_permissions.add(Permission.objects.get(codename="activate_global"))


def text_of(response) -> str:
    return json.dumps(response.json())


def test_bot_activate_without_account_halts_only_its_own(
    tenants, django_capture_on_commit_callbacks
):
    a, b, bot_a, _ = tenants
    # when: the bot sends the tester's body
    with django_capture_on_commit_callbacks(execute=True):
        response = bot_a.post(
            URL + "activate/", {"reason": "x", "cancel_open_orders": True}, format="json"
        )
    # then: only its account is halted and only its venue order cancelled
    assert response.status_code == 200, response.content
    assert not KillSwitch.objects.get(account__isnull=True).active
    assert KillSwitch.objects.get(account=a).active
    assert not KillSwitch.objects.get(account=b).active
    assert PaperOrder.objects.get(exchange_order_id="EX-B").status == "open"
    assert PaperOrder.objects.get(exchange_order_id="EX-A").status != "open"
    body = response.json()
    assert body["scope"] == "accounts" and body["accounts"] == ["acct-a"]
    # (on-commit ran after the view here: the recorded summary is what the response carries)
    summary = KillSwitchEvent.objects.get(action="cancel_orders").cancel_summary
    assert set(summary["accounts"]) == {"acct-a"}
    assert "acct-b" not in text_of(response) and "EX-B" not in text_of(response)


def test_bot_may_not_activate_global_without_the_permission(tenants):
    _a, _b, bot_a, _ = tenants
    response = bot_a.post(URL + "activate/", {"reason": "x", "scope": "global"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert not KillSwitch.objects.filter(active=True).exists()
    assert not KillSwitchEvent.objects.exists()


def test_bot_with_activate_global_halts_all_but_cancels_only_its_own(
    tenants, django_capture_on_commit_callbacks
):
    _a, _b, bot_a, user_a = tenants
    grant_global(user_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = bot_a.post(
            URL + "activate/",
            {"reason": "venue down", "scope": "global", "cancel_open_orders": True},
            format="json",
        )
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "global"
    assert KillSwitch.objects.get(account__isnull=True).active
    assert PaperOrder.objects.get(exchange_order_id="EX-B").status == "open"
    assert PaperOrder.objects.get(exchange_order_id="EX-A").status != "open"
    summary = KillSwitchEvent.objects.get(action="cancel_orders").cancel_summary
    assert set(summary["accounts"]) == {"acct-a"}
    assert "acct-b" not in text_of(response)


def test_staff_needs_the_permission_for_the_global_switch(tenants):
    plain = UserFactory(username="bob", is_staff=True)
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(plain)
    assert_error(
        client.post(URL + "activate/", {"reason": "x"}, format="json"), 403, "permission_denied"
    )
    assert not KillSwitch.objects.filter(active=True).exists()
    grant_global(plain)
    plain = type(plain).objects.get(pk=plain.pk)  # fresh permission cache
    client.force_login(plain)
    response = client.post(URL + "activate/", {"reason": "x"}, format="json")
    assert response.status_code == 200 and response.json()["scope"] == "global"


def test_bot_cannot_halt_or_probe_another_tenants_account(tenants):
    _a, _b, bot_a, _ = tenants
    response = bot_a.post(URL + "activate/", {"reason": "x", "account": "acct-b"}, format="json")
    assert_error(response, 404, "not_found")
    assert_error(bot_a.get(URL, {"account": "acct-b"}), 404, "not_found")
    assert not KillSwitch.objects.filter(active=True).exists()


def test_read_tells_a_bot_its_account_is_halted_and_by_which_scope(tenants):
    a, b, bot_a, _ = tenants
    # another tenant's halt is invisible and does not stop this bot
    killswitch_activate(reason="b only", actor=STAFF, account=b)
    body = bot_a.get(URL).json()
    assert not body["active"] and body["trading_allowed"] is True
    assert "acct-b" not in json.dumps(body) and "b only" not in json.dumps(body)
    # its own account halted: active, scope account, not allowed
    killswitch_activate(reason="a only", actor=STAFF, account=a)
    body = bot_a.get(URL).json()
    assert body["active"] and body["scope"] == "account" and body["reason"] == "a only"
    assert body["trading_allowed"] is False
    assert body["accounts"] == [
        {"account": "acct-a", "trading_allowed": False, "halted_by": "account", "reason": "a only"}
    ]
    # the global switch wins and is named
    killswitch_activate(reason="all", actor=STAFF)
    body = bot_a.get(URL, {"account": "acct-a"}).json()
    assert body["active"] and body["scope"] == "global" and body["reason"] == "all"
    assert body["accounts"][0]["halted_by"] == "global"
    assert "acct-b" not in json.dumps(body)


def test_a_bot_with_several_accounts_reads_each(tenants):
    a, _b, _, _ = tenants
    c = AccountFactory(name="acct-c")
    bot, _ = make_bot("bot-ac", a, c)
    killswitch_activate(reason="c down", actor=STAFF, account=c)
    body = bot.get(URL).json()
    assert body["active"] and not body["trading_allowed"]
    assert {r["account"]: r["trading_allowed"] for r in body["accounts"]} == {
        "acct-a": True,
        "acct-c": False,
    }
    one = bot.get(URL, {"account": "acct-a"}).json()
    assert one["trading_allowed"] is True and not one["active"]


def test_the_admins_activate_permission_lets_staff_halt_all_but_not_a_bot(tenants):
    from rest_framework.test import APIClient

    _a, _b, bot_a, user_a = tenants
    activate = Permission.objects.get(codename="activate_killswitch")
    # a bot granted the staff permission still halts only its own accounts' scope
    user_a.user_permissions.add(activate)
    response = bot_a.post(URL + "activate/", {"reason": "x", "scope": "global"}, format="json")
    assert_error(response, 403, "permission_denied")
    # staff with it may halt everything (as on the admin's control page)
    staff = UserFactory(username="carol", is_staff=True)
    staff.user_permissions.add(activate)
    client = APIClient()
    client.force_login(staff)
    response = client.post(URL + "activate/", {"reason": "x"}, format="json")
    assert response.status_code == 200 and response.json()["scope"] == "global"
    assert KillSwitch.objects.get(account__isnull=True).active
