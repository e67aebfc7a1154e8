"""State as of any moment (issue 18 item 7): what tradingstate held at T, rebuilt from the
audit trail, beside what the exchange reported at the pass nearest T. Checked against
snapshots of the real rows taken during a scripted scenario at known times."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reconciliation.asof import account_state_with_exchange_at, run_nearest
from reconciliation.models import ReconciliationRun
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory, BotFactory
from tradingstate.actors import Actor
from tradingstate.models import Balance, ExchangeAccount, Instrument, Order, Position
from tradingstate.selectors.asof import account_state_at
from tradingstate.services import order_register, order_transition, position_correct, position_set

pytestmark = pytest.mark.django_db

SYSTEM = Actor.system("test")
STAFF = Actor.system("staff-test")


def snapshot(account) -> dict:
    """The real rows now, in the shape the rebuild returns."""
    return {
        "positions": {
            p.symbol: (p.qty, p.entry_price) for p in Position.objects.filter(account=account)
        },
        "balances": {b.currency: b.total for b in Balance.objects.filter(account=account)},
        "orders": {o.client_order_id: o.status for o in Order.objects.filter(account=account)},
    }


def rebuilt(account, at) -> dict:
    held = account_state_at(account=account, at=at)

    def d(value):
        return None if value is None else Decimal(value)

    return {
        "positions": {p["symbol"]: (d(p["qty"]), d(p["entry_price"])) for p in held.positions},
        "balances": {b["currency"]: d(b["total"]) for b in held.balances},
        "orders": {o["client_order_id"]: o["status"] for o in held.orders},
    }


@pytest.fixture
def scenario(demo):
    """The runbook's incident, step by step, with the real rows snapshotted after each step."""
    account = demo
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=True)
    account.refresh_from_db()
    moments = []

    def mark():
        moments.append((timezone.now(), snapshot(account)))

    mark()  # 0: the demo staged: local 0.05, abc123 submitted, def456 unknown
    order, _ = order_register(account=account, actor=SYSTEM, client_order_id="bot-1",
                           symbol="BTC/USDT", side="buy", type="limit",
                           quantity=Decimal("0.01"), price=Decimal("59000"))  # fmt: skip
    order_transition(account=account, client_order_id=order.client_order_id,
                     to_status="submitted", actor=SYSTEM)  # fmt: skip
    mark()  # 1: a bot placed bot-1
    run = run_reconciliation(account, "manual")
    assert run.repairs_applied >= 3
    mark()  # 2: the pass repaired the desync (0.08, abc123 closed, def456 adopted)
    position_correct(account=account, symbol="BTC/USDT", qty=Decimal("0.07"), actor=STAFF,
                     reason="desk says 0.07")  # fmt: skip
    mark()  # 3: staff corrected to 0.07
    return account, moments, run


def test_the_rebuild_equals_the_rows_recorded_at_each_moment(scenario):
    account, moments, _ = scenario
    for i, (at, rows) in enumerate(moments):
        assert rebuilt(account, at) == rows, f"moment {i}"
    # and the story reads right
    assert rebuilt(account, moments[0][0])["positions"]["BTC/USDT"][0] == Decimal("0.05")
    assert rebuilt(account, moments[2][0])["positions"]["BTC/USDT"][0] == Decimal("0.08")
    assert rebuilt(account, moments[3][0])["positions"]["BTC/USDT"][0] == Decimal("0.07")
    assert "def456" not in rebuilt(account, moments[1][0])["orders"]
    assert rebuilt(account, moments[2][0])["orders"]["abc123"] != "submitted"


def test_the_exchange_view_is_the_nearest_pass(scenario):
    account, moments, run = scenario
    state = account_state_with_exchange_at(account=account, at=moments[1][0])
    assert state.exchange.run_id == run.pk
    positions = {p["symbol"]: p for p in state.exchange.positions}
    # what the venue said at that pass: 0.08 where we held 0.05
    assert positions["BTC/USDT"]["qty"] == "0.08" and positions["BTC/USDT"]["source"] == "reported"
    orders = {o["client_order_id"]: o for o in state.exchange.orders}
    assert orders["def456"]["source"] == "reported" and orders["def456"]["status"] == "open"
    assert "abc123" not in orders  # gone from the venue
    assert orders["bot-1"]["source"] == "agreed"  # the pass found nothing to say about it
    balances = {b["currency"]: b for b in state.exchange.balances}
    assert balances["USDT"]["source"] == "agreed"


