"""Account actions (Reconcile now, Halt/Resume trading) and the position/balance correction
forms: success, missing reason, bad decimal, permission denied, concurrent change."""

from decimal import Decimal

import pytest
from django.urls import reverse

from killswitch.models import KillSwitch
from reconciliation.models import ReconciliationRun
from tests.audit import assert_audited
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.integration.console_support import CHANGELIST, action_post, messages_of, staff_with
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Balance, Position
from tradingstate.services import balance_set, position_set
from tradingstate.services.audit import REASON_REQUIRED

pytestmark = pytest.mark.django_db

ACCOUNTS = reverse(CHANGELIST["account"])
BOT = Actor.system("bot-sim")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return staff_user


def audit_of(action: str, **filters) -> AuditEntry:
    return AuditEntry.objects.get(action=action, **filters)


def user_actor(user, entry: AuditEntry) -> Actor:
    return Actor.for_user(user, correlation_id=entry.correlation_id)


# --- Reconcile now ------------------------------------------------------------------------
def test_reconcile_now_runs_a_pass_and_shows_the_result(client, staff, demo):
    resp = client.post(ACCOUNTS, {"action": "reconcile_now", "_selected_action": [demo.pk]})
    assert resp.status_code == 200
    run = ReconciliationRun.objects.get()
    assert (run.trigger, run.status, run.requested_by) == ("manual", "completed", "alice")
    text = resp.content.decode()
    assert f"paper-demo — pass {run.pk}" in text and "Completed" in text
    # the runbook's three and the demo's missed fill (issue 14)
    assert "4 discrepancies" in text and "0 repairs applied" in text
    for key in ("abc123", "def456", "BTC/USDT"):
        assert key in text
    assert (
        f"paper-demo: pass {run.pk} completed, 4 discrepancies, 0 repairs applied."
        in messages_of(resp)
    )


def test_reconcile_now_needs_its_permission(client, demo):
    client.force_login(staff_with("tradingstate.view_exchangeaccount"))
    listing = client.get(ACCOUNTS)
    assert b'value="reconcile_now"' not in listing.content
    client.post(ACCOUNTS, {"action": "reconcile_now", "_selected_action": [demo.pk]})
    assert not ReconciliationRun.objects.exists()


# --- Re-enable after an authentication failure ----------------------------------------------
def test_reenable_an_account_stopped_by_auth_failure(client, staff, account):
    from tradingstate.services import account_set_enabled

    account_set_enabled(
        account=account,
        enabled=False,
        actor=Actor.system("reconciliation"),
        reason="stopped",
        disabled_reason="authentication failed: bad key",
    )
    page = action_post(client, ACCOUNTS, "enable_passes", [account.pk])
    assert b"authentication failed: bad key" in page.content and b'name="reason"' in page.content
    resp = action_post(client, ACCOUNTS, "enable_passes", [account.pk], reason="key rotated")
    assert "test-acct: reconciliation re-enabled." in messages_of(resp)
    account.refresh_from_db()
    assert account.enabled and account.disabled_reason == ""
    entry = audit_of("account.enable", account=account)
    assert (entry.actor_name, entry.reason) == ("alice", "key rotated")


def test_reenable_needs_its_permission(client, account):
    from tradingstate.services import account_set_enabled

    account_set_enabled(account=account, enabled=False, actor=Actor.system("reconciliation"),
                        reason="stopped", disabled_reason="auth")  # fmt: skip
    client.force_login(staff_with("tradingstate.view_exchangeaccount"))
    action_post(client, ACCOUNTS, "enable_passes", [account.pk], reason="try")
    account.refresh_from_db()
    assert not account.enabled


