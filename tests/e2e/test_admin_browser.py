"""The runbook's desync incident handled in the browser alone (headless Chromium, Playwright).

Staged with ``manage.py demo`` (auto-repair off): local BTC/USDT 0.05 vs venue 0.08, local
order abc123 gone from the venue, venue order def456 unknown locally. A staff user opens the
console, reconciles, halts trading with the kill switch, corrects the position, applies one
repair, acknowledges another discrepancy, resumes; then the audit trail must show each step
with the user and the reason. Screenshots go to tests/e2e/artifacts/ (git-ignored).
"""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from reconciliation.models import Discrepancy, Repair
from tests.e2e.browser import ARTIFACTS, BROWSER_MARKS, PASSWORD, browser_page
from tests.factories import StaffFactory
from tradingstate.models import AuditEntry, ExchangeAccount, Order, Position

pytestmark = BROWSER_MARKS


@pytest.fixture
def page(monkeypatch, settings, live_server):
    with browser_page(monkeypatch, settings, width=1500, height=1000, shots=ARTIFACTS) as tab:
        yield tab


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def submit(page, selector: str) -> None:
    with page.expect_navigation():
        page.click(selector)


def messages(page) -> str:
    return (
        page.locator("ul.messagelist").inner_text()
        if page.locator("ul.messagelist").count()
        else ""
    )


