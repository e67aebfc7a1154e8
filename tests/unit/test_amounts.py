from decimal import Decimal

import pytest

from tradingstate.amounts import amount_str, parse_amount
from tradingstate.errors import ValidationFailed


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.05", Decimal("0.05")),
        (1, Decimal(1)),
        ("123456789012345678.123456789012345678", Decimal("123456789012345678.123456789012345678")),
        ("-0", Decimal(0)),
        ("1.000000000000000000000", Decimal("1")),
        (0.1, Decimal("0.1")),
    ],
)
def test_parse_amount_accepts(raw, expected):
    assert parse_amount(raw, "quantity") == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("1e309", "digits before"),
        ("0.0000000000000000001", "decimal places"),
        ("123456789012345678901", "digits before"),
        ("abc", "decimal number"),
        ("", "decimal number"),
        (" 1", "decimal number"),
        (True, "decimal number"),
        (None, "decimal number"),
        ([1], "decimal number"),
    ],
)
def test_parse_amount_refuses_naming_the_field(raw, message):
    with pytest.raises(ValidationFailed) as exc:
        parse_amount(raw, "quantity")
    assert "quantity" in exc.value.fields
    assert message in exc.value.fields["quantity"][0]


def test_sign_rules():
    with pytest.raises(ValidationFailed, match="greater than zero"):
        parse_amount("0", "quantity", positive=True)
    with pytest.raises(ValidationFailed, match="not be negative"):
        parse_amount("-1", "price", non_negative=True)
    assert parse_amount("-2.5", "qty") == Decimal("-2.5")


def test_amount_str_is_canonical():
    assert amount_str(Decimal("0.050000")) == "0.05"
    assert amount_str(Decimal("1E+3")) == "1000"
    assert amount_str(Decimal("-0")) == "0"
    assert amount_str(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "99999999999999999999.999999999999999999",
        "-12345678901234567890.123456789012345678",
        "10000000000000000000.000000000000000001",
    ],
)
def test_38_digit_amounts_are_written_out_exactly(text):
    # normalize() in the default 28-digit context rounded these (API bodies, audit JSON)
    from tradingstate.amounts import amount_display, amount_str, check_amount

    value = Decimal(text)
    assert amount_str(value) == text
    assert amount_display(value) == text
    assert amount_str(Decimal(text + "000")) == text
    assert check_amount(Decimal(text + "000"), "quantity") == value