# --- Halt / resume ------------------------------------------------------------------------
def test_halt_asks_for_a_reason_then_halts_and_resume_lifts_it(client, staff, account):
    page = action_post(client, ACCOUNTS, "halt_trading", [account.pk])
    assert page.status_code == 200 and b'name="reason"' in page.content
    assert not KillSwitch.objects.filter(account=account, active=True).exists()

    resp = action_post(client, ACCOUNTS, "halt_trading", [account.pk], reason="desync on BTC")
    assert "Kill switch activated (account test-acct)." in messages_of(resp)
    switch = KillSwitch.objects.get(account=account)
    assert switch.active and switch.reason == "desync on BTC" and switch.activated_by == "alice"
    entry = audit_of("killswitch.activate", account=account)
    assert (entry.actor_name, entry.reason) == ("alice", "desync on BTC")
    # the banner, on every admin page
    assert b"Trading halted on account test-acct" in client.get(reverse("admin:index")).content
    # halting again is a reported no-op
    again = action_post(client, ACCOUNTS, "halt_trading", [account.pk], reason="again")
    assert "Kill switch already active (account test-acct)." in messages_of(again)

    resp = action_post(client, ACCOUNTS, "resume_trading", [account.pk], reason="fixed")
    assert "Kill switch deactivated (account test-acct)." in messages_of(resp)
    assert not KillSwitch.objects.get(account=account).active
    entry = audit_of("killswitch.deactivate", account=account)
    assert (entry.actor_name, entry.reason) == ("alice", "fixed")


def test_halt_and_resume_need_a_reason(client, staff, account):
    for action in ("halt_trading", "resume_trading"):
        resp = action_post(client, ACCOUNTS, action, [account.pk], reason="  ")
        assert resp.status_code == 200 and REASON_REQUIRED in resp.content.decode()
    assert not KillSwitch.objects.filter(account=account, active=True).exists()
    assert not AuditEntry.objects.filter(action__startswith="killswitch.").exists()


def test_halt_and_resume_permissions(client, account, staff_user):
    # may halt, may not resume
    client.force_login(staff_with("tradingstate.view_exchangeaccount", "tradingstate.halt_account"))
    listing = client.get(ACCOUNTS).content
    assert b'value="halt_trading"' in listing and b'value="resume_trading"' not in listing
    action_post(client, ACCOUNTS, "halt_trading", [account.pk], reason="stop")
    assert KillSwitch.objects.get(account=account).active
    resp = action_post(client, ACCOUNTS, "resume_trading", [account.pk], reason="go")
    assert "No action selected." in messages_of(resp)
    assert KillSwitch.objects.get(account=account).active
    # may resume, may not halt
    client.force_login(
        staff_with(
            "tradingstate.view_exchangeaccount",
            "killswitch.deactivate_killswitch",
            username="carol",
        )
    )
    resp = action_post(client, ACCOUNTS, "halt_trading", [account.pk], reason="x")
    assert "No action selected." in messages_of(resp)
    action_post(client, ACCOUNTS, "resume_trading", [account.pk], reason="go")
    assert not KillSwitch.objects.get(account=account).active


# --- Correct position ---------------------------------------------------------------------
def correct_url(model: str, pk: int) -> str:
    return reverse(f"admin:tradingstate_{model}_correct", args=[pk])


def test_correct_position_shows_local_and_exchange_then_corrects(client, staff, reconciled):
    position = Position.objects.get(account=reconciled.account)
    page = client.get(correct_url("position", position.pk))
    text = page.content.decode()
    assert page.status_code == 200
    assert '<tr id="current-local"><th>Local (now)</th><td>0.05</td><td>60000</td>' in text
    assert f"<td>0.08</td><td>60250</td>\n          <td>run {reconciled.pk}," in text
    assert f'name="version" value="{position.version}"' in text

    resp = client.post(
        correct_url("position", position.pk),
        {
            "qty": "0.08",
            "entry_price": "60250",
            "reason": "matches venue",
            "version": str(position.version),
        },
        follow=True,
    )
    assert resp.redirect_chain[-1][0] == reverse(
        "admin:tradingstate_position_change", args=[position.pk]
    )
    assert "Position paper-demo:BTC/USDT corrected." in messages_of(resp)
    position.refresh_from_db()
    assert (position.qty, position.entry_price) == (Decimal("0.08"), Decimal("60250"))
    entry = audit_of("position.correct")
    assert_audited(
        position,
        action="position.correct",
        actor=user_actor(staff, entry),
        reason="matches venue",
        before={"qty": "0.05"},
        after={"qty": "0.08", "entry_price": "60250"},
    )


