"""GET .../fills/ and the order detail's fills over the API (issue 14)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    two_accounts,
    url,
)
from tests.factories import OrderFactory
from tradingstate.models import Fill

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def fills():
    a, b = two_accounts()
    client, _user = make_bot("alpha", a)
    now = timezone.now()
    o1 = OrderFactory(
        account=a, client_order_id="o1", symbol="BTC/USDT", quantity=Decimal("1"),
        filled_qty=Decimal("0.5"), fills_qty=Decimal("0.5"), status="partially_filled",
    )  # fmt: skip
    o2 = OrderFactory(account=a, client_order_id="o2", symbol="ETH/USDT", quantity=Decimal("2"),
                      filled_qty=Decimal("2"), fills_qty=Decimal("2"), status="filled")  # fmt: skip
    common = {"account": a, "price": Decimal("100"), "side": "buy"}
    Fill.objects.create(order=o1, symbol="BTC/USDT", trade_id="t1", quantity=Decimal("0.2"),
                        executed_at=now - timedelta(hours=2), origin="bot", **common)  # fmt: skip
    Fill.objects.create(
        order=o1, symbol="BTC/USDT", trade_id="t2", quantity=Decimal("0.3"),
        executed_at=now - timedelta(hours=1), origin="reconciliation", fee=Decimal("0.1"),
        fee_currency="USDT", is_maker=True, **common,
    )  # fmt: skip
    Fill.objects.create(order=o2, symbol="ETH/USDT", trade_id="inferred-o2-2",
                        quantity=Decimal("2"), executed_at=now, origin="reconciliation",
                        inferred=True, **common)  # fmt: skip
    Fill.objects.create(order=None, symbol="BTC/USDT", trade_id="x9", quantity=Decimal("0.1"),
                        executed_at=now, origin="reconciliation", client_order_id="manual",
                        **common)  # fmt: skip
    Fill.objects.create(account=b, symbol="BTC/USDT", trade_id="other", quantity=Decimal("1"),
                        price=Decimal(1), executed_at=now)  # fmt: skip
    return a, client, now


def ids(resp):
    assert resp.status_code == 200, resp.content
    return sorted(row["trade_id"] for row in resp.json()["results"])


def test_list_fills_with_every_filter(fills):
    a, client, now = fills
    base = url(a, "fills")
    assert ids(client.get(base)) == ["inferred-o2-2", "t1", "t2", "x9"]  # never account b's
    assert ids(client.get(base, {"symbol": "ETH/USDT"})) == ["inferred-o2-2"]
    assert ids(client.get(base, {"order": "o1"})) == ["t1", "t2"]
    assert ids(client.get(base, {"origin": "bot"})) == ["t1"]
    assert ids(client.get(base, {"inferred": "true"})) == ["inferred-o2-2"]
    assert ids(client.get(base, {"external": "true"})) == ["x9"]
    since = (now - timedelta(minutes=90)).isoformat()
    until = (now - timedelta(minutes=30)).isoformat()
    assert ids(client.get(base, {"since": since, "until": until})) == ["t2"]
    # cursor pagination
    page = client.get(base, {"page_size": 2}).json()
    assert len(page["results"]) == 2 and page["next"]
    rest = client.get(page["next"]).json()
    assert len(rest["results"]) == 2 and rest["next"] is None


def test_fill_rows_show_origin_inferred_and_external(fills):
    a, client, _now = fills
    rows = {r["trade_id"]: r for r in client.get(url(a, "fills")).json()["results"]}
    assert rows["t2"]["client_order_id"] == "o1" and rows["t2"]["origin"] == "reconciliation"
    assert rows["t2"]["is_maker"] is True and rows["t2"]["fee"] == "0.1"
    assert rows["inferred-o2-2"]["inferred"] is True
    assert rows["x9"]["client_order_id"] is None and rows["x9"]["external"] is True
    assert rows["x9"]["reported_client_order_id"] == "manual"


def test_bad_filters_are_400_naming_the_field(fills):
    a, client, _now = fills
    assert_error(client.get(url(a, "fills"), {"since": "2026-01-01T00:00:00"}), 400,
                 "validation_error", {"since"})  # fmt: skip
    assert_error(client.get(url(a, "fills"), {"origin": "martian"}), 400, "validation_error",
                 {"origin"})  # fmt: skip


def test_order_detail_includes_its_fills(fills):
    a, client, _now = fills
    body = client.get(url(a, "orders", "o1")).json()
    assert body["fills_qty"] == "0.5" and body["filled_qty"] == "0.5"
    assert [f["trade_id"] for f in body["fills"]] == ["t1", "t2"]
    detail = client.get(url(a, "orders", "o2")).json()
    assert detail["fills"][0]["inferred"] is True


def test_schema_documents_the_fills_list(fills):
    _a, client, _now = fills
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    path = schema["paths"]["/api/v1/accounts/{account}/fills/"]
    names = {p["name"] for p in path["get"]["parameters"]}
    assert {"symbol", "order", "origin", "inferred", "since", "until", "cursor"} <= names
    assert "post" in path
    detail = schema["paths"]["/api/v1/accounts/{account}/orders/{client_order_id}/"]["get"]
    ref = detail["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/OrderDetail")
