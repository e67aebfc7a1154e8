"""``field__any``: the long-list membership lookup the reconciliation pass filters with."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AccountFactory, OrderFactory
from tradingstate.models import Order

pytestmark = pytest.mark.django_db


def test_any_matches_like_in():
    account = AccountFactory()
    orders = [OrderFactory(account=account, client_order_id=f"c{i}") for i in range(5)]
    ids = [orders[0].pk, orders[3].pk, orders[3].pk]
    assert sorted(Order.objects.filter(pk__any=ids).values_list("pk", flat=True)) == sorted(
        Order.objects.filter(pk__in=ids).values_list("pk", flat=True)
    )
    names = Order.objects.filter(client_order_id__any=["c1", "c4", "nope"])
    assert sorted(names.values_list("client_order_id", flat=True)) == ["c1", "c4"]


def test_any_of_nothing_matches_nothing_alone_and_in_an_or():
    from django.db.models import Q

    account = AccountFactory()
    OrderFactory(account=account, client_order_id="c1")
    assert not Order.objects.filter(pk__any=[]).exists()
    either = Order.objects.filter(Q(client_order_id__any=[]) | Q(client_order_id__any=["c1"]))
    assert list(either.values_list("client_order_id", flat=True)) == ["c1"]


def test_any_sends_one_parameter_on_postgresql_whatever_the_length():
    AccountFactory()
    ids = list(range(1, 3001))
    with CaptureQueriesContext(connection) as ctx:
        assert Order.objects.filter(pk__any=ids).count() == 0
    sql = ctx.captured_queries[0]["sql"]
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql and sql.count(",") > 2000  # the array, inlined by the client
    else:
        assert " IN (" in sql


def test_any_prepares_values_for_the_field():
    with pytest.raises(ValueError, match="expected a number"):
        list(Order.objects.filter(pk__any=["not-a-number"]))
