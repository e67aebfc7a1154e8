"""Orders over the API: register (idempotent), list and filters, detail, transitions."""

from decimal import Decimal

import pytest
from django.utils import timezone

from killswitch.services import killswitch_activate
from tests.api_support import (
    actor_of,
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    two_accounts,
    url,
)
from tests.audit import assert_audited
from tests.factories import OrderFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Order

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, user = make_bot("alpha", a)
    return a, client, user


# --- register ---------------------------------------------------------------------------------
def test_register_201_then_same_body_200_with_the_same_body(setup):
    a, client, user = setup
    # when
    first = client.post(url(a, "orders"), order_body(), format="json", HTTP_X_REQUEST_ID="r1")
    again = client.post(url(a, "orders"), order_body(), format="json", HTTP_X_REQUEST_ID="r2")
    # then
    assert first.status_code == 201 and again.status_code == 200
    assert first.json() == again.json()
    body = first.json()
    assert body["quantity"] == "0.05" and body["price"] == "50000" and body["status"] == "pending"
    assert body["origin"] == "bot" and body["account"] == "acct-a" and body["version"] == 1
    order = Order.objects.get()
    assert_audited(order, action="order.register", actor=actor_of(user, "r1"))


def test_register_same_content_in_another_spelling_is_200(setup):
    a, client, _ = setup
    client.post(url(a, "orders"), order_body(), format="json")
    again = client.post(url(a, "orders"), order_body(quantity="0.050"), format="json")
    assert again.status_code == 200


def test_register_different_content_409_names_the_fields(setup):
    a, client, _ = setup
    client.post(url(a, "orders"), order_body(), format="json")
    response = client.post(
        url(a, "orders"), order_body(quantity="0.06", side="sell"), format="json"
    )
    body = assert_error(response, 409, "conflict", fields={"quantity", "side"})
    assert "quantity" in body["detail"] and "side" in body["detail"]
    assert Order.objects.get().quantity == Decimal("0.05")


def test_register_json_number_is_refused_naming_the_field(setup):
    # issue 13 (D6): the published pattern is the rule; a JSON number is not an amount string
    a, client, _ = setup
    raw = (
        '{"client_order_id": "p1", "symbol": "BTC/USDT", "side": "buy", "type": "limit",'
        ' "quantity": 0.123456789012345678, "price": 12345678901234567890.5}'
    )
    response = client.generic("POST", url(a, "orders"), raw, content_type="application/json")
    assert_error(response, 400, "validation_error", fields={"quantity", "price"})
    assert not Order.objects.exists()


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"quantity": "NaN"}, "quantity"),
        ({"quantity": "Infinity"}, "quantity"),
        ({"quantity": "1e400"}, "quantity"),
        ({"quantity": "1E-19"}, "quantity"),
        ({"quantity": "0.0000000000000000001"}, "quantity"),
        ({"quantity": "123456789012345678901"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": " 1"}, "quantity"),
        ({"quantity": True}, "quantity"),
        ({"quantity": None}, "quantity"),
        ({"quantity": [1]}, "quantity"),
        ({"price": "-5"}, "price"),
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"client_order_id": "a/b"}, "client_order_id"),
        ({"client_order_id": 12345}, "client_order_id"),
        ({"side": "long"}, "side"),
        ({"type": "iceberg"}, "type"),
        ({"symbol": ""}, "symbol"),
    ],
)
def test_register_bad_values_400_name_the_field(setup, over, field):
    a, client, _ = setup
    response = client.post(url(a, "orders"), order_body(**over), format="json")
    body = assert_error(response, 400, "validation_error")
    assert field in body["fields"], body
    assert field in body["detail"]
    assert not Order.objects.exists() and not AuditEntry.objects.filter(action__startswith="order")


@pytest.mark.parametrize(
    "extra",
    [
        {"status": "filled"},
        {"filled_qty": "1"},
        {"version": 7},
        {"account": "acct-b"},
        {"is_staff": True},
        {"origin": "reconciliation"},
    ],
)
def test_register_unknown_fields_rejected_by_name(setup, extra):
    a, client, _ = setup
    response = client.post(url(a, "orders"), order_body(**extra), format="json")
    body = assert_error(response, 400, "validation_error", fields=set(extra))
    assert body["fields"][next(iter(extra))] == ["Unknown field."]
    assert not Order.objects.exists()


