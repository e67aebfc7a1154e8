from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, transaction

from tests.factories import OrderFactory, PositionFactory
from tradingstate.models import Balance, Fill, Order

pytestmark = pytest.mark.django_db


CONSTRAINTS = {c.name: (c, model) for model in apps.get_models() for c in model._meta.constraints}


def refused(fn, constraint: str):
    """``fn`` is refused by the database constraint named ``constraint``, not by any other."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        fn()
    message = str(caught.value)
    assert _names(message, constraint), f"expected {constraint}, got: {message}"


def _names(message: str, name: str) -> bool:
    if name in message:  # PostgreSQL names every constraint, SQLite its CHECK constraints
        return True
    # SQLite names a UNIQUE constraint by its columns: "UNIQUE constraint failed: t.a, t.b"
    constraint, model = CONSTRAINTS[name]
    table = model._meta.db_table
    columns = [f"{table}.{model._meta.get_field(f).column}" for f in constraint.fields]
    return message == f"UNIQUE constraint failed: {', '.join(columns)}"


def test_every_constraint_named_here_exists():
    for name in NAMED:
        assert name in CONSTRAINTS, name


def test_database_constraints(account):
    OrderFactory(account=account, client_order_id="a")
    refused(
        lambda: OrderFactory(account=account, client_order_id="a"), "order_unique_client_order_id"
    )
    refused(
        lambda: OrderFactory(account=account, client_order_id="q0", quantity=Decimal(0)),
        "order_quantity_gt_0",
    )
    refused(
        lambda: OrderFactory(
            account=account, client_order_id="f", filled_qty=Decimal(2), remaining_qty=Decimal(0)
        ),
        "order_filled_lte_quantity",
    )
    refused(
        lambda: OrderFactory(account=account, client_order_id="n", filled_qty=Decimal(-1)),
        "order_filled_gte_0",
    )
    refused(
        lambda: OrderFactory(account=account, client_order_id="s", status="lost"),
        "order_status_valid",
    )
    PositionFactory(account=account, symbol="X/Y")
    refused(lambda: PositionFactory(account=account, symbol="X/Y"), "position_unique_symbol")
    Balance.objects.create(account=account, currency="USDT")
    refused(
        lambda: Balance.objects.create(account=account, currency="USDT"),
        "balance_unique_currency",
    )
    order = Order.objects.get(client_order_id="a")
    Fill.objects.create(
        account=account,
        order=order,
        symbol=order.symbol,
        trade_id="t",
        quantity=1,
        price=1,
        executed_at="2026-01-01T00:00:00Z",
    )
    refused(
        lambda: Fill.objects.create(
            account=account,
            order=order,
            symbol=order.symbol,
            trade_id="t",
            quantity=1,
            price=1,
            executed_at="2026-01-01T00:00:00Z",
        ),
        "fill_unique_symbol_trade_id",
    )
    # issue 14: Binance numbers trades per symbol, so the same id on another symbol is
    # another trade (an external one here: no order)
    Fill.objects.create(
        account=account,
        symbol="ETH/USDT",
        trade_id="t",
        quantity=1,
        price=1,
        executed_at="2026-01-01T00:00:00Z",
    )


NAMED = (
    "order_unique_client_order_id",
    "order_quantity_gt_0",
    "order_filled_lte_quantity",
    "order_filled_gte_0",
    "order_status_valid",
    "position_unique_symbol",
    "balance_unique_currency",
    "fill_unique_symbol_trade_id",
)
