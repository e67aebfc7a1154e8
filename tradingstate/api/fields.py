"""Serializer fields for the API's inputs and outputs."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tradingstate.amounts import AMOUNT_PATTERN, amount_str, parse_amount_text
from tradingstate.errors import ValidationFailed
from tradingstate.models import client_order_id_validator

NOT_A_STRING = "Must be a string."


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": AMOUNT_PATTERN,
        "example": "0.05",
        "description": (
            "A decimal as a string matching the pattern exactly (JSON numbers, exponents, "
            "'+', '.5' and '5.' are refused)."
        ),
    }
)
class AmountField(serializers.Field):
    """A decimal amount: in, a string matching ``AMOUNT_PATTERN`` (``parse_amount_text``: the
    one parser of amounts given as text; the error names the field); out, the canonical
    decimal string (never a float)."""

    def __init__(self, *, positive: bool = False, non_negative: bool = False, **kwargs):
        self.positive = positive
        self.non_negative = non_negative
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return parse_amount_text(
                data, self.field_name, positive=self.positive, non_negative=self.non_negative
            )
        except ValidationFailed as exc:
            raise serializers.ValidationError(
                exc.fields.get(self.field_name) or [exc.message]
            ) from None

    def to_representation(self, value):
        return amount_str(value)


@extend_schema_field(
    {
        "type": "string",
        "format": "decimal",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,18})?$",
        "example": "1234.5",
        "description": (
            "A computed figure (a sum or product of amounts) as a decimal string: at most 18 "
            "places, and as many integer digits as it needs."
        ),
    }
)
class FigureField(AmountField):
    """An output-only computed figure (P&L, notional, totals): it may outgrow the 20 integer
    digits of an input amount, so its schema does not claim them."""


class StrictCharField(serializers.CharField):
    """A CharField that takes only JSON strings (no numbers turned into text) and never trims."""

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError(NOT_A_STRING)
        return super().to_internal_value(data)


NOT_A_BOOLEAN = "Must be a boolean: true or false."


class StrictBooleanField(serializers.BooleanField):
    """A BooleanField that takes only JSON ``true``/``false`` (DRF's own also reads 0, 1,
    "yes", "on", ...: the schema says boolean, so the server does too)."""

    def to_internal_value(self, data):
        if data is True or data is False:
            return data
        raise serializers.ValidationError(NOT_A_BOOLEAN)


NOT_AN_INTEGER = "Must be an integer."


class StrictIntegerField(serializers.IntegerField):
    """An IntegerField that takes only JSON integers (DRF's own also reads "5", 5.0, true)."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            raise serializers.ValidationError(NOT_AN_INTEGER)
        return super().to_internal_value(data)


class ClientOrderIdField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("min_length", 1)
        kwargs.setdefault("max_length", 64)
        super().__init__(**kwargs)
        self.validators.append(client_order_id_validator)


class ReasonField(StrictCharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 1000)
        super().__init__(**kwargs)
