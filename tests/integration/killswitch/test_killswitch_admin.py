import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from killswitch import context_processors
from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.services import killswitch_activate
from tests.audit import assert_audited
from tests.factories import UserFactory
from tradingstate.actors import Actor

pytestmark = pytest.mark.django_db

CONTROL = "/admin/killswitch/killswitch/control/"
REASON = "Manual position correction in progress"
BANNER = f"KILL SWITCH ACTIVE — new orders are refused. Reason: {REASON}"


@pytest.fixture
def admin_client_alice(client, staff_user):
    client.force_login(staff_user)
    return client


def staff_with(*codenames):
    user = UserFactory(username="bob", is_staff=True)
    for codename in codenames:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def test_control_page_url_and_changelist_link(admin_client_alice):
    assert reverse("admin:killswitch_killswitch_control") == CONTROL
    page = admin_client_alice.get("/admin/killswitch/killswitch/")
    assert page.status_code == 200 and CONTROL in page.content.decode()
    control = admin_client_alice.get(CONTROL)
    assert control.status_code == 200 and "Kill switch: INACTIVE" in control.content.decode()


def test_activate_from_admin_audits_and_shows_banner_everywhere(admin_client_alice, staff_user):
    # when
    response = admin_client_alice.post(
        CONTROL, {"action": "activate", "reason": REASON, "account": ""}, HTTP_X_REQUEST_ID="r-1"
    )
    # then
    assert response.status_code == 302
    row = KillSwitch.objects.get(account__isnull=True)
    assert row.active and row.reason == REASON
    actor = Actor(type="user", name="alice", user_id=staff_user.pk, correlation_id="r-1")
    assert_audited(row, action="killswitch.activate", actor=actor, reason=REASON)
    for url in (
        "/admin/",
        "/admin/tradingstate/order/",
        "/admin/tradingstate/auditentry/",
        "/admin/killswitch/killswitchevent/",
        "/admin/password_change/",
        CONTROL,
    ):
        page = admin_client_alice.get(url)
        assert page.status_code == 200, url
        assert BANNER in page.content.decode(), url


def test_no_banner_while_inactive(admin_client_alice):
    assert "KILL SWITCH ACTIVE" not in admin_client_alice.get("/admin/").content.decode()


def test_banner_for_a_halted_account(admin_client_alice, account, staff_actor):
    killswitch_activate(reason="venue down", actor=staff_actor, account=account)
    html = admin_client_alice.get("/admin/").content.decode()
    assert (
        "Trading halted on account test-acct — new orders are refused. Reason: venue down" in html
    )


def test_banner_when_state_unreadable(admin_client_alice, monkeypatch):
    def boom():
        raise RuntimeError("db down")

    monkeypatch.setattr("killswitch.selectors.killswitch_state", boom)
    html = admin_client_alice.get("/admin/").content.decode()
    assert context_processors.BANNER_UNAVAILABLE in html


def test_reason_required_in_admin(admin_client_alice):
    response = admin_client_alice.post(CONTROL, {"action": "activate", "reason": "  "})
    assert response.status_code == 200
    assert "A reason is required." in response.content.decode()
    assert not KillSwitch.objects.filter(active=True).exists()
    assert not KillSwitchEvent.objects.exists()


def test_per_account_deactivate_from_admin(admin_client_alice, account, staff_actor):
    killswitch_activate(reason="x", actor=staff_actor, account=account)
    response = admin_client_alice.post(
        CONTROL, {"action": "deactivate", "reason": "fixed", "account": account.name}
    )
    assert response.status_code == 302
    assert not KillSwitch.objects.get(account=account).active
    event = KillSwitchEvent.objects.filter(action="deactivate").get()
    assert event.account == account and event.reason == "fixed" and event.actor_name == "alice"


def test_deactivation_needs_the_permission(client, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    client.force_login(staff_with("activate_killswitch", "view_killswitch"))
    # when
    response = client.post(CONTROL, {"action": "deactivate", "reason": "resume"})
    # then
    assert response.status_code == 403
    assert KillSwitch.objects.get(account__isnull=True).active
    # while activation (a no-op here) is allowed
    assert client.post(CONTROL, {"action": "activate", "reason": "again"}).status_code == 302


def test_staff_without_any_kill_switch_permission_is_refused(client):
    client.force_login(staff_with())
    assert client.get(CONTROL).status_code == 403


def test_event_history_is_read_only(admin_client_alice, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    event = KillSwitchEvent.objects.get()
    base = "/admin/killswitch/killswitchevent/"
    assert admin_client_alice.get(base).status_code == 200
    assert REASON in admin_client_alice.get(base).content.decode()
    assert admin_client_alice.get(base + "add/").status_code == 403
    assert admin_client_alice.get(f"{base}{event.pk}/delete/").status_code == 403
    detail = admin_client_alice.post(f"{base}{event.pk}/change/", {"reason": "edited"})
    assert detail.status_code == 403
    event.refresh_from_db()
    assert event.reason == REASON
    changelist = admin_client_alice.get(base)
    assert "delete_selected" not in changelist.content.decode()


def test_state_rows_are_read_only(admin_client_alice, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    row = KillSwitch.objects.get(account__isnull=True)
    base = "/admin/killswitch/killswitch/"
    assert admin_client_alice.get(base + "add/").status_code == 403
    assert admin_client_alice.get(f"{base}{row.pk}/delete/").status_code == 403
    admin_client_alice.post(f"{base}{row.pk}/change/", {"active": ""})
    row.refresh_from_db()
    assert row.active
