import pytest
from django.contrib.auth.models import Permission
from knox.models import AuthToken
from rest_framework.test import APIClient

from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.services import killswitch_activate
from tests.audit import assert_audited
from tests.factories import AccountFactory, UserFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, PaperOrder

pytestmark = pytest.mark.django_db

URL = "/api/v1/killswitch/"
REASON = "Manual position correction in progress"


def token_client(user) -> APIClient:
    _, token = AuthToken.objects.create(user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def assert_error(response, status, code):
    assert response.status_code == status, (response.status_code, response.content[:400])
    body = response.json()
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["fields"], dict)
    return body


@pytest.fixture
def bot_client(bot_profile):
    return token_client(bot_profile.user)


@pytest.fixture
def staff_client(staff_user):
    # staff_user is a superuser: every permission
    client = APIClient()
    client.force_login(staff_user)
    return client


@pytest.fixture
def plain_staff():
    return UserFactory(username="bob", is_staff=True)


def test_status_inactive(bot_client):
    response = bot_client.get(URL)
    assert response.status_code == 200
    assert response.json() == {
        "active": False,
        "reason": "",
        "activated_by": "",
        "activated_at": None,
        "halted_accounts": [],
        "scope": "",
        "trading_allowed": True,
        "accounts": [
            {"account": "test-acct", "trading_allowed": True, "halted_by": "", "reason": ""}
        ],
    }


def test_bot_activates_and_status_shows_it(bot_client, bot_profile, account):
    # when: a bot activates without naming an account (issue 13: it halts its own accounts)
    response = bot_client.post(
        URL + "activate/", {"reason": REASON}, format="json", HTTP_X_REQUEST_ID="req-9"
    )
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["changed"] and body["active"] and body["scope"] == "accounts"
    assert body["accounts"] == ["test-acct"]
    assert body["state"]["active"] and body["state"]["reason"] == REASON
    status = bot_client.get(URL).json()
    assert status["active"] and status["reason"] == REASON and status["scope"] == "account"
    assert status["activated_by"] == "alpha-bot" and status["activated_at"]
    assert status["trading_allowed"] is False
    assert not KillSwitch.objects.get(account__isnull=True).active
    actor = Actor(type="bot", name="alpha-bot", user_id=bot_profile.user.pk, correlation_id="req-9")
    assert_audited(
        KillSwitch.objects.get(account=account),
        action="killswitch.activate",
        actor=actor,
        reason=REASON,
    )


def test_activate_twice_says_already_active(bot_client):
    bot_client.post(URL + "activate/", {"reason": REASON}, format="json")
    response = bot_client.post(URL + "activate/", {"reason": "again"}, format="json")
    assert response.status_code == 200
    assert not response.json()["changed"] and "already active" in response.json()["message"]
    assert KillSwitchEvent.objects.count() == 1


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}])
def test_activate_needs_reason(bot_client, body):
    response = bot_client.post(URL + "activate/", body, format="json")
    result = assert_error(response, 400, "validation_error")
    assert "reason" in result["fields"]
    assert not KillSwitch.objects.filter(active=True).exists()


def test_bot_halts_its_own_account_only(bot_client, account):
    other = AccountFactory(name="not-granted")
    response = bot_client.post(
        URL + "activate/", {"reason": "bad fills", "account": account.name}, format="json"
    )
    assert response.status_code == 200 and response.json()["scope"] == "account"
    assert response.json()["state"]["halted_accounts"][0]["account"] == "test-acct"
    assert_error(
        bot_client.post(URL + "activate/", {"reason": "x", "account": other.name}, format="json"),
        404,
        "not_found",
    )
    assert not KillSwitch.objects.filter(account=other, active=True).exists()


