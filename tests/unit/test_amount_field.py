from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from tradingstate.fields import decode_sqlite, encode_sqlite

amounts = st.decimals(
    min_value=Decimal("-99999999999999999999.999999999999999999"),
    max_value=Decimal("99999999999999999999.999999999999999999"),
    places=18,
    allow_nan=False,
    allow_infinity=False,
)


@given(amounts)
def test_sqlite_encoding_round_trips_exactly(value):
    assert decode_sqlite(encode_sqlite(value)) == value


@given(amounts, amounts)
def test_sqlite_encoding_sorts_like_the_number(a, b):
    assert (encode_sqlite(a) < encode_sqlite(b)) == (a < b)
    assert (encode_sqlite(a) == encode_sqlite(b)) == (a == b)
