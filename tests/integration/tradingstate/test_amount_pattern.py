"""D6 (issue 13): the published amount pattern ``^-?[0-9]{1,20}(\\.[0-9]{1,18})?$`` is the
rule wherever an amount enters as text: the API, the console/admin forms and the config."""

from decimal import Decimal
from pathlib import Path

import pytest

from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    two_accounts,
    url,
)
from tests.factories import OrderFactory
from tradingstate.amounts import parse_amount_text
from tradingstate.config import ConfigError, load_config
from tradingstate.errors import ValidationFailed
from tradingstate.models import Balance, Fill, Order, Position
from tradingstate.web.console.forms import BalanceCorrectForm, PositionCorrectForm

OUTSIDE = [
    "1e3",
    "5E+4",
    "+1",
    ".5",
    "5.",
    "1e-3",
    " 1",
    "1_000",
    "0x10",
    "\uff11",  # a fullwidth digit one
    "1.0000000000000000000",
]
INSIDE = {"0.05": Decimal("0.05"), "-2.5": Decimal("-2.5"), "50000": Decimal(50000)}


@pytest.mark.parametrize("text", OUTSIDE)
def test_parser_refuses_text_outside_the_pattern(text):
    with pytest.raises(ValidationFailed) as exc:
        parse_amount_text(text, "quantity")
    assert list(exc.value.fields) == ["quantity"]


@pytest.mark.parametrize(("text", "value"), INSIDE.items())
def test_parser_accepts_the_pattern(text, value):
    assert parse_amount_text(text, "qty") == value


@pytest.fixture
def setup(db, api_cache_table):  # noqa: F811
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    OrderFactory(account=a, client_order_id="o1", status="submitted", quantity=Decimal(1))
    return a, client


@pytest.mark.parametrize("text", ["1e3", "5E+4", "+1", ".5", "5."])
def test_order_registration_refuses_amounts_outside_the_pattern(setup, text):
    a, client = setup
    response = client.post(url(a, "orders"), order_body(quantity=text), format="json")
    assert_error(response, 400, "validation_error", fields={"quantity"})
    assert not Order.objects.filter(client_order_id="abc123").exists()


def test_fill_refuses_an_exponent(setup):
    a, client = setup
    body = {"client_order_id": "o1", "trade_id": "T-1", "quantity": "1e-3", "price": "100"}
    assert_error(
        client.post(url(a, "fills"), body, format="json"), 400, "validation_error", {"quantity"}
    )
    assert not Fill.objects.exists()


def test_position_and_balance_refuse_numbers_and_exponents(setup):
    a, client = setup
    response = client.put(url(a, "positions", "BTC%2FUSDT"), {"qty": 5}, format="json")
    assert_error(response, 400, "validation_error", {"qty"})
    response = client.put(url(a, "balances", "USDT"), {"total": "1E+2"}, format="json")
    assert_error(response, 400, "validation_error", {"total"})
    assert not Position.objects.exists() and not Balance.objects.exists()


@pytest.mark.parametrize("text", ["1e3", "+1", ".5"])
def test_console_forms_refuse_amounts_outside_the_pattern(text):
    form = PositionCorrectForm(data={"qty": text, "reason": "r"})
    assert not form.is_valid() and "qty" in form.errors
    form = BalanceCorrectForm(data={"free": text, "reason": "r", "version": 1})
    assert not form.is_valid() and "free" in form.errors


@pytest.mark.parametrize("value", ['"1e-2"', '"+0.01"', "0.01", '".01"'])
def test_config_amounts_follow_the_pattern(tmp_path: Path, value):
    path = tmp_path / "c.toml"
    path.write_text(f"balance_tolerance = {value}\n")
    with pytest.raises(ConfigError, match="balance_tolerance"):
        load_config(path, environ={})
    path.write_text('balance_tolerance = "0.01"\n')
    assert load_config(path, environ={}).balance_tolerance == Decimal("0.01")
