"""Fills, positions and balances over the API."""

from decimal import Decimal

import pytest

from tests.api_support import (
    actor_of,
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    two_accounts,
    url,
)
from tests.audit import assert_audited
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tradingstate.models import AuditEntry, Balance, Fill, Order, Position

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, user = make_bot("alpha", a)
    OrderFactory(
        account=a, client_order_id="o1", status="submitted", quantity=Decimal("1"), side="buy"
    )
    return a, client, user


def fill_body(**over):
    body = {"client_order_id": "o1", "trade_id": "T-1", "quantity": "0.4", "price": "100"}
    body.update(over)
    return body


# --- fills -----------------------------------------------------------------------------------
def test_fill_201_then_duplicate_200_with_one_effect(setup):
    a, client, user = setup
    first = client.post(url(a, "fills"), fill_body(), format="json", HTTP_X_REQUEST_ID="f1")
    again = client.post(url(a, "fills"), fill_body(), format="json", HTTP_X_REQUEST_ID="f2")
    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    body = first.json()
    assert body["trade_id"] == "T-1" and body["client_order_id"] == "o1"
    assert body["quantity"] == "0.4" and body["order"]["status"] == "partially_filled"
    assert again.json()["trade_id"] == "T-1"
    order = Order.objects.get(client_order_id="o1")
    assert order.filled_qty == Decimal("0.4")
    assert Position.objects.get(account=a, symbol="BTC/USDT").qty == Decimal("0.4")
    assert Fill.objects.count() == 1
    assert_audited(Fill.objects.get(), action="fill.record", actor=actor_of(user, "f1"))


def test_fill_same_trade_other_content_409(setup):
    a, client, _ = setup
    client.post(url(a, "fills"), fill_body(), format="json")
    response = client.post(url(a, "fills"), fill_body(quantity="0.5"), format="json")
    assert_error(response, 409, "conflict", fields={"quantity"})


def test_overfill_409_changes_nothing(setup):
    a, client, _ = setup
    response = client.post(url(a, "fills"), fill_body(quantity="1.5"), format="json")
    assert_error(response, 409, "overfill", fields={"quantity"})
    assert not Fill.objects.exists()
    assert Order.objects.get().filled_qty == 0


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"quantity": "-1"}, "quantity"),
        ({"price": "NaN"}, "price"),
        ({"trade_id": ""}, "trade_id"),
        ({"trade_id": 7}, "trade_id"),
        ({"executed_at": "yesterday"}, "executed_at"),
        ({"order_id": 1}, "order_id"),
    ],
)
def test_fill_bad_input_400(setup, over, field):
    a, client, _ = setup
    body = assert_error(
        client.post(url(a, "fills"), fill_body(**over), format="json"), 400, "validation_error"
    )
    assert field in body["fields"]
    assert not Fill.objects.exists()


def test_fill_for_unknown_order_404(setup):
    a, client, _ = setup
    response = client.post(url(a, "fills"), fill_body(client_order_id="ghost"), format="json")
    assert_error(response, 404, "not_found")


# --- positions -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("encoded", "symbol"),
    # (issue 13, D7: a new position's symbol is a ccxt unified symbol; "ETHUSD" is not one)
    [
        ("BTC%2FUSDT", "BTC/USDT"),
        ("BTC%2FUSDT%3AUSDT", "BTC/USDT:USDT"),
        ("ETH%2FUSD%3AETH-251226", "ETH/USD:ETH-251226"),
    ],
)
def test_position_put_with_encoded_symbol(setup, encoded, symbol):
    a, client, user = setup
    response = client.put(
        url(a, "positions", encoded),
        {"qty": "-0.25", "entry_price": "101.5", "reason": "bot book"},
        format="json",
        HTTP_X_REQUEST_ID="p1",
    )
    assert response.status_code == 200, response.json()
    assert response.json() == {
        **response.json(),
        "symbol": symbol,
        "qty": "-0.25",
        "entry_price": "101.5",
        "version": 1,
    }
    position = Position.objects.get(account=a, symbol=symbol)
    assert position.qty == Decimal("-0.25")
    assert_audited(position, action="position.set", actor=actor_of(user, "p1"), reason="bot book")


