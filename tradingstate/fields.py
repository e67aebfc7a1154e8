"""AmountField: an exact ``Decimal`` column on every database.

PostgreSQL stores ``numeric(38, 18)``. SQLite has no exact decimal type: its NUMERIC affinity
keeps only 15 significant digits, so ``0.000000000000000001`` or a 20-digit quantity would
come back changed. On SQLite the value is therefore stored as fixed-width text that sorts
like the number (sign digit + 38 digits of the value scaled by 10**18, negatives as their
complement), so comparisons, ORDER BY, uniqueness and CHECK constraints stay correct.
Arithmetic and SUM() over amounts in SQL are not available on SQLite: do them in Python.
"""

from __future__ import annotations

from decimal import Context, Decimal

from django.db import models

DIGITS = 38
PLACES = 18
_SCALE = 10**PLACES
_SPAN = 10**DIGITS
_EXACT = Context(prec=DIGITS + PLACES + 4)  # wide enough that scaling never rounds


def encode_sqlite(value: Decimal) -> str:
    scaled = int(_EXACT.multiply(value, _SCALE).to_integral_value(context=_EXACT))
    if not -_SPAN < scaled < _SPAN:
        raise ValueError(f"{value} does not fit {DIGITS} digits with {PLACES} places")
    if scaled >= 0:
        return "1" + str(scaled).zfill(DIGITS)
    return "0" + str(_SPAN + scaled).zfill(DIGITS)


def decode_sqlite(text: str) -> Decimal:
    sign, digits = text[0], int(text[1:])
    scaled = digits if sign == "1" else digits - _SPAN
    return Decimal(scaled).scaleb(-PLACES, context=_EXACT)


class AmountField(models.DecimalField):
    def __init__(self, *args, **kwargs):
        kwargs["max_digits"] = DIGITS
        kwargs["decimal_places"] = PLACES
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs

    def get_internal_type(self) -> str:
        # Not "DecimalField": Django's SQLite converter would squeeze values through a float.
        return "AmountField"

    def db_type(self, connection) -> str:
        if connection.vendor == "sqlite":
            return "text"
        return f"numeric({DIGITS}, {PLACES})"

    def rel_db_type(self, connection) -> str:
        return self.db_type(connection)

    def cast_db_type(self, connection) -> str:
        return self.db_type(connection)

    def get_db_prep_value(self, value, connection, prepared=False):
        if not prepared:
            value = self.get_prep_value(value)
        if value is None:
            return None
        if connection.vendor == "sqlite":
            return encode_sqlite(self.to_python(value))
        return connection.ops.adapt_decimalfield_value(value, self.max_digits, self.decimal_places)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        if isinstance(value, str) and connection.vendor == "sqlite":
            return decode_sqlite(value)
        return value if isinstance(value, Decimal) else Decimal(str(value))
