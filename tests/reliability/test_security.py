"""Security: BOLA matrix, tokens, bots vs. staff-only surfaces, admin permissions, login
lockout (django-axes), ``check --deploy`` in production settings, exchange secrets never
stored/logged/shown, the audit trail append-only in PostgreSQL."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from reconciliation.services import run_reconciliation
from tests.api_support import API, api_cache_table, make_bot, order_body, url  # noqa: F401
from tests.factories import AccountFactory, OrderFactory, StaffFactory
from tests.fakes.fixtures import PLANTED_SECRET, fake_account
from tests.pg import requires_postgres
from tests.reliability.conftest import ROOT, python
from tests.reliability.support import dump_tables
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Balance, Order, Position
from tradingstate.services import position_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

CANCEL_O1 = {"client_order_id": "o1", "status": "cancelled"}
FILL_O1 = {"client_order_id": "o1", "trade_id": "t1", "quantity": "0.01", "price": "1"}
# every account-scoped endpoint: (method, path parts, body)
ENDPOINTS = [
    ("get", ("orders",), None),
    ("post", ("orders",), order_body(client_order_id="sneak")),
    ("get", ("orders", "o1"), None),
    ("post", ("orders", "o1", "transition"), {"status": "cancelled"}),
    ("post", ("orders", "bulk-transition"), {"updates": [CANCEL_O1]}),
    ("post", ("fills",), FILL_O1),
    ("get", ("positions",), None),
    ("put", ("positions", "BTC%2FUSDT"), {"qty": "5"}),
    ("get", ("balances",), None),
    ("put", ("balances", "USDT"), {"total": "5"}),
    ("get", ("reconciliations",), None),
    ("post", ("reconciliations",), {}),
    ("get", ("discrepancies",), None),
]  # fmt: skip


@pytest.fixture
def grants():
    accounts = [AccountFactory(name="acct-a"), AccountFactory(name="acct-b")]
    for account in accounts:
        OrderFactory(account=account, client_order_id="o1", status="submitted")
        position_set(account=account, symbol="BTC/USDT", qty="1", actor=Actor.system("t"))
    bots = [make_bot("bot-a", accounts[0])[0], make_bot("bot-b", accounts[1])[0]]
    return accounts, bots


@pytest.mark.bound(120)
def test_bola_matrix_every_endpoint_404_off_grant_and_nothing_changes(grants, figure):
    accounts, bots = grants
    checked = 0
    for b, bot in enumerate(bots):
        for a, account in enumerate(accounts):
            for method, parts, body in ENDPOINTS:
                before = dump_tables() if a != b else None
                response = getattr(bot, method)(url(account, *parts), body, format="json")
                checked += 1
                if a == b:
                    assert response.status_code not in (401, 403, 404), (
                        method,
                        parts,
                        response.content,
                    )
                    continue
                assert response.status_code == 404, (b, a, method, parts, response.status_code)
                assert response.json()["error"] == "not_found"
                assert account.name in response.json()["detail"]
                assert dump_tables() == before, (method, parts)
            # the kill switch's per-account halt, too
            response = bot.post(
                f"{API}/killswitch/activate/",
                {"reason": "x", "account": account.name},
                format="json",
            )
            checked += 1
            assert response.status_code == (404 if a != b else 200), response.content
    # each bot lists only its own account
    for b, bot in enumerate(bots):
        names = [r["name"] for r in bot.get(f"{API}/accounts/").json()["results"]]
        assert names == [accounts[b].name]
    figure(ops=checked, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(60)
def test_missing_malformed_and_revoked_tokens_are_401(grants, figure):
    accounts, _ = grants
    client, user = make_bot("bot-c", accounts[0])
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    headers = [
        None,
        "",
        "Token",
        "Token ",
        f"Token {token} extra",
        f"Bearer {token}",
        f"token{token}",
        "Token " + "x" * 64,
        "Token " + token[:-1] + ("a" if token[-1] != "a" else "b"),
        "Token \x7f" + token,
        "Basic " + "YWxpY2U6cGFzcw==",
    ]
    for header in headers:
        c = APIClient()
        if header is not None:
            c.credentials(HTTP_AUTHORIZATION=header)
        response = c.get(url(accounts[0], "orders"))
        assert response.status_code == 401, (header, response.status_code)
        assert response.json()["error"] == "not_authenticated"
    assert client.get(url(accounts[0], "orders")).status_code == 200
    user.auth_token_set.all().delete()  # revoked
    assert client.get(url(accounts[0], "orders")).status_code == 401
    figure(ops=len(headers) + 2, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(60)
def test_bots_cannot_deactivate_the_kill_switch_or_reach_the_admin(grants, client, figure):
    _, bots = grants
    bot = bots[0]
    assert (
        bot.post(f"{API}/killswitch/activate/", {"reason": "halt"}, format="json").status_code
        == 200
    )
    response = bot.post(f"{API}/killswitch/deactivate/", {"reason": "go"}, format="json")
    assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert bot.get(f"{API}/killswitch/").json()["active"] is True
    # the bot's user cannot use the admin, even logged in by session
    from tradingstate.models import BotProfile

    bot_user = BotProfile.objects.first().user
    client.force_login(bot_user)
    for path in ("/admin/", "/admin/tradingstate/order/", "/admin/console/"):
        response = client.get(path)
        assert response.status_code in (302, 403, 404), (path, response.status_code)
        assert response.status_code != 200
    figure(ops=5, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(60)
def test_admin_actions_refused_without_their_permission(grants, client, figure):
    accounts, _ = grants
    staff = StaffFactory(username="viewer", is_superuser=False)
    staff.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    client.force_login(staff)
    api = APIClient()
    api.force_login(staff)
    position = Position.objects.get(account=accounts[0])
    before = dump_tables()
    refused = 0
    response = client.post(f"/admin/tradingstate/position/{position.pk}/correct/",
                           {"qty": "9", "reason": "x", "version": position.version})  # fmt: skip
    assert response.status_code == 403
    refused += 1
    response = api.post(f"{API}/killswitch/deactivate/", {"reason": "x"}, format="json")
    assert response.status_code == 403
    refused += 1
    response = client.post(
        "/admin/tradingstate/exchangeaccount/",
        {"action": "reconcile_now", "_selected_action": [accounts[0].pk]},
    )
    assert response.status_code in (200, 302, 403)
    assert dump_tables() == before
    refused += 1
    figure(ops=refused, refused=refused, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(60)
def test_admin_login_locks_out_after_five_failures(client, figure):
    StaffFactory(username="alice", password="correct horse battery")
    login = "/admin/login/?next=/admin/"
    codes = [
        client.post(
            login, {"username": "alice", "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
        ).status_code
        for _ in range(settings.AXES_FAILURE_LIMIT)
    ]
    # the form again with an error, until the fifth failure locks the pair out
    assert codes == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429], codes
    # the right password is now refused from that address
    response = client.post(
        login, {"username": "alice", "password": "correct horse battery"}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == settings.AXES_HTTP_RESPONSE_CODE == 429
    assert "_auth_user_id" not in client.session
    # lockout is per username+IP: alice from elsewhere still gets in
    other = type(client)()
    response = other.post(
        login, {"username": "alice", "password": "correct horse battery"}, REMOTE_ADDR="10.0.0.2"
    )
    assert response.status_code == 302 and "_auth_user_id" in other.session
    figure(ops=settings.AXES_FAILURE_LIMIT + 2, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(90)
def test_check_deploy_is_clean_in_production_settings(tmp_path, figure):
    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        # production terminates TLS (itself or at a proxy); "off" is loopback development
        "TRADINGSTATE_WEB__TLS": "direct",
        "DATABASE_URL": f"sqlite:///{tmp_path}/deploy.sqlite3",
        "TRADINGSTATE_LOG_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tradingstate.settings",
    }
    result = subprocess.run(
        [python(), "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=80,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout, result.stdout
    figure(ops=1, repairs=0, lost=0, duplicates=0)


@pytest.mark.bound(90)
def test_exchange_secrets_never_in_database_logs_or_responses(
    fake_exchange, fake_credentials, client, figure
):
    # given: an account whose secret (the planted value) lives only in the environment
    account = fake_account(fake_exchange, "binance", "swap", name="secret-acct", save=True)
    bot, _ = make_bot("bot-s", account)
    log_dir = Path(settings.LOG_DIR)
    sizes = {p: p.stat().st_size for p in log_dir.glob("*.log")}
    # when: passes that succeed, then fail on authentication
    runs = [run_reconciliation(account, "manual")]
    fake_exchange.fail("/fapi/v1/openOrders", "auth")
    runs.append(run_reconciliation(account, "manual"))
    account.refresh_from_db()
    account.enabled = True
    account.save()
    fake_exchange.reset()
    fake_exchange.fail("/fapi/v3/account", "auth")
    runs.append(run_reconciliation(account, "manual"))
    assert runs[-1].status == "failed"
    # then: not in the database
    dump = json.dumps(dump_tables())
    assert PLANTED_SECRET not in dump
    out = Path(settings.LOG_DIR) / "dumpdata-check.json"
    try:
        call_command(
            "dumpdata", "tradingstate", "reconciliation", "killswitch", output=str(out), verbosity=0
        )
        assert PLANTED_SECRET not in out.read_text()
    finally:
        out.unlink(missing_ok=True)
    # not in the log files (what this test appended)
    for path in log_dir.glob("*.log"):
        with path.open("rb") as f:
            f.seek(sizes.get(path, 0))
            assert PLANTED_SECRET.encode() not in f.read(), path
    # not in API answers
    texts = [
        bot.get(url(account, "reconciliations")).content,
        bot.get(url(account, "discrepancies")).content,
        bot.get(f"{API}/accounts/").content,
        bot.get(f"{API}/health/").content,
    ]
    staff = StaffFactory(username="root", is_superuser=True)
    client.force_login(staff)
    texts += [
        client.get(f"/admin/tradingstate/exchangeaccount/{account.pk}/change/").content,
        client.get(f"/admin/reconciliation/reconciliationrun/{runs[-1].pk}/change/").content,
        client.get("/admin/tradingstate/auditentry/").content,
    ]
    for text in texts:
        assert PLANTED_SECRET.encode() not in text
    figure(ops=len(runs) + len(texts), repairs=0, lost=0, duplicates=0)


@requires_postgres
@pytest.mark.bound(30)
def test_audit_rows_cannot_be_altered_in_postgres(grants, figure):
    entry = AuditEntry.objects.order_by("pk").first()
    attempts = [
        ("UPDATE tradingstate_auditentry SET reason = 'tampered' WHERE id = %s", [entry.pk]),
        ("UPDATE tradingstate_auditentry SET after = '{}'::jsonb WHERE id = %s", [entry.pk]),
        ("DELETE FROM tradingstate_auditentry WHERE id = %s", [entry.pk]),
        ("DELETE FROM tradingstate_auditentry", []),
    ]
    for sql, params in attempts:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, params)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="tampered")
    with pytest.raises(DatabaseError), transaction.atomic():
        entry.delete()
    same = AuditEntry.objects.get(pk=entry.pk)
    assert same.reason == entry.reason and same.after == entry.after
    assert Order.objects.exists() and Balance.objects.count() >= 0
    figure(ops=len(attempts) + 2, refused=len(attempts) + 2, repairs=0, lost=0, duplicates=0)