def test_position_put_version_conflict_and_bad_input(setup):
    a, client, _ = setup
    PositionFactory(account=a, symbol="BTC/USDT", qty=Decimal(1))
    endpoint = url(a, "positions", "BTC%2FUSDT")
    response = client.put(endpoint, {"qty": "2", "expected_version": 9}, format="json")
    assert_error(response, 409, "version_conflict")
    assert_error(client.put(endpoint, {"qty": "abc"}, format="json"), 400, "validation_error")
    assert_error(
        client.put(endpoint, {"qty": "1", "version": 3}, format="json"),
        400,
        "validation_error",
        fields={"version"},
    )
    assert Position.objects.get(account=a, symbol="BTC/USDT").qty == Decimal(1)


def test_position_list(setup):
    a, client, _ = setup
    PositionFactory(account=a, symbol="BTC/USDT", qty=Decimal("0.5"))
    PositionFactory(account=a, symbol="ETH/USDT", qty=Decimal("-3"))
    rows = client.get(url(a, "positions")).json()["results"]
    assert [(r["symbol"], r["qty"]) for r in rows] == [("ETH/USDT", "-3"), ("BTC/USDT", "0.5")]


def test_position_methods(setup):
    a, client, _ = setup
    assert_error(client.post(url(a, "positions"), {}, format="json"), 405, "method_not_allowed")
    assert_error(client.get(url(a, "positions", "BTC%2FUSDT")), 405, "method_not_allowed")


# --- balances --------------------------------------------------------------------------------
def test_balance_put_and_list(setup):
    a, client, user = setup
    response = client.put(
        url(a, "balances", "USDT"),
        {"free": "90.5", "used": "10"},
        format="json",
        HTTP_X_REQUEST_ID="b1",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["total"] == "100.5" and response.json()["version"] == 1
    balance = Balance.objects.get(account=a, currency="USDT")
    assert_audited(balance, action="balance.set", actor=actor_of(user, "b1"))
    BalanceFactory(account=a, currency="BTC", total=Decimal("0.1"), free=Decimal("0.1"))
    rows = client.get(url(a, "balances")).json()["results"]
    assert [r["currency"] for r in rows] == ["BTC", "USDT"]


def test_balance_put_errors(setup):
    a, client, _ = setup
    endpoint = url(a, "balances", "USDT")
    assert_error(client.put(endpoint, {}, format="json"), 400, "validation_error")
    assert_error(
        client.put(endpoint, {"used": "-1", "total": "1"}, format="json"), 400, "validation_error"
    )
    assert_error(
        client.put(url(a, "balances", "U$DT"), {"total": "1"}, format="json"),
        400,
        "validation_error",
        fields={"currency"},
    )
    client.put(endpoint, {"total": "1"}, format="json")
    assert_error(
        client.put(endpoint, {"total": "2", "expected_version": 7}, format="json"),
        409,
        "version_conflict",
    )
    assert Balance.objects.get().total == Decimal(1)
    assert AuditEntry.objects.filter(action="balance.set").count() == 1


def test_one_asset_is_one_balance_whatever_the_case(setup):
    # "eth" beside "ETH" was a second row, and the exposure (which compares currencies
    # without case) counted the asset twice
    a, client, _ = setup
    assert client.put(url(a, "balances", "ETH"), {"free": "1"}, format="json").status_code == 200
    body = assert_error(
        client.put(url(a, "balances", "eth"), {"free": "1"}, format="json"), 409, "conflict"
    )
    assert "'ETH'" in body["fields"]["currency"][0]
    assert list(Balance.objects.filter(account=a).values_list("currency", "total")) == [
        ("ETH", Decimal(1))
    ]
    assert AuditEntry.objects.filter(action="balance.set").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_refuses_a_second_row_for_one_asset():
    # the guard under the service's check: two writers creating "ETH" and "eth" at once
    from django.db import IntegrityError, transaction

    a, _b = two_accounts()
    BalanceFactory(account=a, currency="ETH", total=Decimal(1), free=Decimal(1))
    with pytest.raises(IntegrityError), transaction.atomic():
        BalanceFactory(account=a, currency="eth", total=Decimal(1), free=Decimal(1))
    BalanceFactory(account=_b, currency="eth", total=Decimal(1), free=Decimal(1))  # another account


@pytest.mark.django_db(transaction=True)
def test_book_writes_take_their_row_locks_in_their_own_transaction():
    # no test transaction around the request, as under gunicorn: balance_set had lost its
    # @transaction.atomic, and PostgreSQL refused its row lock (every PUT a 503)
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    response = client.put(url(a, "balances", "USDT"), {"free": "5"}, format="json")
    assert response.status_code == 200, response.json()
    response = client.put(
        url(a, "positions", "BTC/USDT"), {"qty": "1", "reason": "r"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert Balance.objects.get(account=a).total == Decimal(5)