def test_register_missing_fields_400(setup):
    a, client, _ = setup
    response = client.post(url(a, "orders"), {}, format="json")
    body = assert_error(response, 400, "validation_error")
    assert {"client_order_id", "symbol", "side", "quantity"} <= set(body["fields"])


def test_register_body_must_be_an_object(setup):
    a, client, _ = setup
    response = client.post(url(a, "orders"), [order_body()], format="json")
    assert_error(response, 400, "validation_error", fields={"non_field_errors"})


def test_register_refused_423_while_kill_switch_active(setup):
    a, client, _ = setup
    killswitch_activate(reason="exchange incident", actor=Actor.system("tests"))
    response = client.post(url(a, "orders"), order_body(), format="json")
    body = assert_error(response, 423, "kill_switch_active")
    assert body["reason"] == "exchange incident"
    assert not Order.objects.exists()


def test_register_refused_503_during_restart_recovery(setup):
    a, client, _ = setup
    type(a).objects.filter(pk=a.pk).update(recovery_started_at=timezone.now())
    response = client.post(url(a, "orders"), order_body(), format="json")
    assert_error(response, 503, "reconciliation_in_progress")
    assert not Order.objects.exists()


# --- list, filters, detail ---------------------------------------------------------------------
def test_list_filters_status_symbol_active(setup):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1", status="pending", symbol="BTC/USDT")
    OrderFactory(account=a, client_order_id="o2", status="submitted", symbol="ETH/USDT")
    OrderFactory(
        account=a, client_order_id="o3", status="filled", filled_qty=Decimal(1), symbol="BTC/USDT"
    )

    def ids(query):
        response = client.get(url(a, "orders"), query)
        assert response.status_code == 200, response.json()
        return [row["client_order_id"] for row in response.json()["results"]]

    assert ids({}) == ["o3", "o2", "o1"]  # newest first
    assert ids({"status": "submitted"}) == ["o2"]
    assert ids({"symbol": "BTC/USDT"}) == ["o3", "o1"]
    assert ids({"active": "true"}) == ["o2", "o1"]
    assert ids({"active": "false"}) == ["o3"]
    assert ids({"active": "true", "symbol": "BTC/USDT"}) == ["o1"]


def test_list_bad_filter_value_is_400(setup):
    a, client, _ = setup
    body = assert_error(client.get(url(a, "orders"), {"status": "weird"}), 400, "validation_error")
    assert "status" in body["fields"]


def test_detail_and_missing_order(setup):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1")
    response = client.get(url(a, "orders", "o1"))
    assert response.status_code == 200 and response.json()["client_order_id"] == "o1"
    assert_error(client.get(url(a, "orders", "nope")), 404, "not_found")


