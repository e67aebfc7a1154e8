"""The console dashboard (issue 18 items 1-4, 9): the home page, its live panels, the
effective trading state, the feed, numbers without padding, the audit list, and query counts
that stay constant as accounts and history grow."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from killswitch.services import killswitch_activate
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory, BalanceFactory, PositionFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, ExchangeAccount, Order, Position
from tradingstate.services import position_set

pytestmark = pytest.mark.django_db

HOME = "/admin/"
SYSTEM = Actor.system("test")
PADDED = re.compile(r"\d\.\d*0{6,}\b")


def panel(name: str) -> str:
    return reverse("admin:console-panel", args=[name])


def visible_text(html: str) -> str:
    html = re.sub(r"(?s)<(script|style)[^>]*>.*?</\1>", "", html)
    return re.sub(r"<[^>]+>", " ", html)


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return staff_user


@pytest.fixture
def repaired(demo):
    """The demo after an auto-repair pass: the runbook's three discrepancies and the staged
    missed fill repaired."""
    ExchangeAccount.objects.filter(pk=demo.pk).update(auto_repair=True)
    demo.refresh_from_db()
    run = run_reconciliation(demo, "manual")
    assert run.repairs_applied == 4
    return run


def test_home_shows_every_panel_with_live_refresh(client, staff, repaired):
    text = client.get(HOME).content.decode()
    for name in ("summary", "accounts", "feed", "desk"):
        assert f'id="panel-{name}"' in text
        assert f'hx-get="{panel(name)}" hx-trigger="every 5s"' in text
    assert "/static/django_htmx/htmx-2.min.js" in text  # served by us: no CDN, no build
    assert "htmx:sendError" in text and "Server unreachable" in text
    row = text[text.index('id="account-paper-demo"') :]
    # positions with entry, mark and P&L; balances; worker; actions
    assert 'data-symbol="BTC/USDT"' in row and 'class="n avg_entry_price"' in row
    assert 'data-currency="USDT"' in row and "worker" in row
    assert 'value="reconcile_now"' in row and "state as of" in row


def test_each_panel_renders_alone_for_htmx(client, staff, repaired):
    for name in ("summary", "accounts", "feed", "desk"):
        resp = client.get(panel(name), headers={"HX-Request": "true"})
        assert resp.status_code == 200 and "no-store" in resp["Cache-Control"]
        assert "<html" not in resp.content.decode()
    assert client.get(panel("nope")).status_code == 404


def test_panels_need_staff(client, db):
    assert client.get(panel("accounts")).status_code == 302


def test_feed_shows_the_demo_repairs_linked(client, staff, repaired):
    text = client.get(panel("feed")).content.decode()
    assert text.count('data-kind="repair"') == 4 and text.count('data-kind="discrepancy"') == 4
    assert "position_mismatch BTC/USDT 0.05 → 0.08" in text
    assert "/admin/reconciliation/repair/" in text
    assert "/admin/reconciliation/discrepancy/" in text


def test_a_global_halt_is_the_effective_state_of_every_account(client, staff, repaired):
    # regression: the account row said "trading" while the global kill switch was active
    killswitch_activate(reason="market chaos", actor=SYSTEM)
    row = client.get(panel("accounts")).content.decode()
    state = row[row.index('class="halt trading-state"') :][:400]
    assert "HALTED (global kill switch)" in state and "market chaos" in state
    assert ">trading<" not in row


def test_the_recovery_gate_shows(client, staff, repaired):
    ExchangeAccount.objects.filter(pk=repaired.account_id).update(
        recovery_started_at=timezone.now()
    )
    row = client.get(panel("accounts")).content.decode()
    assert "RECOVERING" in row and "503" in row


def test_dashboard_figures_are_the_apis(client, staff, repaired):
    api = client.get(f"/api/v1/accounts/{repaired.account.name}/pnl/").json()
    row = client.get(panel("accounts")).content.decode()
    for position in api["positions"]:
        cells = row[row.index(f'data-symbol="{position["symbol"]}"') :]
        for name in ("qty", "avg_entry_price", "mark_price", "unrealized_pnl", "net_pnl"):
            shown = re.search(rf'class="n {name}"><span class="num" title="([^"]+)">', cells)
            if position[name] is None:
                assert re.search(rf'class="n {name}">n/a', cells)
            else:
                assert Decimal(shown.group(1)) == Decimal(position[name]), name


def test_no_value_is_padded_to_18_places(client, staff, repaired):
    # regression: lists, detail pages and __str__ showed "0.080000000000000000"
    position = Position.objects.get(account=repaired.account, symbol="BTC/USDT")
    order = Order.objects.filter(account=repaired.account).first()
    # an entry recorded before numbers were normalised (its text is history: shown unpadded)
    AuditEntry.objects.create(
        actor_type="system", actor_name="before-issue-18", action="position.set",
        target_type="position", target_id=str(position.pk), account=repaired.account,
        target_repr="paper-demo:BTC/USDT 0.050000000000000000",
    )  # fmt: skip
    assert str(position) == "paper-demo:BTC/USDT 0.08"
    assert str(order).split()[2] in ("0.01", "0.02", "0.03")
    pages = [
        HOME,
        "/admin/tradingstate/position/",
        f"/admin/tradingstate/position/{position.pk}/change/",
        f"/admin/tradingstate/position/{position.pk}/correct/",
        "/admin/tradingstate/order/",
        f"/admin/tradingstate/order/{order.pk}/change/",
        "/admin/tradingstate/balance/",
        "/admin/tradingstate/auditentry/",
        "/admin/reconciliation/discrepancy/",
        "/admin/tradingstate/papermarkprice/",
        reverse("admin:console-state", args=["paper-demo"]),
    ]
    for url in pages:
        resp = client.get(url)
        assert resp.status_code == 200, url
        assert not PADDED.findall(visible_text(resp.content.decode())), url
    # at the instrument's precision (step 0.001), the stored value on hover
    assert 'title="0.08">0.080<' in client.get("/admin/tradingstate/position/").content.decode()


def test_audit_list_shows_reason_and_target_and_filters(client, staff, repaired):
    entry = AuditEntry.objects.filter(action="repair.apply", target_type="position").get()
    text = client.get("/admin/tradingstate/auditentry/").content.decode()
    assert 'class="audit-reason"' in text and 'class="audit-target"' in text
    assert f"position: {entry.target_repr}" in text
    # everything this pass did, in order
    by_pass = client.get(f"/admin/tradingstate/auditentry/?correlation_id={entry.correlation_id}")
    assert by_pass.status_code == 200
    shown = [e.pk for e in by_pass.context["cl"].result_list]
    expected = list(
        AuditEntry.objects.filter(correlation_id=entry.correlation_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    assert shown == expected and len(shown) >= 3
    # by actor
    by_actor = client.get(f"/admin/tradingstate/auditentry/?actor_name={entry.actor_name}")
    assert {e.actor_name for e in by_actor.context["cl"].result_list} == {entry.actor_name}
    # an object's full history, oldest first, linked from its page
    position = Position.objects.get(account=repaired.account, symbol="BTC/USDT")
    page = client.get(f"/admin/tradingstate/position/{position.pk}/change/").content.decode()
    history = f"?target_type=position&amp;target_id={position.pk}"
    assert history in page
    listed = client.get(
        f"/admin/tradingstate/auditentry/?target_type=position&target_id={position.pk}"
    )
    ids = [e.pk for e in listed.context["cl"].result_list]
    assert ids == sorted(ids) and len(ids) >= 2


# --- query counts --------------------------------------------------------------------------
def _grow(n_accounts: int, tag: str) -> None:
    """n accounts, each with a position, a balance, passes, discrepancies and a halt."""
    now = timezone.now()
    for i in range(n_accounts):
        account = AccountFactory(name=f"grow-{tag}-{i}")
        PositionFactory(account=account, symbol="ETH/USDT", qty=Decimal("1.5"))
        BalanceFactory(account=account, currency="USDT", total=Decimal("100"), free=Decimal("100"))
        for j in range(3):
            run = ReconciliationRun.objects.create(
                account=account, trigger="schedule", status="completed",
                started_at=now - timedelta(hours=j), finished_at=now - timedelta(hours=j),
                discrepancies_found=1,
            )  # fmt: skip
            Discrepancy.objects.create(
                run=run, account=account, type="balance_mismatch", entity="balances",
                key="USDT", persistent=j == 2,
            )  # fmt: skip
        position_set(account=account, symbol="ETH/USDT", qty=Decimal("2"), actor=SYSTEM,
                     reason="grow")  # fmt: skip
        killswitch_activate(reason="grow", actor=SYSTEM, account=account)


DASHBOARD_BOUND = 26
PANEL_BOUNDS = {"summary": 11, "accounts": 17, "desk": 8, "feed": 8}


def test_dashboard_and_panel_queries_do_not_grow_with_accounts_or_history(client, staff):
    _grow(2, "a")

    def counts():
        result = {}
        for name, url in [("home", HOME)] + [(p, panel(p)) for p in PANEL_BOUNDS]:
            with CaptureQueriesContext(connection) as queries:
                assert client.get(url).status_code == 200
            result[name] = len(queries)
        return result

    client.get(HOME)  # warm (content types, permissions)
    few = counts()
    _grow(15, "b")
    many = counts()
    assert many == few
    assert many["home"] <= DASHBOARD_BOUND, many
    for name, bound in PANEL_BOUNDS.items():
        assert many[name] <= bound, (name, many)