def test_correct_position_without_a_discrepancy_says_so(client, staff, account):
    position = PositionFactory(account=account, qty=Decimal("1"))
    text = client.get(correct_url("position", position.pk)).content.decode()
    assert "no discrepancy reported for it yet" in text


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"qty": "abc", "reason": "r"}, "qty: must be a decimal number"),
        ({"qty": "NaN", "reason": "r"}, "qty: must be a finite number"),
        ({"qty": "0.0000000000000000001", "reason": "r"}, "qty: must have at most 18 decimal"),
        ({"qty": "1", "entry_price": "-5", "reason": "r"}, "entry_price: must not be negative"),
        ({"qty": "1", "entry_price": "1e", "reason": "r"}, "entry_price: must be a decimal"),
        ({"qty": "1", "reason": "   "}, REASON_REQUIRED),
        ({"qty": "", "reason": "r"}, "This field is required."),
    ],
)
def test_correct_position_bad_input_changes_nothing(client, staff, account, data, error):
    position = PositionFactory(account=account, qty=Decimal("1"))
    resp = client.post(correct_url("position", position.pk), {"version": "1", **data})
    assert resp.status_code == 200
    assert error in resp.content.decode()
    position.refresh_from_db()
    assert (position.qty, position.version) == (Decimal("1"), 1)
    assert not AuditEntry.objects.exists()


def test_correct_position_refuses_a_concurrent_change(client, staff, account):
    position = position_set(account=account, symbol="BTC/USDT", qty="1", actor=BOT)
    page = client.get(correct_url("position", position.pk))
    assert b'name="version" value="1"' in page.content
    # a bot writes while the form is open
    position_set(account=account, symbol="BTC/USDT", qty="2", actor=BOT)
    resp = client.post(
        correct_url("position", position.pk),
        {"qty": "5", "reason": "manual", "version": "1"},
    )
    assert resp.status_code == 200
    assert "Position BTC/USDT changed (version 2, expected 1)." in messages_of(resp)
    text = resp.content.decode()
    assert "review them and submit again" in text
    assert 'name="version" value="2"' in text  # the form now carries the current version
    assert Position.objects.get(pk=position.pk).qty == Decimal("2")
    assert not AuditEntry.objects.filter(action="position.correct").exists()


def test_correct_needs_its_permission(client, account):
    position = PositionFactory(account=account, qty=Decimal("1"))
    balance = BalanceFactory(account=account, total=Decimal("5"), free=Decimal("5"))
    client.force_login(
        staff_with("tradingstate.view_position", "tradingstate.view_balance", username="dave")
    )
    for model, pk in (("position", position.pk), ("balance", balance.pk)):
        url = correct_url(model, pk)
        assert client.get(url).status_code == 403
        assert (
            client.post(url, {"qty": "9", "total": "9", "reason": "x", "version": "1"}).status_code
            == 403
        )
        change = client.get(reverse(f"admin:tradingstate_{model}_change", args=[pk]))
        assert b'id="tool-correct"' not in change.content
        listing = client.get(reverse(f"admin:tradingstate_{model}_changelist"))
        assert b'value="correct"' not in listing.content
    assert Position.objects.get(pk=position.pk).qty == Decimal("1")
    assert Balance.objects.get(pk=balance.pk).total == Decimal("5")


def test_correct_action_opens_the_form_for_exactly_one_row(client, staff, account):
    one = PositionFactory(account=account, symbol="BTC/USDT")
    two = PositionFactory(account=account, symbol="ETH/USDT")
    url = reverse(CHANGELIST["position"])
    resp = client.post(url, {"action": "correct", "_selected_action": [one.pk]})
    assert resp.status_code == 302 and resp["Location"] == correct_url("position", one.pk)
    resp = client.post(
        url, {"action": "correct", "_selected_action": [one.pk, two.pk]}, follow=True
    )
    assert "Select exactly one position to correct." in messages_of(resp)
    change = client.get(reverse("admin:tradingstate_position_change", args=[one.pk]))
    assert b'id="tool-correct"' in change.content