# --- transitions -------------------------------------------------------------------------------
def test_transition_applies_and_audits_the_bot(setup):
    a, client, user = setup
    order = OrderFactory(account=a, client_order_id="o1", quantity=Decimal("2"))
    response = client.post(
        url(a, "orders", "o1", "transition"),
        {"status": "submitted", "exchange_order_id": "X-1", "reason": "acked"},
        format="json",
        HTTP_X_REQUEST_ID="t-1",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "submitted" and response.json()["version"] == 2
    partial = client.post(
        url(a, "orders", "o1", "transition"),
        {"status": "partially_filled", "filled_qty": "0.5", "avg_fill_price": "100"},
        format="json",
        HTTP_X_REQUEST_ID="t-2",
    )
    assert partial.json()["filled_qty"] == "0.5" and partial.json()["remaining_qty"] == "1.5"
    order.refresh_from_db()
    assert_audited(
        order,
        action="order.transition",
        actor=actor_of(user, "t-2"),
        count=2,
        after={"status": "partially_filled", "filled_qty": "0.5"},
    )


def test_illegal_transition_409_names_from_and_to_and_changes_nothing(setup):
    a, client, _ = setup
    order = OrderFactory(account=a, client_order_id="o1", status="pending")
    response = client.post(
        url(a, "orders", "o1", "transition"), {"status": "filled"}, format="json"
    )
    body = assert_error(response, 409, "transition_not_allowed", fields={"status"})
    assert "'pending'" in body["detail"] and "'filled'" in body["detail"]
    order.refresh_from_db()
    assert order.status == "pending" and order.version == 1 and order.filled_qty == 0
    assert not AuditEntry.objects.filter(action="order.transition").exists()


@pytest.mark.parametrize(
    ("status", "filled"), [("rejected", "0.5"), ("cancelled", "1"), ("expired", "1")]
)
def test_a_contradictory_terminal_state_is_400_and_changes_nothing(setup, status, filled):
    a, client, _ = setup
    order = OrderFactory(account=a, client_order_id="o1", status="submitted", quantity=Decimal(1))
    response = client.post(
        url(a, "orders", "o1", "transition"),
        {"status": status, "filled_qty": filled},
        format="json",
    )
    body = assert_error(response, 400, "validation_error", fields={"filled_qty"})
    assert f"'{status}'" in body["fields"]["filled_qty"][0]
    order.refresh_from_db()
    assert (order.status, order.version, order.filled_qty) == ("submitted", 1, 0)
    assert not AuditEntry.objects.filter(action="order.transition").exists()


@pytest.mark.parametrize("exid", [" 123", "123 ", "12\n3", "12\u20283", "\t"])
def test_an_exchange_order_id_is_the_venues_text_as_printed(setup, exid):
    # " 123" was stored: never the venue's "123", so the pass could not match the order
    a, client, _ = setup
    order = OrderFactory(account=a, client_order_id="o1", status="pending")
    response = client.post(
        url(a, "orders", "o1", "transition"),
        {"status": "submitted", "exchange_order_id": exid},
        format="json",
    )
    assert_error(response, 400, "validation_error", fields={"exchange_order_id"})
    order.refresh_from_db()
    assert (order.status, order.exchange_order_id, order.version) == ("pending", "", 1)


def test_transition_version_conflict_409(setup):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1")
    response = client.post(
        url(a, "orders", "o1", "transition"),
        {"status": "submitted", "expected_version": 5},
        format="json",
    )
    assert_error(response, 409, "version_conflict")


def test_transition_unknown_status_and_unknown_fields_400(setup):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="o1")
    endpoint = url(a, "orders", "o1", "transition")
    assert_error(client.post(endpoint, {"status": "done"}, format="json"), 400, "validation_error")
    response = client.post(endpoint, {"status": "submitted", "quantity": "9"}, format="json")
    assert_error(response, 400, "validation_error", fields={"quantity"})
    assert_error(
        client.post(
            url(a, "orders", "ghost", "transition"), {"status": "submitted"}, format="json"
        ),
        404,
        "not_found",
    )


