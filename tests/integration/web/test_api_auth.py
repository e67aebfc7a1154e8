"""Authentication, permissions, object-level access (BOLA) and the create_bot command."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.api_support import (
    API,
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    two_accounts,
    url,
)
from tests.audit import assert_audited
from tests.factories import OrderFactory, StaffFactory, UserFactory
from tradingstate.actors import Actor
from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.models import AuditEntry, BotProfile, Order, Position
from tradingstate.services import bot_create

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


# --- bot_create service -------------------------------------------------------------------
def test_bot_create_makes_user_profile_token_and_audits():
    # given
    _a, _b = two_accounts()
    actor = Actor.system("tests")
    # when
    result = bot_create(name="alpha", account_names=["acct-a", "acct-b"], actor=actor)
    # then
    assert result.created and result.token
    assert not result.profile.user.has_usable_password()
    assert sorted(result.profile.accounts.values_list("name", flat=True)) == ["acct-a", "acct-b"]
    token = AuthToken.objects.get(user=result.profile.user)
    assert token.expiry is None and result.token not in token.digest  # stored hashed
    entry = assert_audited(
        result.profile, action="bot.create", actor=actor, after={"accounts": ["acct-a", "acct-b"]}
    )
    assert result.token not in str(entry.after)


def test_bot_create_again_adds_a_token_and_replaces_grants():
    _a, _b = two_accounts()
    actor = Actor.system("tests")
    first = bot_create(name="alpha", account_names=["acct-a"], actor=actor)
    # when
    second = bot_create(name="alpha", account_names=["acct-b"], actor=actor)
    # then
    assert not second.created and second.token != first.token
    assert AuthToken.objects.filter(user=first.profile.user).count() == 2
    assert list(second.profile.accounts.values_list("name", flat=True)) == ["acct-b"]
    assert_audited(
        second.profile,
        action="bot.update",
        actor=actor,
        before={"accounts": ["acct-a"], "tokens": 1},
        after={"accounts": ["acct-b"], "tokens": 2},
    )


def test_bot_create_refuses_unknown_accounts_listing_them():
    two_accounts()
    with pytest.raises(ValidationFailed) as exc:
        bot_create(name="alpha", account_names=["acct-a", "nope", "zzz"], actor=Actor.system("t"))
    assert "nope, zzz" in exc.value.message
    assert not BotProfile.objects.exists() and not AuditEntry.objects.exists()


def test_bot_create_refuses_an_existing_human_user():
    UserFactory(username="alice")
    with pytest.raises(Conflict):
        bot_create(name="alice", account_names=[], actor=Actor.system("t"))


# --- create_bot command ---------------------------------------------------------------------
def test_create_bot_command_prints_the_token_once_and_it_works():
    _a, _ = two_accounts()
    out = StringIO()
    call_command("create_bot", "alpha", "--accounts", "acct-a", stdout=out)
    lines = out.getvalue().splitlines()
    assert "Created bot 'alpha'" in lines[0]
    token = lines[lines.index("API token (shown only once; store it now):") + 1]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get(f"{API}/accounts/").json()["results"][0]["name"] == "acct-a"
    # again: an additional token, and it says so
    out = StringIO()
    call_command("create_bot", "alpha", "--accounts", "acct-a,acct-b", stdout=out)
    assert "ADDITIONAL token" in out.getvalue()
    assert AuthToken.objects.filter(user__username="alpha").count() == 2


def test_create_bot_command_unknown_account_is_a_clear_error():
    two_accounts()
    with pytest.raises(CommandError, match=r"Unknown account\(s\): ghost\. Known accounts"):
        call_command("create_bot", "alpha", "--accounts", "acct-a,ghost", stdout=StringIO())


# --- authentication and permissions ---------------------------------------------------------
def test_no_credentials_is_401():
    _a, _ = two_accounts()
    response = APIClient().get(f"{API}/accounts/")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_bad_or_revoked_token_is_401():
    a, _ = two_accounts()
    client, user = make_bot("alpha", a)
    AuthToken.objects.filter(user=user).delete()  # revoke
    assert_error(client.get(f"{API}/accounts/"), 401, "not_authenticated")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    assert_error(other.get(f"{API}/accounts/"), 401, "not_authenticated")


def test_each_of_several_tokens_works_and_revoking_one_keeps_the_other():
    a, _ = two_accounts()
    client1, user = make_bot("alpha", a)
    client2, _ = make_bot("alpha", a)
    assert client1.get(f"{API}/accounts/").status_code == 200
    assert client2.get(f"{API}/accounts/").status_code == 200
    AuthToken.objects.filter(user=user).order_by("created").first().delete()
    assert client1.get(f"{API}/accounts/").status_code == 401
    assert client2.get(f"{API}/accounts/").status_code == 200


def test_non_staff_non_bot_user_is_403():
    a, _ = two_accounts()
    client = APIClient()
    client.force_login(UserFactory(username="carol"))
    assert_error(client.get(f"{API}/accounts/"), 403, "permission_denied")
    assert_error(client.get(url(a, "orders")), 403, "permission_denied")


def test_staff_session_sees_every_account_and_writes_as_user():
    _a, b = two_accounts()
    staff = StaffFactory(username="alice")
    client = APIClient()
    client.force_login(staff)
    names = {row["name"] for row in client.get(f"{API}/accounts/").json()["results"]}
    assert names == {"acct-a", "acct-b"}
    response = client.post(
        url(b, "orders"), order_body(), format="json", HTTP_X_REQUEST_ID="staff-1"
    )
    assert response.status_code == 201
    order = Order.objects.get(account=b)
    assert order.origin == "manual"
    assert_audited(
        order,
        action="order.register",
        actor=Actor(type="user", name="alice", user_id=staff.pk, correlation_id="staff-1"),
    )


def test_staff_session_writes_need_csrf():
    a, _ = two_accounts()
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(StaffFactory(username="alice"))
    response = client.post(url(a, "orders"), order_body(), format="json")
    assert_error(response, 403, "permission_denied")
    assert not Order.objects.exists()


# --- BOLA: bot A cannot see or touch account B ----------------------------------------------
@pytest.fixture
def bola():
    a, b = two_accounts()
    client_a, _ = make_bot("bot-a", a)
    client_b, _ = make_bot("bot-b", b)
    order_b = OrderFactory(account=b, client_order_id="b-order", status="submitted")
    Position.objects.create(account=b, symbol="BTC/USDT", qty=1)
    return a, b, client_a, client_b, order_b


def test_bot_lists_only_its_accounts(bola):
    _a, _b, client_a, client_b, _ = bola
    assert [r["name"] for r in client_a.get(f"{API}/accounts/").json()["results"]] == ["acct-a"]
    assert [r["name"] for r in client_b.get(f"{API}/accounts/").json()["results"]] == ["acct-b"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", ("orders",), None),
        ("post", ("orders",), order_body(client_order_id="sneak")),
        ("get", ("orders", "b-order"), None),
        ("post", ("orders", "b-order", "transition"), {"status": "cancelled"}),
        (
            "post",
            ("orders", "bulk-transition"),
            {"updates": [{"client_order_id": "b-order", "status": "cancelled"}]},
        ),
        (
            "post",
            ("fills",),
            {"client_order_id": "b-order", "trade_id": "t1", "quantity": "0.1", "price": "1"},
        ),
        ("get", ("positions",), None),
        ("put", ("positions", "BTC%2FUSDT"), {"qty": "5"}),
        ("get", ("balances",), None),
        ("put", ("balances", "USDT"), {"total": "5"}),
    ],
)
def test_other_bots_account_is_404_and_unchanged(bola, method, path, body):
    _a, b, client_a, _, order_b = bola
    before = AuditEntry.objects.count()
    response = getattr(client_a, method)(url(b, *path), body, format="json")
    assert_error(response, 404, "not_found")
    assert "acct-b" in response.json()["detail"]  # same answer as for a missing account
    missing = getattr(client_a, method)(url("no-such-acct", *path), body, format="json")
    assert missing.json()["detail"].replace("no-such-acct", "acct-b") == response.json()["detail"]
    order_b.refresh_from_db()
    assert order_b.status == "submitted"
    assert AuditEntry.objects.count() == before
    assert Order.objects.filter(account=b).count() == 1


def test_bot_cannot_reach_other_accounts_order_through_its_own_account(bola):
    a, _b, client_a, _, _ = bola
    assert_error(client_a.get(url(a, "orders", "b-order")), 404, "not_found")
    response = client_a.post(
        url(a, "orders", "b-order", "transition"), {"status": "cancelled"}, format="json"
    )
    assert_error(response, 404, "not_found")
