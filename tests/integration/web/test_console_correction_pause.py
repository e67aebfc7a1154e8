"""Corrections that stick, or say why not (issue 18 item 5): with auto-repair on, the
correction page warns that the next pass restores the exchange's value and offers to pause
auto-repair for the account (audited, with reason and expiry); the reconciler honours it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.services import run_reconciliation
from tests.integration.console_support import messages_of
from tradingstate.actors import Actor
from tradingstate.errors import ValidationFailed
from tradingstate.models import AuditEntry, ExchangeAccount, Position
from tradingstate.services import account_auto_repair_pause
from tradingstate.services.audit import REASON_REQUIRED

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")


@pytest.fixture
def auto_demo(demo):
    """The demo with auto-repair ON, after the pass that repaired it: local BTC/USDT 0.08."""
    ExchangeAccount.objects.filter(pk=demo.pk).update(auto_repair=True)
    demo.refresh_from_db()
    run_reconciliation(demo, "manual")
    return demo


def correct_url(position) -> str:
    return f"/admin/tradingstate/position/{position.pk}/correct/"


def post(client, position, *, qty: str, pause: bool, hours: int = 4):
    data = {"qty": qty, "entry_price": "", "reason": "Desk says 0.07", "version": position.version,
            "pause_hours": str(hours)}  # fmt: skip
    if pause:
        data["pause_auto_repair"] = "on"
    return client.post(correct_url(position), data, follow=True)


def test_the_page_warns_when_auto_repair_is_on(admin_client, auto_demo):
    position = Position.objects.get(account=auto_demo, symbol="BTC/USDT")
    text = admin_client.get(correct_url(position)).content.decode()
    assert 'id="auto-repair-warning"' in text
    assert "The next pass (every 30 s) will set this position back to the exchange" in text
    assert "Correct and pause auto-repair" in text and "Cancel" in text
    assert 'name="pause_auto_repair"' in text and "checked" in text  # the sensible default


def test_no_warning_when_auto_repair_is_off(admin_client, demo):
    position = Position.objects.get(account=demo, symbol="BTC/USDT")
    text = admin_client.get(correct_url(position)).content.decode()
    assert 'id="auto-repair-warning"' not in text and 'name="pause_auto_repair"' not in text


def test_correct_and_pause_sticks_through_the_next_pass(admin_client, auto_demo):
    # regression: "Correct position…" set 0.07 and the next pass silently put back 0.08
    position = Position.objects.get(account=auto_demo, symbol="BTC/USDT")
    before = timezone.now()
    resp = post(admin_client, position, qty="0.07", pause=True, hours=4)
    # then: corrected, paused with expiry, both audited with the reason
    assert any("corrected" in m for m in messages_of(resp))
    assert any("Auto-repair paused for paper-demo until" in m for m in messages_of(resp))
    auto_demo.refresh_from_db()
    until = auto_demo.auto_repair_paused_until
    assert before + timedelta(hours=4) <= until <= timezone.now() + timedelta(hours=4)
    pause = AuditEntry.objects.get(action="account.auto_repair_pause")
    assert pause.actor_name == "admin" and pause.reason.startswith("Desk says 0.07")
    assert pause.after["auto_repair_paused_until"] == until.isoformat()
    assert pause.before["auto_repair_paused_until"] is None
    # when: the next pass
    run = run_reconciliation(auto_demo, "manual")
    # then: it finds the mismatch but leaves the correction alone
    assert run.discrepancies_found >= 1 and run.repairs_applied == 0
    assert Position.objects.get(pk=position.pk).qty == Decimal("0.07")
    # the dashboard says so
    row = admin_client.get("/admin/console/panel/accounts/").content.decode()
    assert "paused" in row[row.index('class="auto-repair"') :][:300]


def test_correcting_without_the_pause_says_the_pass_will_restore_it(admin_client, auto_demo):
    position = Position.objects.get(account=auto_demo, symbol="BTC/USDT")
    resp = post(admin_client, position, qty="0.07", pause=False)
    assert any("the next pass will set this position back" in m for m in messages_of(resp))
    run_reconciliation(auto_demo, "manual")
    assert Position.objects.get(pk=position.pk).qty == Decimal("0.08")
    assert not AuditEntry.objects.filter(action="account.auto_repair_pause").exists()


def test_a_refused_correction_does_not_pause(admin_client, auto_demo):
    position = Position.objects.get(account=auto_demo, symbol="BTC/USDT")
    position.version -= 1  # stale version: the correction is refused
    post(admin_client, position, qty="0.07", pause=True)
    auto_demo.refresh_from_db()
    assert auto_demo.auto_repair_paused_until is None
    assert not AuditEntry.objects.filter(action="account.auto_repair_pause").exists()


def test_an_expired_pause_repairs_again(auto_demo):
    account_auto_repair_pause(
        account=auto_demo, until=timezone.now() + timedelta(hours=1), actor=SYSTEM, reason="x"
    )
    Position.objects.filter(account=auto_demo, symbol="BTC/USDT").update(qty=Decimal("0.07"))
    ExchangeAccount.objects.filter(pk=auto_demo.pk).update(
        auto_repair_paused_until=timezone.now() - timedelta(seconds=1)
    )
    run = run_reconciliation(auto_demo, "manual")
    assert run.repairs_applied == 1
    assert Position.objects.get(account=auto_demo, symbol="BTC/USDT").qty == Decimal("0.08")


def test_pause_rules(auto_demo):
    now = timezone.now()
    with pytest.raises(ValidationFailed) as err:
        account_auto_repair_pause(account=auto_demo, until=now - timedelta(seconds=1),
                                  actor=SYSTEM, reason="x")  # fmt: skip
    assert err.value.fields == {"until": ["must be in the future"]}
    with pytest.raises(ValidationFailed) as err:
        account_auto_repair_pause(account=auto_demo, until=now + timedelta(days=8),
                                  actor=SYSTEM, reason="x")  # fmt: skip
    assert "until" in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        account_auto_repair_pause(account=auto_demo, until=now + timedelta(hours=1),
                                  actor=SYSTEM, reason="  ")  # fmt: skip
    assert err.value.message == REASON_REQUIRED
    assert not AuditEntry.objects.filter(action__startswith="account.auto_repair").exists()
    # resume: until None, audited
    account_auto_repair_pause(account=auto_demo, until=now + timedelta(hours=1), actor=SYSTEM,
                              reason="pause")  # fmt: skip
    account_auto_repair_pause(account=auto_demo, until=None, actor=SYSTEM, reason="resume")
    auto_demo.refresh_from_db()
    assert auto_demo.auto_repair_paused_until is None and auto_demo.auto_repair_paused_reason == ""
    assert list(
        AuditEntry.objects.filter(action__startswith="account.auto_repair")
        .order_by("id")
        .values_list("action", "reason")
    ) == [("account.auto_repair_pause", "pause"), ("account.auto_repair_resume", "resume")]


def test_staff_can_resume_auto_repair_early(admin_client, auto_demo):
    account_auto_repair_pause(account=auto_demo, until=timezone.now() + timedelta(hours=4),
                              actor=SYSTEM, reason="correction")  # fmt: skip
    url = "/admin/tradingstate/exchangeaccount/"
    form = {"action": "resume_auto_repair", "_selected_action": [auto_demo.pk]}
    page = admin_client.post(url, form)
    assert "paused until" in page.content.decode()  # the reason page, nothing done yet
    resp = admin_client.post(url, {**form, "confirm_reason": "yes", "reason": "desk agrees"},
                             follow=True)  # fmt: skip
    assert "paper-demo: auto-repair resumed." in messages_of(resp)
    auto_demo.refresh_from_db()
    assert auto_demo.auto_repair_paused_until is None
    entry = AuditEntry.objects.get(action="account.auto_repair_resume")
    assert entry.reason == "desk agrees" and entry.actor_name == "admin"