# --- Correct balance ----------------------------------------------------------------------
def test_correct_balance(client, staff, account):
    balance = balance_set(account=account, currency="USDT", total="100", actor=BOT)
    page = client.get(correct_url("balance", balance.pk))
    assert page.status_code == 200 and b"<td>100</td>" in page.content
    resp = client.post(
        correct_url("balance", balance.pk),
        {"free": "80", "used": "20", "total": "", "reason": "venue statement", "version": "1"},
        follow=True,
    )
    assert "Balance test-acct:USDT corrected." in messages_of(resp)
    balance.refresh_from_db()
    assert (balance.free, balance.used, balance.total) == (
        Decimal("80"),
        Decimal("20"),
        Decimal("100"),
    )
    entry = audit_of("balance.correct")
    assert_audited(
        balance,
        action="balance.correct",
        actor=user_actor(staff, entry),
        reason="venue statement",
        after={"free": "80", "used": "20", "total": "100"},
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"free": "lots", "reason": "r"}, "free: must be a decimal number"),
        ({"free": "1", "used": "-1", "reason": "r"}, "used: must not be negative"),
        ({"total": "Infinity", "reason": "r"}, "total: must be a finite number"),
        ({"free": "", "total": "", "reason": "r"}, "give total, free, or both"),
        ({"total": "5", "reason": ""}, REASON_REQUIRED),
    ],
)
def test_correct_balance_bad_input_changes_nothing(client, staff, account, data, error):
    balance = BalanceFactory(account=account, total=Decimal("5"), free=Decimal("5"))
    resp = client.post(correct_url("balance", balance.pk), {"version": "1", **data})
    assert resp.status_code == 200
    assert error in resp.content.decode()
    balance.refresh_from_db()
    assert (balance.total, balance.version) == (Decimal("5"), 1)
    assert not AuditEntry.objects.exists()


def test_correct_balance_refuses_a_concurrent_change(client, staff, account):
    balance = balance_set(account=account, currency="USDT", total="100", actor=BOT)
    balance_set(account=account, currency="USDT", total="90", actor=BOT)
    resp = client.post(
        correct_url("balance", balance.pk), {"total": "1", "reason": "x", "version": "1"}
    )
    assert "Balance USDT changed (version 2, expected 1)." in messages_of(resp)
    assert Balance.objects.get(pk=balance.pk).total == Decimal("90")


# --- audit links everywhere ---------------------------------------------------------------
def test_every_change_page_links_to_its_audit_entries(client, staff, reconciled):
    account = reconciled.account
    order = OrderFactory(account=account, client_order_id="zz1")
    pages = {
        "tradingstate_exchangeaccount": (account.pk, f"account__id__exact={account.pk}"),
        "tradingstate_order": (order.pk, f"target_type=order&amp;target_id={order.pk}"),
        "tradingstate_position": (
            (p := Position.objects.get(account=account)).pk,
            f"target_type=position&amp;target_id={p.pk}",
        ),
        "tradingstate_balance": (
            (b := Balance.objects.get(account=account)).pk,
            f"target_type=balance&amp;target_id={b.pk}",
        ),
        "reconciliation_reconciliationrun": (reconciled.pk, f"run_id={reconciled.pk}"),
    }
    for name, (pk, query) in pages.items():
        resp = client.get(reverse(f"admin:{name}_change", args=[pk]))
        assert resp.status_code == 200, name
        assert (
            f'/admin/tradingstate/auditentry/?{query}" id="tool-audit"' in resp.content.decode()
        ), name
    # and the audit trail filters by those, by account and by date
    audit = reverse("admin:tradingstate_auditentry_changelist")
    for params in (
        {"account__id__exact": account.pk},
        {"run_id": reconciled.pk},
        {"created_at__year": "2026"},
    ):
        assert client.get(audit, params).status_code == 200


