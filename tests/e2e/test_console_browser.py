"""The operator console in headless Chromium at 1,280 x 800 (issue 18 Tests).

- every console page and every list page (discrepancies, audit, orders, positions, balances,
  runs, repairs) fits the screen: ``scrollWidth <= clientWidth``;
- no rendered text shows a value padded to 18 places;
- the dashboard's figures equal the API's for the same state;
- the live panel changes after a pass, without a reload; an unreachable server is said so,
  with the last data greyed out;
- the as-of scrubber shows the state recorded at T.

Screenshots of each page go to tests/e2e/artifacts/console/ (git-ignored).
"""

from __future__ import annotations

import math
import re
import time
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from reconciliation.models import Discrepancy
from reconciliation.services import run_reconciliation
from tests.e2e.browser import ARTIFACTS, BROWSER_MARKS, PASSWORD, browser_page, settle
from tests.factories import StaffFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, ExchangeAccount, Position
from tradingstate.services import order_register, position_correct

SHOTS = ARTIFACTS / "console"
PADDED = re.compile(r"\d\.\d*0{10,}")

pytestmark = BROWSER_MARKS

LIST_PAGES = {
    "discrepancies": "/admin/reconciliation/discrepancy/",
    "audit": "/admin/tradingstate/auditentry/",
    "orders": "/admin/tradingstate/order/",
    "positions": "/admin/tradingstate/position/",
    "balances": "/admin/tradingstate/balance/",
    "runs": "/admin/reconciliation/reconciliationrun/",
    "repairs": "/admin/reconciliation/repair/",
}


@pytest.fixture
def page(monkeypatch, settings, live_server):
    with browser_page(monkeypatch, settings, width=1280, height=800, shots=SHOTS) as tab:
        yield tab


@pytest.fixture
def incident(db):
    """The runbook's demo with auto-repair on (as `make run`), repaired by one pass, and a
    staff user."""
    call_command("demo", stdout=StringIO())
    account = ExchangeAccount.objects.get(name="paper-demo")
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=True)
    StaffFactory(username="ops", password=PASSWORD)
    return account


def login(page, base: str) -> None:
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("input[type=submit]")


def fits(page) -> tuple[int, int]:
    return page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )


# Django's changelist puts its table in a box that scrolls sideways by itself (the page then
# fits while the status column is off-screen): no element may scroll sideways either
SCROLLERS = """() => [...document.querySelectorAll('body *')].filter(e => {
    const x = getComputedStyle(e).overflowX;
    return (x === 'auto' || x === 'scroll') && e.scrollWidth > e.clientWidth + 1;
}).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""


def check_page(page, url: str, name: str) -> None:
    page.goto(url)
    settle(page)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    scroll, client = fits(page)
    assert scroll <= client, f"{name}: {scroll} px wide in a {client} px window"
    assert page.evaluate(SCROLLERS) == [], f"{name}: a box scrolls sideways"
    text = page.inner_text("body")
    assert not PADDED.findall(text), f"{name}: {PADDED.findall(text)[:3]}"


def test_every_console_and_list_page_fits_1280_and_shows_no_padding(page, live_server, incident):
    base = live_server.url
    run_reconciliation(incident, "manual")
    # long values, as real ones are: 64-character order ids, big prices, long reasons
    long_id = "strategy-alpha-" + "0123456789abcdef" * 3 + "xy"
    order_register(account=incident, actor=Actor.system("bot-with-a-long-name"),
                              client_order_id=long_id[:64], symbol="BTC/USDT", side="sell",
                              type="limit", quantity=Decimal("12345.123456789012345678"),
                              price=Decimal("98765432.123456789"), strategy_id="x" * 64,
                              reason="because " * 40)  # fmt: skip
    position_correct(account=incident, symbol="BTC/USDT", qty=Decimal("-12345.678901234567"),
                     actor=Actor.system("desk-operator-with-a-long-name"),
                     reason="a long explanation of the correction " * 10)  # fmt: skip
    login(page, base)
    assert page.url.rstrip("/").endswith("/admin")  # staff land on the console
    position = Position.objects.get(account=incident, symbol="BTC/USDT")
    discrepancy = Discrepancy.objects.filter(account=incident).order_by("id").first()
    entry = AuditEntry.objects.filter(action="repair.apply").order_by("id").first()
    pages = {
        "discrepancy": f"/admin/reconciliation/discrepancy/{discrepancy.pk}/change/",
        "run": f"/admin/reconciliation/reconciliationrun/{discrepancy.run_id}/change/",
        "audit_entry": f"/admin/tradingstate/auditentry/{entry.pk}/change/",
        "console": "/admin/",
        "models": "/admin/models/",
        "pnl": "/admin/console/pnl/",
        "state": "/admin/console/state/paper-demo/",
        "analytics": "/admin/console/analytics/",
        "correct": f"/admin/tradingstate/position/{position.pk}/correct/",
        "position": f"/admin/tradingstate/position/{position.pk}/change/",
        **LIST_PAGES,
    }
    for name, path in pages.items():
        check_page(page, f"{base}{path}", name)


def test_dashboard_figures_equal_the_api(page, live_server, incident):
    base = live_server.url
    run_reconciliation(incident, "manual")
    login(page, base)
    api = page.request.get(f"{base}/api/v1/accounts/paper-demo/pnl/").json()
    row = page.locator("#account-paper-demo")
    for position in api["positions"]:
        cells = row.locator(f"tr.position[data-symbol='{position['symbol']}']")
        for name in ("qty", "avg_entry_price", "mark_price", "unrealized_pnl", "net_pnl"):
            cell = cells.locator(f"td.{name}")
            if position[name] is None:
                assert cell.inner_text().startswith("n/a")
                continue
            shown = cell.locator("span.num").first
            assert Decimal(shown.get_attribute("title")) == Decimal(position[name]), name
            value = Decimal(position[name])
            if name.endswith("_pnl"):  # money: to cents, the full figure on hover
                value = value.quantize(Decimal("0.01"))
            assert Decimal(shown.inner_text()) == value, name
    balances = page.request.get(f"{base}/api/v1/accounts/paper-demo/balances/").json()
    for b in balances.get("results", balances):
        total = row.locator(f"tr.balance[data-currency='{b['currency']}'] td.total")
        assert Decimal(total.inner_text()) == Decimal(b["total"])
    summary = page.request.get(f"{base}/api/v1/health/").json()
    assert summary["db"] == "ok"


def test_the_live_panel_changes_after_a_pass_without_reload(page, live_server, incident):
    base = live_server.url
    login(page, base)
    page.evaluate("() => { window.__noReload = 'still here'; }")
    row = page.locator("#account-paper-demo")
    assert "never" in row.locator(".last-pass").inner_text()
    assert "4 open" not in row.locator(".open-discrepancies").inner_text()
    page.screenshot(path=str(SHOTS / "live_before.png"), full_page=True)
    # when: a pass runs behind the page's back (the worker would)
    ExchangeAccount.objects.filter(pk=incident.pk).update(auto_repair=False)
    run_reconciliation(incident, "manual")
    # then: within a refresh or two the panel shows it, the page never reloaded
    page.wait_for_function(
        "() => document.querySelector('#account-paper-demo .open-discrepancies')"
        ".innerText.includes('4 open')",
        timeout=15_000,
    )
    assert "never" not in row.locator(".last-pass").inner_text()
    assert page.evaluate("() => window.__noReload") == "still here"
    assert "updated" in page.locator("#console-live").inner_text()
    page.screenshot(path=str(SHOTS / "live_after.png"), full_page=True)
    # when the server cannot be reached: said so, last data kept, greyed out
    page.route("**/admin/console/panel/**", lambda route: route.abort())
    page.wait_for_function(
        "() => document.getElementById('console-live').classList.contains('unreachable')",
        timeout=15_000,
    )
    assert "Server unreachable" in page.locator("#console-live").inner_text()
    assert "stale" in page.locator("#panel-accounts").get_attribute("class")
    assert "4 open" in row.locator(".open-discrepancies").inner_text()
    page.screenshot(path=str(SHOTS / "live_unreachable.png"), full_page=True)
    # when the session ends: the login page is not swapped into the panels
    page.unroute("**/admin/console/panel/**")
    page.context.clear_cookies()
    page.wait_for_function(
        "() => document.getElementById('console-live').innerText.includes('Signed out')",
        timeout=15_000,
    )
    assert page.locator("#panel-accounts #id_username").count() == 0
    assert "4 open" in row.locator(".open-discrepancies").inner_text()


def _moment_after_pause() -> int:
    """A whole second strictly after every write so far, and before any later one."""
    time.sleep(1.1)
    moment = math.ceil(timezone.now().timestamp())
    time.sleep(max(0.0, moment - timezone.now().timestamp()) + 0.2)
    return moment


def test_the_as_of_scrubber_shows_the_state_recorded_at_t(page, live_server, incident):
    base = live_server.url
    t1 = _moment_after_pause()  # the demo's desync: we held 0.05
    recorded_t1 = Position.objects.get(account=incident, symbol="BTC/USDT").qty
    run_reconciliation(incident, "manual")  # repairs to the venue's 0.08
    t2 = _moment_after_pause()
    recorded_t2 = Position.objects.get(account=incident, symbol="BTC/USDT").qty
    assert (recorded_t1, recorded_t2) == (Decimal("0.05"), Decimal("0.08"))
    login(page, base)
    page.click("#account-paper-demo .state-link")
    page.wait_for_selector("#state-range")

    def scrub_to(moment: int) -> str:
        page.evaluate(
            "(t) => { const r = document.getElementById('state-range');"
            " r.value = String(t); r.dispatchEvent(new Event('change', {bubbles: true})); }",
            moment,
        )
        page.wait_for_function(
            "(t) => document.getElementById('state-at-body').dataset.epoch === String(t)",
            arg=moment,
        )
        return page.locator("#held tr.position[data-symbol='BTC/USDT'] td.qty").inner_text()

    assert Decimal(scrub_to(t1)) == recorded_t1
    page.screenshot(path=str(SHOTS / "state_t1.png"), full_page=True)
    assert Decimal(scrub_to(t2)) == recorded_t2
    exchange = page.locator("#exchange tr.position[data-symbol='BTC/USDT'] td.qty").inner_text()
    assert Decimal(exchange) == Decimal("0.08")  # what the venue reported at that pass
    page.screenshot(path=str(SHOTS / "state_t2.png"), full_page=True)
    scroll, client = fits(page)
    assert scroll <= client
