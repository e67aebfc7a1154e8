from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from tests.factories import OrderFactory, PositionFactory
from tradingstate.models import Balance, Fill, Order

pytestmark = pytest.mark.django_db


def refused(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_database_constraints(account):
    OrderFactory(account=account, client_order_id="a")
    refused(lambda: OrderFactory(account=account, client_order_id="a"))
    refused(lambda: OrderFactory(account=account, client_order_id="q0", quantity=Decimal(0)))
    refused(
        lambda: OrderFactory(
            account=account, client_order_id="f", filled_qty=Decimal(2), remaining_qty=Decimal(0)
        )
    )
    refused(lambda: OrderFactory(account=account, client_order_id="n", filled_qty=Decimal(-1)))
    refused(lambda: OrderFactory(account=account, client_order_id="s", status="lost"))
    PositionFactory(account=account, symbol="X/Y")
    refused(lambda: PositionFactory(account=account, symbol="X/Y"))
    Balance.objects.create(account=account, currency="USDT")
    refused(lambda: Balance.objects.create(account=account, currency="USDT"))
    order = Order.objects.get(client_order_id="a")
    Fill.objects.create(
        account=account,
        order=order,
        trade_id="t",
        quantity=1,
        price=1,
        executed_at="2026-01-01T00:00:00Z",
    )
    refused(
        lambda: Fill.objects.create(
            account=account,
            order=order,
            trade_id="t",
            quantity=1,
            price=1,
            executed_at="2026-01-01T00:00:00Z",
        )
    )