def test_runbook_incident_in_the_browser(page, live_server):
    # --- given: the demo desync, auto-repair off, and a staff user -----------------------
    call_command("demo", stdout=StringIO())
    ExchangeAccount.objects.filter(name="paper-demo").update(auto_repair=False)
    account = ExchangeAccount.objects.get(name="paper-demo")
    user = StaffFactory(username="ops", password=PASSWORD)
    base = live_server.url

    # --- log in: staff land on the console (issue 18), the model index one click away ----
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    submit(page, "input[type=submit]")
    assert page.locator("#console-live").is_visible()
    assert page.locator("#models-link").is_visible()
    row = page.locator("#account-paper-demo")
    assert "never" in row.locator(".last-pass").inner_text()
    assert "off" in row.locator(".auto-repair").inner_text()
    shot(page, "01_console_before")

    # --- Reconcile now: the pass finds the runbook's three discrepancies -----------------
    submit(page, "#account-paper-demo .reconcile-now")
    result = page.locator(".reconcile-run").first
    assert "Completed" in result.inner_text()
    text = result.inner_text()
    # the runbook's three and the demo's missed fill (issue 14)
    assert "4 discrepancies" in text and "0 repairs applied" in text
    for key in ("abc123", "def456", "BTC/USDT"):
        assert key in text
    shot(page, "02_reconcile_result")
    submit(page, "#back-to-console")
    row = page.locator("#account-paper-demo")
    # the runbook's three and the demo's missed fill (issue 14)
    assert "4 open" in row.locator(".open-discrepancies").inner_text()
    assert "Missing fill: 1" in row.locator(".open-discrepancies").inner_text()
    assert row.locator(".chart svg rect.bar").count() >= 1
    shot(page, "03_console_after_pass")

    # --- see the discrepancies (the dashboard links into the filtered changelist) -------
    submit(page, "#account-paper-demo .open-discrepancies a >> nth=0")
    assert "status__exact=open" in page.url and f"account__id__exact={account.pk}" in page.url
    assert page.locator("#result_list tbody tr").count() == 4
    shot(page, "04_open_discrepancies")

    # --- runbook step 1: activate the kill switch (global) -------------------------------
    page.goto(f"{base}/admin/console/")
    submit(page, "#global-killswitch a")
    page.check("input[name=action][value=activate]")
    page.fill("textarea[name=reason]", "Manual position correction in progress")
    submit(page, "#killswitch-form input[type=submit]")
    banner = page.locator("#killswitch-banner")
    assert banner.is_visible()
    assert "KILL SWITCH ACTIVE" in banner.inner_text()
    assert "Manual position correction in progress" in banner.inner_text()
    shot(page, "05_killswitch_active_banner")

    # --- correct the position: current local 0.05, last exchange 0.08 ------------------------
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    page.goto(f"{base}/admin/tradingstate/position/{position.pk}/change/")
    assert page.locator("#killswitch-banner").is_visible()  # on every page
    submit(page, "#tool-correct")
    assert "0.05" in page.locator("#current-local").inner_text()
    assert "0.08" in page.locator("#last-exchange").inner_text()
    page.fill("input[name=qty]", "0.08")
    page.fill("input[name=entry_price]", "60250")
    page.fill("textarea[name=reason]", "Venue shows 0.08 BTC; local book missed a fill")
    shot(page, "06_correct_position_form")
    submit(page, "#correct-submit")
    assert "corrected" in messages(page)
    shot(page, "07_position_corrected")

    # --- apply a repair (stale abc123) from the discrepancy's page -----------------------
    stale = Discrepancy.objects.get(account=account, type="stale_local_order", status="open")
    page.goto(f"{base}/admin/reconciliation/discrepancy/{stale.pk}/change/")
    assert page.locator("table.side-by-side").is_visible()
    shot(page, "08_discrepancy_detail")
    submit(page, "#tool-apply-repair")
    page.fill("textarea[name=reason]", "abc123 is gone from the venue; cancel it locally")
    submit(page, "#action-confirm")
    assert "Repair applied: stale_local_order abc123" in messages(page)
    shot(page, "09_repair_applied")

    # --- acknowledge the position mismatch (corrected by hand) from the changelist -------
    mismatch = Discrepancy.objects.get(account=account, type="position_mismatch", status="open")
    page.goto(
        f"{base}/admin/reconciliation/discrepancy/?account__id__exact={account.pk}"
        "&status__exact=open"
    )
    page.check(f"input[name=_selected_action][value='{mismatch.pk}']")
    page.select_option("select[name=action]", "acknowledge")
    submit(page, "button[name=index]")
    assert page.locator("#action-reason-form").is_visible()
    # a missing reason is refused: by the browser (required), and a blank one by the server
    reason = page.locator("textarea[name=reason]")
    assert reason.evaluate("el => el.validity.valueMissing")
    reason.fill("   ")
    submit(page, "#action-confirm")
    assert "A reason is required." in page.locator("#action-reason-form").inner_text()
    assert Discrepancy.objects.get(pk=mismatch.pk).status == "open"
    page.fill("textarea[name=reason]", "Position corrected manually to the venue's 0.08")
    submit(page, "#action-confirm")
    assert "Acknowledged: position_mismatch BTC/USDT" in messages(page)
    shot(page, "10_acknowledged")

    # --- runbook step 4: deactivate the kill switch ----------------------------------------
    page.goto(f"{base}/admin/killswitch/killswitch/control/")
    page.check("input[name=action][value=deactivate]")
    page.fill("textarea[name=reason]", "State corrected; resuming trading")
    submit(page, "#killswitch-form input[type=submit]")
    assert page.locator("#killswitch-banner").count() == 0
    page.goto(f"{base}/admin/console/")
    assert "inactive" in page.locator("#global-killswitch").inner_text()
    # def456 and the missed fill are left open
    assert "2 open" in page.locator("#account-paper-demo .open-discrepancies").inner_text()
    shot(page, "11_console_after")

    # --- then: the state and an audit entry for every step, with the user and the reason ---
    assert Position.objects.get(pk=position.pk).qty == Decimal("0.08")
    assert Order.objects.get(account=account, client_order_id="abc123").status == "cancelled"
    assert Repair.objects.get(discrepancy=stale).actor_name == "ops"
    expected = [
        ("killswitch.activate", "Manual position correction in progress"),
        ("position.correct", "Venue shows 0.08 BTC; local book missed a fill"),
        ("repair.apply", "abc123 is gone from the venue; cancel it locally"),
        ("discrepancy.acknowledge", "Position corrected manually to the venue's 0.08"),
        ("killswitch.deactivate", "State corrected; resuming trading"),
    ]
    entries = list(
        AuditEntry.objects.filter(actor_user_id=user.pk)
        .order_by("id")
        .values_list("action", "reason", "actor_type", "actor_name")
    )
    assert [(a, r) for a, r, _, _ in entries] == expected
    assert {(t, n) for _, _, t, n in entries} == {("user", "ops")}
    repair_entry = AuditEntry.objects.get(action="repair.apply", actor_user_id=user.pk)
    assert repair_entry.discrepancy_id == stale.pk and repair_entry.target_type == "order"
    ack = AuditEntry.objects.get(action="discrepancy.acknowledge")
    assert ack.target_id == str(mismatch.pk)
    assert re.fullmatch(r"[0-9a-f]{32}", ack.correlation_id)
