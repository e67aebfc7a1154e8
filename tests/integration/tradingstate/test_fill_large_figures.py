"""Fills whose figures are large but valid are recorded exactly; fills whose results would not
fit an amount (38 digits, 18 places) are a 400 naming the inputs, and change nothing. Both
were a 500: the average price was computed in Python's 28-digit default context (quantize
failed past 10 integer digits), and an oversized realized P&L reached the database."""

from decimal import Decimal

import pytest

from tests.api_support import api_cache_table, assert_error, make_bot, url  # noqa: F401
from tests.factories import AccountFactory, OrderFactory
from tradingstate.models import AuditEntry, Fill, Order, Position
from tradingstate.rules import fills as rules

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

BIG = Decimal("10000000000000000000")  # 20 integer digits: the largest amounts allowed


def _order(account, coid, side, qty, price="1"):
    return OrderFactory(account=account, client_order_id=coid, symbol="BTC/USDT", side=side,
                        quantity=Decimal(qty), remaining_qty=Decimal(qty), price=Decimal(price),
                        status="submitted")  # fmt: skip


def _fill(client, account, coid, trade_id, qty, price):
    body = {"client_order_id": coid, "trade_id": trade_id, "quantity": qty, "price": price}
    return client.post(url(account, "fills"), body, format="json")


@pytest.mark.parametrize("price", ["20000000000", "99999999999999999999.999999999999999999"])
def test_a_fill_at_a_large_valid_price_is_recorded_with_its_exact_average(price):
    account = AccountFactory(name="acct-big")
    client, _ = make_bot("alpha", account)
    _order(account, "b1", "buy", "1", price)
    # when: two fills at prices 18 places apart
    first = _fill(client, account, "b1", "t1", "0.3", price)
    assert first.status_code == 201, first.content
    second = _fill(client, account, "b1", "t2", "0.3", price)
    # then: both recorded, the average exactly the price
    assert second.status_code == 201, second.content
    order = Order.objects.get(client_order_id="b1")
    assert order.avg_fill_price == Decimal(price) and order.filled_qty == Decimal("0.6")


def test_the_average_of_38_digit_amounts_is_not_rounded_to_28_digits():
    top = Decimal("99999999999999999999.999999999999999999")
    state = rules.OrderFills(client_order_id="o", quantity=top, filled_qty=Decimal(0),
                             fills_qty=Decimal(0), avg_fill_price=None, status="submitted",
                             version=1)  # fmt: skip
    one = Decimal("12345678901234567890.123456789012345678")
    after = rules.order_after_fill(state, trade_id="t", qty=one, price=Decimal("1.5"))
    # then: 38-digit sums are exact (the default context kept 28 digits of them)
    assert after.fills_qty == one
    assert after.remaining_qty == Decimal("87654321098765432109.876543210987654321")


def test_a_fill_whose_realized_pnl_would_not_fit_is_400_and_changes_nothing():
    account = AccountFactory(name="acct-big")
    client, _ = make_bot("alpha", account)
    _order(account, "long", "buy", str(BIG), "9000000000")
    _order(account, "close", "sell", str(BIG), "1")
    assert _fill(client, account, "long", "t1", str(BIG), "9000000000").status_code == 201
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    before = (position.qty, position.entry_price, position.realized_pnl, position.version)
    audits = AuditEntry.objects.count()
    # when: closing it at 1 would realize about -9E+28, past 20 integer digits
    response = _fill(client, account, "close", "t2", str(BIG), "1")
    # then: a 400 naming the inputs, and nothing written
    body = assert_error(response, 400, "validation_error", {"quantity", "price"})
    assert "realized pnl" in body["detail"]
    position.refresh_from_db()
    assert (position.qty, position.entry_price, position.realized_pnl, position.version) == before
    assert not Fill.objects.filter(trade_id="t2").exists()
    closing = Order.objects.get(client_order_id="close")
    assert closing.filled_qty == 0 and closing.status == "submitted"
    assert AuditEntry.objects.count() == audits


@pytest.mark.parametrize("sign", ["", "-"])
def test_the_largest_amounts_the_pattern_allows_are_accepted(sign):
    from tradingstate.amounts import parse_amount

    # 38 significant digits: abs() in the default context rounded them up to 1E+20
    text = f"{sign}99999999999999999999.999999999999999999"
    assert parse_amount(text, "price") == Decimal(text)


def test_a_transition_of_the_largest_order_keeps_its_remaining_quantity_exact():
    account = AccountFactory(name="acct-big")
    client, _ = make_bot("alpha", account)
    top = "99999999999999999999.999999999999999999"
    _order(account, "top", "buy", top)
    body = {"status": "partially_filled", "filled_qty": "0.000000000000000001"}
    response = client.post(url(account, "orders", "top", "transition"), body, format="json")
    # then: the difference has 38 digits; the default context rounded it to 1E+20 (a 500)
    assert response.status_code == 200, response.content
    assert response.json()["remaining_qty"] == "99999999999999999999.999999999999999998"
    order = Order.objects.get(client_order_id="top")
    assert order.remaining_qty == Decimal("99999999999999999999.999999999999999998")