# --- bulk transitions --------------------------------------------------------------------------
def test_bulk_applies_valid_items_and_reports_each(setup):
    a, client, user = setup
    OrderFactory(account=a, client_order_id="o1")
    OrderFactory(account=a, client_order_id="o2", status="filled", filled_qty=Decimal(1))
    updates = [
        {"client_order_id": "o1", "status": "submitted"},
        {"client_order_id": "o2", "status": "cancelled"},  # illegal: filled is terminal
        {"client_order_id": "ghost", "status": "cancelled"},
        {"client_order_id": "o1", "status": "bogus"},
        {"client_order_id": "o1", "status": "submitted", "hack": 1},
        "not an object",
        None,  # failed the whole request (400), though the others were fine
    ]
    response = client.post(
        url(a, "orders", "bulk-transition"),
        {"updates": updates},
        format="json",
        HTTP_X_REQUEST_ID="bulk-1",
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["applied"] == 1 and body["failed"] == 6
    results = body["results"]
    assert [r["index"] for r in results] == list(range(7))
    assert results[0] == {
        "index": 0,
        "client_order_id": "o1",
        "ok": True,
        "status": "submitted",
        "version": 2,
        "filled_qty": "0",
    }
    assert results[1]["error"]["error"] == "transition_not_allowed"
    assert results[2]["error"]["error"] == "not_found"
    assert results[3]["error"]["fields"].keys() == {"status"}
    assert results[4]["error"]["fields"] == {"hack": ["Unknown field."]}
    assert results[5]["ok"] is False and results[5]["client_order_id"] is None
    assert results[6] == {**results[5], "index": 6}  # null fails alone, as a string does
    o1 = Order.objects.get(client_order_id="o1")
    assert o1.status == "submitted"
    assert Order.objects.get(client_order_id="o2").status == "filled"
    assert_audited(o1, action="order.transition", actor=actor_of(user, "bulk-1"))


def test_bulk_envelope_errors(setup, settings):
    a, client, _ = setup
    endpoint = url(a, "orders", "bulk-transition")
    assert_error(client.post(endpoint, {}, format="json"), 400, "validation_error")
    assert_error(client.post(endpoint, {"updates": []}, format="json"), 400, "validation_error")
    assert_error(
        client.post(endpoint, {"updates": [], "extra": 1}, format="json"),
        400,
        "validation_error",
        fields={"extra"},
    )
    limit = settings.TRADINGSTATE.api.bulk_max_items
    many = [{"client_order_id": f"o{i}", "status": "submitted"} for i in range(limit + 1)]
    body = assert_error(
        client.post(endpoint, {"updates": many}, format="json"), 400, "validation_error"
    )
    assert str(limit) in body["fields"]["updates"][0]


def test_bulk_counts_the_items_before_validating_any(setup, settings, monkeypatch):
    from rest_framework import serializers

    a, client, _ = setup
    seen = []
    validate = serializers.JSONField.to_internal_value
    monkeypatch.setattr(
        serializers.JSONField,
        "to_internal_value",
        lambda self, data: seen.append(1) or validate(self, data),
    )
    limit = settings.TRADINGSTATE.api.bulk_max_items
    many = [{"client_order_id": f"o{i}", "status": "submitted"} for i in range(limit + 1)]
    response = client.post(url(a, "orders", "bulk-transition"), {"updates": many}, format="json")
    body = assert_error(response, 400, "validation_error", fields={"updates"})
    assert str(limit) in body["fields"]["updates"][0]
    # then: refused on the count alone (it validated every item first: seconds for 200,000)
    assert seen == []


def test_bulk_reports_each_item_as_it_left_the_order_when_one_is_named_twice(setup):
    a, client, _ = setup
    OrderFactory(account=a, client_order_id="b1", quantity=Decimal(1))
    updates = [
        {"client_order_id": "b1", "status": "submitted"},
        {"client_order_id": "b1", "status": "partially_filled", "filled_qty": "0.5"},
    ]
    response = client.post(url(a, "orders", "bulk-transition"), {"updates": updates}, format="json")
    assert response.status_code == 200, response.json()
    first, second = response.json()["results"]
    # then: each item reports the state it left (both reported the last one)
    assert (first["status"], first["version"], first["filled_qty"]) == ("submitted", 2, "0")
    assert (second["status"], second["version"], second["filled_qty"]) == (
        "partially_filled",
        3,
        "0.5",
    )
    order = Order.objects.get(client_order_id="b1")
    assert (order.status, order.version) == ("partially_filled", 3)
    assert (
        AuditEntry.objects.filter(action="order.transition", target_id=str(order.pk)).count() == 2
    )


def test_bulk_at_the_limit_is_applied(setup, settings):
    a, client, _ = setup
    limit = settings.TRADINGSTATE.api.bulk_max_items
    Order.objects.bulk_create(
        [
            Order(
                account=a,
                client_order_id=f"o{i}",
                symbol="BTC/USDT",
                side="buy",
                quantity=Decimal(1),
                remaining_qty=Decimal(1),
                price=Decimal(1),
            )
            for i in range(limit)
        ]
    )
    many = [{"client_order_id": f"o{i}", "status": "submitted"} for i in range(limit)]
    response = client.post(url(a, "orders", "bulk-transition"), {"updates": many}, format="json")
    assert response.status_code == 200
    assert response.json()["applied"] == limit
    assert Order.objects.filter(status="submitted").count() == limit
