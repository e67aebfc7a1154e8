"""GET /api/v1/accounts/{account}/paper/trades/: the venue-side read a paper bot learns its
executions from; then it posts them as fills. Plus the admin's mark edit and the demo."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.api_support import api_cache_table, assert_error, make_bot, order_body, url  # noqa: F401
from tests.audit import assert_audited
from tests.factories import AccountFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Fill, Order, PaperMarkPrice, PaperTrade, Position
from tradingstate.services import paper_mark_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def paper():
    account = AccountFactory(name="paper-bot-acct")
    paper_mark_set(account=account, symbol="BTC/USDT", price="60000", actor=Actor.system("t"))
    return account


def trade_through_api(client, account, coid, **over):
    body = order_body(client_order_id=coid, type="market", price=None, quantity="0.01", **over)
    assert client.post(url(account, "orders"), body, format="json").status_code == 201
    resp = client.post(url(account, "orders", coid, "transition"), {"status": "submitted"},
                       format="json")  # fmt: skip
    assert resp.status_code == 200, resp.content
    return resp.json()


def test_bot_reads_its_venue_trades_and_posts_them_as_fills(paper):
    # given a bot granted a paper account, with a market order submitted (placed and filled)
    client, _ = make_bot("alpha", paper)
    order = trade_through_api(client, paper, "o1")
    assert order["exchange_order_id"].startswith("PAPER-")
    trade_through_api(client, paper, "o2")
    # when it reads the venue's trades of o1
    resp = client.get(url(paper, "paper", "trades"), {"order": "o1"})
    # then it gets the venue's one trade of o1, with ids and fee, and no Fill exists yet
    assert resp.status_code == 200
    [trade] = resp.json()["results"]
    venue = PaperTrade.objects.get(client_order_id="o1")
    assert trade == {
        "trade_id": venue.trade_id,
        "exchange_order_id": order["exchange_order_id"],
        "client_order_id": "o1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "quantity": "0.01",
        "price": "60000",
        "fee": "0.3",
        "fee_currency": "USDT",
        "liquidity": "taker",
        "executed_at": trade["executed_at"],
    }
    assert not Fill.objects.exists()
    # when it posts it as a fill (twice: idempotent on trade_id)
    fill = {k: trade[k] for k in ("trade_id", "quantity", "price", "fee", "fee_currency",
                                  "executed_at")}  # fmt: skip
    fill["client_order_id"] = "o1"
    assert client.post(url(paper, "fills"), fill, format="json").status_code == 201
    assert client.post(url(paper, "fills"), fill, format="json").status_code == 200
    # then the local order is filled and the local position matches the venue's trade
    assert Order.objects.get(client_order_id="o1").status == "filled"
    assert Position.objects.get(account=paper).qty == D("0.01")


def test_trades_list_filters_since_and_pages_oldest_first(paper):
    client, _ = make_bot("alpha", paper)
    for i in range(5):
        trade_through_api(client, paper, f"p{i}")
    PaperTrade.objects.filter(client_order_id__in=["p0", "p1"]).update(
        executed_at=timezone.now() - timedelta(hours=2)
    )
    since = (timezone.now() - timedelta(hours=1)).isoformat()
    resp = client.get(url(paper, "paper", "trades"), {"since": since})
    assert [t["client_order_id"] for t in resp.json()["results"]] == ["p2", "p3", "p4"]
    page = client.get(url(paper, "paper", "trades"), {"page_size": 2}).json()
    assert [t["client_order_id"] for t in page["results"]] == ["p0", "p1"]
    rest = client.get(page["next"]).json()
    assert [t["client_order_id"] for t in rest["results"]] == ["p2", "p3"]
    resp = client.get(url(paper, "paper", "trades"), {"symbol": "ETH/USDT"})
    assert resp.json()["results"] == []


def test_naive_or_bad_since_is_400_naming_the_parameter(paper):
    client, _ = make_bot("alpha", paper)
    for bad in ("2026-01-01T00:00:00", "yesterday"):
        body = assert_error(client.get(url(paper, "paper", "trades"), {"since": bad}), 400,
                            "validation_error")  # fmt: skip
        assert "since" in body["fields"], body


def test_not_a_paper_account_or_not_granted_is_404(paper):
    live = AccountFactory(name="live-acct", exchange="binance")
    hidden = AccountFactory(name="paper-hidden")
    client, _ = make_bot("alpha", paper, live)
    body = assert_error(client.get(url(live, "paper", "trades")), 404, "not_found")
    assert "not a paper account" in body["detail"]
    assert_error(client.get(url(hidden, "paper", "trades")), 404, "not_found")
    assert_error(client.get(url("nope", "paper", "trades")), 404, "not_found")


def test_submitting_a_market_order_without_a_mark_is_409_and_changes_nothing(paper):
    client, _ = make_bot("alpha", paper)
    body = order_body(client_order_id="x1", type="market", price=None, symbol="ETH/USDT")
    assert client.post(url(paper, "orders"), body, format="json").status_code == 201
    resp = client.post(url(paper, "orders", "x1", "transition"), {"status": "submitted"},
                       format="json")  # fmt: skip
    body = assert_error(resp, 409, "conflict", {"symbol"})
    assert "no mark price for ETH/USDT" in body["detail"]
    assert Order.objects.get(client_order_id="x1").status == "pending"


def test_schema_documents_the_paper_trades_path(client):
    resp = client.get("/api/schema/", {"format": "json"})
    paths = resp.json()["paths"]
    op = paths["/api/v1/accounts/{account}/paper/trades/"]["get"]
    names = {p["name"] for p in op["parameters"]}
    assert {"since", "order", "exchange_order_id", "symbol", "cursor", "page_size"} <= names
    assert {"200", "404"} <= set(op["responses"])


# --- the admin's mark edit ------------------------------------------------------------------
def test_admin_sets_a_mark_with_a_reason_and_it_is_audited(client, paper):
    from tests.factories import StaffFactory

    staff = StaffFactory(username="alice")
    client.force_login(staff)
    mark = PaperMarkPrice.objects.get(account=paper)
    change = f"/admin/tradingstate/papermarkprice/{mark.pk}/change/"
    # without a reason: refused, nothing changes
    resp = client.post(change, {"price": "61000", "walk": "on"})
    assert resp.status_code == 200 and b"reason" in resp.content
    assert PaperMarkPrice.objects.get().price == D("60000")
    # a bad price: refused naming the field
    resp = client.post(change, {"price": "-5", "walk": "on", "reason": "x"})
    assert resp.status_code == 200 and b"price" in resp.content
    # with one: set, audited as alice with the reason
    resp = client.post(change, {"price": "61000", "reason": "move the market"})
    assert resp.status_code == 302, resp.content[:2000]
    mark.refresh_from_db()
    assert (mark.price, mark.walk) == (D("61000"), False)
    actor = Actor.for_user(staff)
    entry = AuditEntry.objects.filter(action="paper.mark_set").latest("id")
    assert (entry.actor_name, entry.reason, entry.after["price"]) == (
        "alice", "move the market", "61000",
    )  # fmt: skip
    assert actor.name == "alice"
    # a new mark on a live account is refused naming the account
    live = AccountFactory(name="live-x", exchange="okx")
    add = {"account": live.pk, "symbol": "BTC/USDT", "price": "1", "reason": "x"}
    resp = client.post("/admin/tradingstate/papermarkprice/add/", add)
    assert resp.status_code == 200 and b"not a paper account" in resp.content


# --- the demo's missed fill ---------------------------------------------------------------
def test_demo_stages_a_missed_fill_beside_the_runbooks_three_discrepancies():
    from reconciliation.services import run_reconciliation

    call_command("demo")
    account = AccountFactory(name="paper-demo")
    # the missed fill: the venue filled ghi789 (0.03 @ 60,250), the local state has no fill
    trade = PaperTrade.objects.get(account=account)
    assert (trade.client_order_id, trade.quantity, trade.price) == ("ghi789", D("0.03"),
                                                                    D("60250"))  # fmt: skip
    ghi = Order.objects.get(account=account, client_order_id="ghi789")
    assert (ghi.status, ghi.filled_qty, ghi.exchange_order_id) == (
        "filled", D("0.03"), trade.exchange_order_id,
    )  # fmt: skip
    assert not Fill.objects.filter(account=account).exists()
    assert_audited(trade, action="paper.trade", actor=Actor.system("demo"))
    # the runbook's three, exactly
    run = run_reconciliation(account)
    found = {(d.type, d.key) for d in run.discrepancies.all()}
    assert {("position_mismatch", "BTC/USDT"), ("stale_local_order", "abc123"),
            ("missing_local_order", "def456")} <= found  # fmt: skip
    position = run.discrepancies.get(type="position_mismatch")
    assert (position.local_value["qty"], position.exchange_value["qty"]) == ("0.05", "0.08")
    assert not run.discrepancies.filter(type="balance_mismatch").exists()
    assert run.order_discrepancies == 2 and run.position_discrepancies == 1