def test_bot_cannot_deactivate(bot_client, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    response = bot_client.post(URL + "deactivate/", {"reason": "resume"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert KillSwitch.objects.get(account__isnull=True).active


def test_bot_cannot_deactivate_even_with_the_permission(bot_profile, staff_actor):
    user = bot_profile.user
    user.is_staff = True
    user.save()
    user.user_permissions.add(Permission.objects.get(codename="deactivate_killswitch"))
    killswitch_activate(reason=REASON, actor=staff_actor)
    response = token_client(user).post(URL + "deactivate/", {"reason": "x"}, format="json")
    assert_error(response, 403, "permission_denied")


def test_staff_without_permission_gets_403(plain_staff, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    client = token_client(plain_staff)
    assert_error(client.post(URL + "deactivate/", {}, format="json"), 403, "permission_denied")
    assert KillSwitch.objects.get(account__isnull=True).active
    # but staff may activate and read
    assert client.get(URL).status_code == 200


def test_staff_with_permission_deactivates(plain_staff, staff_actor):
    plain_staff.user_permissions.add(Permission.objects.get(codename="deactivate_killswitch"))
    killswitch_activate(reason=REASON, actor=staff_actor)
    client = token_client(plain_staff)
    # when
    response = client.post(
        URL + "deactivate/", {"reason": "fixed"}, format="json", HTTP_X_REQUEST_ID="req-5"
    )
    # then
    assert response.status_code == 200, response.content
    assert response.json()["changed"] and not response.json()["state"]["active"]
    actor = Actor(type="user", name="bob", user_id=plain_staff.pk, correlation_id="req-5")
    assert_audited(
        KillSwitch.objects.get(account__isnull=True),
        action="killswitch.deactivate",
        actor=actor,
        reason="fixed",
    )
    again = client.post(URL + "deactivate/", {}, format="json")
    assert again.status_code == 200 and "already inactive" in again.json()["message"]


def test_superuser_session_deactivates_account(staff_client, account, staff_actor):
    killswitch_activate(reason="x", actor=staff_actor, account=account)
    response = staff_client.post(
        URL + "deactivate/", {"account": account.name, "reason": "ok"}, format="json"
    )
    assert response.status_code == 200 and response.json()["scope"] == "account"
    assert not KillSwitch.objects.get(account=account).active


def test_activate_with_cancel_open_orders(staff_client, account):
    PaperOrder.objects.create(
        account=account, exchange_order_id="EX-1", symbol="BTC/USDT", side="buy", amount="1"
    )
    response = staff_client.post(
        URL + "activate/",
        {"reason": REASON, "account": account.name, "cancel_open_orders": True},
        format="json",
    )
    # (the test's transaction never commits: run the on-commit cancel by hand in the next test)
    assert response.status_code == 200
    assert KillSwitchEvent.objects.filter(action="activate", cancel_open_orders=True).exists()


def test_activate_with_cancel_reports_summary(
    staff_client, account, django_capture_on_commit_callbacks
):
    PaperOrder.objects.create(
        account=account, exchange_order_id="EX-1", symbol="BTC/USDT", side="buy", amount="1"
    )
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.post(
            URL + "activate/",
            {"reason": REASON, "cancel_open_orders": True},
            format="json",
        )
    assert not PaperOrder.objects.filter(status="open").exists()
    assert KillSwitchEvent.objects.get(action="cancel_orders").cancel_summary["cancelled"] == 1


def test_anonymous_and_plain_users_are_refused(account):
    assert_error(APIClient().get(URL), 401, "not_authenticated")
    plain = token_client(UserFactory(username="carol"))
    assert_error(plain.get(URL), 403, "permission_denied")
    assert_error(
        plain.post(URL + "activate/", {"reason": "x"}, format="json"), 403, "permission_denied"
    )


def test_unknown_account_is_404_and_changes_nothing(staff_client):
    response = staff_client.post(
        URL + "activate/", {"reason": "x", "account": "nope"}, format="json"
    )
    assert_error(response, 404, "not_found")
    assert not AuditEntry.objects.exists()


def test_halted_order_registration_is_423(bot_client, account, staff_actor):
    """The bots' order endpoint (another module) refuses with the kill switch's 423."""
    killswitch_activate(reason=REASON, actor=staff_actor)
    response = bot_client.post(
        f"/api/v1/accounts/{account.name}/orders/",
        {
            "client_order_id": "abc123",
            "symbol": "BTC/USDT",
            "side": "buy",
            "type": "limit",
            "quantity": "0.05",
            "price": "50000",
        },
        format="json",
    )
    if response.status_code == 404 and response.json().get("error") == "not_found":
        pytest.skip("the orders endpoint is not there yet")
    body = assert_error(response, 423, "kill_switch_active")
    assert body["reason"] == REASON


def test_bots_sees_halted_accounts(bot_client, account, staff_actor):
    killswitch_activate(reason="acct down", actor=staff_actor, account=account)
    body = bot_client.get(URL).json()
    # issue 13 (D3): `active` is true while the bot's own account is halted
    assert body["active"] and body["scope"] == "account" and not body["trading_allowed"]
    assert [(h["account"], h["reason"]) for h in body["halted_accounts"]] == [
        ("test-acct", "acct down")
    ]
