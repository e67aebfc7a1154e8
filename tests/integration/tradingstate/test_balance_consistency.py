"""D8 (issue 13): a balance is consistent: free, used and total never negative and
free + used = total; the missing one is derived. PostgreSQL enforces it too (CHECK)."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    two_accounts,
    url,
)
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.models import Balance
from tradingstate.services import balance_set

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    return a, client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"total": "10", "free": "20", "used": "5"}, "total"),
        ({"total": "-1"}, "total"),
        ({"free": "-1", "used": "1"}, "free"),
        ({"total": "5", "used": "6"}, "used"),
        ({"total": "10", "free": "9.999999999999999999", "used": "0"}, "total"),
    ],
)
def test_inconsistent_or_negative_balances_are_refused(setup, body, field):
    a, client = setup
    response = client.put(url(a, "balances", "USDT"), body, format="json")
    assert_error(response, 400, "validation_error", fields={field})
    assert not Balance.objects.exists()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"free": "7", "used": "3"}, ("7", "3", "10")),
        ({"total": "10", "used": "3"}, ("7", "3", "10")),
        ({"total": "10"}, ("10", "0", "10")),
        ({"total": "10", "free": "7", "used": "3"}, ("7", "3", "10")),
        # 38 digits each: Python's default context (28 digits) rounded the sum and the
        # difference, and a consistent balance was refused or stored inconsistent
        (
            {"free": "12345678901234567890.123456789012345678", "used": "0.000000000000000001"},
            (
                "12345678901234567890.123456789012345678",
                "0.000000000000000001",
                "12345678901234567890.123456789012345679",
            ),
        ),
        (
            {"total": "12345678901234567890.123456789012345679", "used": "1.000000000000000001"},
            (
                "12345678901234567889.123456789012345678",
                "1.000000000000000001",
                "12345678901234567890.123456789012345679",
            ),
        ),
        (
            {
                "total": "12345678901234567890.123456789012345679",
                "free": "12345678901234567890.123456789012345678",
                "used": "0.000000000000000001",
            },
            (
                "12345678901234567890.123456789012345678",
                "0.000000000000000001",
                "12345678901234567890.123456789012345679",
            ),
        ),
    ],
)
def test_the_missing_amount_is_derived(setup, body, expected):
    a, client = setup
    response = client.put(url(a, "balances", "USDT"), body, format="json")
    assert response.status_code == 200, response.json()
    row = Balance.objects.get()
    assert (row.free, row.used, row.total) == tuple(Decimal(x) for x in expected)


def test_the_database_refuses_a_negative_free_on_every_backend(setup):
    a, _ = setup
    balance_set(account=a, currency="USDT", total="10", actor=Actor.system("t"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Balance.objects.filter(account=a).update(free=Decimal("-1"), total=Decimal("-1"))


@requires_postgres
def test_postgres_refuses_free_plus_used_other_than_total(setup):
    a, _ = setup
    balance_set(account=a, currency="USDT", total="10", actor=Actor.system("t"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Balance.objects.filter(account=a).update(total=Decimal("11"))
    assert connection.vendor == "postgresql"