def test_nearest_pass_picks_the_closer_one(scenario):
    account, _moments, run = scenario
    later = run_reconciliation(account, "manual")
    assert run_nearest(account=account, at=run.started_at).pk == run.pk
    assert run_nearest(account=account, at=later.started_at).pk == later.pk
    assert run_nearest(account=AccountFactory(name="no-passes"), at=timezone.now()) is None


def test_the_api_answers_the_same(client, staff_user, scenario):
    account, moments, run = scenario
    client.force_login(staff_user)
    at, rows = moments[1]
    resp = client.get(f"/api/v1/accounts/{account.name}/state/", {"at": at.isoformat()})
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert body["account"] == account.name
    held = {p["symbol"]: Decimal(p["qty"]) for p in body["held"]["positions"]}
    assert held == {s: q for s, (q, _) in rows["positions"].items()}
    assert {o["client_order_id"]: o["status"] for o in body["held"]["orders"]} == rows["orders"]
    assert body["exchange"]["run_id"] == run.pk
    # without at: now
    now = client.get(f"/api/v1/accounts/{account.name}/state/").json()
    assert {p["symbol"]: p["qty"] for p in now["held"]["positions"]} == {"BTC/USDT": "0.07"}


def test_the_api_refuses_bad_input_and_hides_other_accounts(client, scenario):
    account, *_ = scenario
    bot = BotFactory()
    client.force_login(bot.user)
    # not granted: 404, never 403
    assert client.get(f"/api/v1/accounts/{account.name}/state/").status_code == 404
    bot.accounts.add(account)
    naive = client.get(f"/api/v1/accounts/{account.name}/state/", {"at": "2026-12-06T14:03:12"})
    assert naive.status_code == 400 and "at" in naive.json()["fields"]
    bad = client.get(f"/api/v1/accounts/{account.name}/state/", {"at": "yesterday"})
    assert bad.status_code == 400 and "at" in bad.json()["fields"]
    assert client.get(f"/api/v1/accounts/{account.name}/state/").status_code == 200


def test_the_console_page_shows_the_state_at_t(admin_client, scenario):
    account, moments, _ = scenario
    at = moments[0][0]
    page = admin_client.get(f"/admin/console/state/{account.name}/", {"at": at.isoformat()})
    text = page.content.decode()
    assert 'id="state-range"' in text and 'hx-get="/admin/console/state/paper-demo/panel/"' in text
    held = text[text.index('id="held"') : text.index('id="exchange"')]
    assert 'class="num qty"><span class="num" title="0.05">0.05<' in held
    partial = admin_client.get(
        f"/admin/console/state/{account.name}/panel/", {"at": moments[3][0].isoformat()}
    ).content.decode()
    assert "<html" not in partial and 'title="0.07">0.07<' in partial
    bad = admin_client.get(f"/admin/console/state/{account.name}/", {"at": "nonsense"})
    assert bad.status_code == 200 and "at: must be a date and time" in bad.content.decode()
    # a moment past the last (or before the first) one Python has, once in UTC: was a 500
    for edge in ("9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"):
        for path in ("", "panel/"):
            page = admin_client.get(f"/admin/console/state/{account.name}/{path}", {"at": edge})
            assert (
                page.status_code == 200 and "at: must be a date and time" in page.content.decode()
            )


# the held books, the P&L snapshot, two nearest-pass probes, the books at that pass, its
# discrepancies (7); the page adds the session, the user, the scrubber's range and the banner
AS_OF_BOUND = 7
AS_OF_PAGE_BOUND = 12


def test_queries_stay_constant_as_history_grows(admin_client, scenario):
    account, _moments, _ = scenario
    url = f"/admin/console/state/{account.name}/"

    def count():
        with CaptureQueriesContext(connection) as queries:
            account_state_with_exchange_at(account=account, at=timezone.now())
        with CaptureQueriesContext(connection) as page:
            assert admin_client.get(url).status_code == 200
        return len(queries), len(page)

    admin_client.get(url)  # warm
    few = count()
    # a new position's symbol must be one of the account's instruments
    Instrument.objects.bulk_create(
        Instrument(account=account, symbol=f"S{i}/USDT", base=f"S{i}", quote="USDT")
        for i in range(12)
    )
    for i in range(60):
        position_set(account=account, symbol=f"S{i % 12}/USDT", qty=Decimal(i + 1), actor=SYSTEM)
    for _ in range(3):
        run_reconciliation(account, "manual")
    many = count()
    assert many == few and many[0] <= AS_OF_BOUND and many[1] <= AS_OF_PAGE_BOUND, many
    assert ReconciliationRun.objects.filter(account=account).count() == 4
