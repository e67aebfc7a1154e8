"""Inputs the reliability catalogue found accepted: underscore/non-ASCII digits in amounts,
naive fill timestamps."""

import pytest

from tests.api_support import api_cache_table, assert_error, make_bot, url  # noqa: F401
from tests.factories import AccountFactory
from tradingstate.actors import Actor
from tradingstate.amounts import parse_amount
from tradingstate.errors import ValidationFailed
from tradingstate.models import Fill
from tradingstate.services import order_register


@pytest.mark.parametrize("text", ["1_000", "\u0661\u0662", "\uff11", "1\u00a0"])
def test_amounts_are_ascii_digits_without_underscores(text):
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(text, "quantity")
    assert "quantity" in caught.value.fields


@pytest.mark.django_db
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.parametrize(
    ("executed_at", "says"),
    [
        ("2026-01-01T00:00:00", "must include a timezone"),
        # a date was read as a naive midnight: the message asked for a timezone
        ("2026-01-01", "not a date"),
        ("20260101", "not a date"),
    ],
)
def test_fill_with_a_naive_timestamp_is_400_naming_executed_at(executed_at, says):
    account = AccountFactory(name="acct-a")
    order_register(account=account, client_order_id="o1", symbol="BTC/USDT", side="buy",
                   quantity="0.05", price="50000", actor=Actor.system("tests"))  # fmt: skip
    client, _ = make_bot("alpha", account)
    body = {"client_order_id": "o1", "trade_id": "t1", "quantity": "0.01", "price": "1",
            "executed_at": executed_at}  # fmt: skip
    response = client.post(url(account, "fills"), body, format="json")
    error = assert_error(response, 400, "validation_error", {"executed_at"})
    assert says in error["fields"]["executed_at"][0]
    assert not Fill.objects.exists()