def test_account_added_in_the_admin_is_audited(client, staff):
    resp = client.post(
        reverse("admin:tradingstate_exchangeaccount_add"),
        {
            "name": "binance-new",
            "exchange": "binance",
            "market_type": "swap",
            "api_key_env": "BINANCE_KEY",
            "secret_env": "BINANCE_SECRET",
            "password_env": "",
            "ccxt_options": "{}",
            "enabled": "on",
            "auto_repair": "on",
            "reconciliation_interval_seconds": "15",
            "balance_tolerance": "0.01",
            "balance_tolerances": "{}",
            "stale_order_grace_seconds": "10",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    entry = audit_of("account.create")
    assert (entry.actor_name, entry.reason) == ("alice", "created in the admin")
    assert entry.after["exchange"] == "binance" and entry.after["secret_env"] == "BINANCE_SECRET"


def test_a_bots_grants_change_with_a_reason_and_are_audited(client, staff, demo):
    # the admin saved a bot's accounts with Django's own save: no reason, no audit row
    from tests.factories import BotFactory

    bot = BotFactory(user__username="robo")
    url = reverse("admin:tradingstate_botprofile_change", args=[bot.pk])
    refused = client.post(url, {"accounts": [demo.pk], "reason": "\u200b"})
    assert refused.status_code == 200 and REASON_REQUIRED in refused.content.decode()
    assert not bot.accounts.exists() and not AuditEntry.objects.filter(action="bot.update")
    saved = client.post(url, {"accounts": [demo.pk], "reason": "trades the demo now"})
    assert saved.status_code == 302
    assert list(bot.accounts.values_list("name", flat=True)) == [demo.name]
    entry = AuditEntry.objects.get(action="bot.update", target_id=str(bot.pk))
    assert (entry.before["accounts"], entry.after["accounts"]) == ([], [demo.name])
    assert entry.reason == "trades the demo now" and entry.actor_name == staff.username
    # bots (with their token) are created by manage.py create_bot, not an empty add form
    assert client.get(reverse("admin:tradingstate_botprofile_add")).status_code == 403


def test_staff_edits_of_the_paper_venue_need_a_reason_and_are_audited(client, staff, demo):
    # a venue balance was changed (or deleted) in the admin with no reason and no audit row
    from tradingstate.models import PaperBalance

    row = PaperBalance.objects.filter(account=demo).order_by("pk").first()
    url = reverse("admin:tradingstate_paperbalance_change", args=[row.pk])
    form = {"account": demo.pk, "currency": row.currency, "free": "123", "used": "0",
            "total": "123"}  # fmt: skip
    refused = client.post(url, form)
    assert refused.status_code == 200 and REASON_REQUIRED in refused.content.decode()
    row.refresh_from_db()
    assert row.total != Decimal(123) and not AuditEntry.objects.filter(action="paper.staff_edit")
    assert client.post(url, {**form, "reason": "stage a desync"}).status_code == 302
    row.refresh_from_db()
    assert row.total == Decimal(123)
    entry = AuditEntry.objects.get(action="paper.staff_edit", target_id=str(row.pk))
    assert entry.after["total"] == "123" and entry.before["total"] != "123"
    assert entry.reason == "stage a desync" and entry.account_id == demo.pk
    delete = reverse("admin:tradingstate_paperbalance_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert PaperBalance.objects.filter(pk=row.pk).exists()


ADD_ACCOUNT = {"name": "newacct", "exchange": "paper", "market_type": "swap",
               "reconciliation_interval_seconds": "30", "balance_tolerance": "0.01",
               "stale_order_grace_seconds": "10", "ccxt_options": "{}",
               "balance_tolerances": "{}", "enabled": "on", "auto_repair": "on"}  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value"),
    [
        # each was stored: "abc" and NaN failed every pass, [1] too, -5 flagged equal balances
        ("balance_tolerances", '{"BTC": "abc"}'),
        ("balance_tolerances", '{"BTC": "NaN"}'),
        ("balance_tolerances", '{"BTC": -5}'),
        ("balance_tolerances", "[1]"),
        # and a secret was stored in the database, against the design
        ("ccxt_options", '{"secret": "hunter2"}'),
        ("ccxt_options", '{"apiKey": "k"}'),
        ("ccxt_options", "[1, 2]"),
        # the configuration refused a misspelt venue; the admin stored it, every pass failed
        ("exchange", "binanc"),
    ],
)
def test_an_accounts_options_are_checked_before_it_is_stored(client, staff, field, value):
    response = client.post(
        reverse("admin:tradingstate_exchangeaccount_add"), {**ADD_ACCOUNT, field: value}
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    from tradingstate.models import ExchangeAccount

    assert not ExchangeAccount.objects.filter(name="newacct").exists()
    assert (
        client.post(  # the same form with good values is stored
            reverse("admin:tradingstate_exchangeaccount_add"),
            {**ADD_ACCOUNT, "balance_tolerances": '{"BTC": "0.00001"}'},
        ).status_code
        == 302
    )
