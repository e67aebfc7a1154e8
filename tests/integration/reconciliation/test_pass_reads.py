"""The pass's reads of local state (reconciliation.selectors): what they return."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from reconciliation.selectors import local_fill_orders
from tests.factories import AccountFactory, OrderFactory
from tradingstate.exchanges.base import ExchangeTrade


def _trade(exid="", coid=""):
    from django.utils import timezone

    return ExchangeTrade(
        trade_id=f"t-{exid}-{coid}",
        exchange_order_id=exid,
        client_order_id=coid or None,
        symbol="BTC/USDT",
        side="buy",
        quantity=Decimal(1),
        price=Decimal(100),
        fee=Decimal(0),
        fee_currency="USDT",
        executed_at=timezone.now(),
    )


@pytest.mark.django_db
def test_fill_orders_are_those_short_of_fills_and_those_the_trades_name():
    # given: orders of every kind, one of another account
    account = AccountFactory(name="reads")

    def order(coid, status="filled", filled="1", fills="1", exid="", of=account):
        return OrderFactory(
            account=of,
            client_order_id=coid,
            exchange_order_id=exid,
            status=status,
            filled_qty=Decimal(filled),
            fills_qty=Decimal(fills),
        )

    order("short-filled", fills="0.5")
    order("short-cancelled", status="cancelled", filled="0.5", fills="0")
    order("in-sync")
    order("named-by-exid", exid="X1")
    order("named-by-coid")
    known = order("short-but-known", status="partially_filled", filled="0.5", fills="0")
    order("other-account", fills="0", of=AccountFactory(name="other"))
    trades = [_trade(exid="X1"), _trade(coid="named-by-coid"), _trade(exid="unknown")]
    # when
    with CaptureQueriesContext(connection) as ctx:
        found = local_fill_orders(account=account, trades=trades, known={known.pk})
        without_trades = local_fill_orders(account=account, trades=None, known=set())
    # then: one statement each
    assert sorted(o.client_order_id for o in found) == [
        "named-by-coid",
        "named-by-exid",
        "short-cancelled",
        "short-filled",
    ]
    assert sorted(o.client_order_id for o in without_trades) == [
        "short-but-known",
        "short-cancelled",
        "short-filled",
    ]
    assert len(ctx.captured_queries) == 2
    short = next(o for o in found if o.client_order_id == "short-filled")
    assert (short.filled_qty, short.fills_qty, short.status) == (
        Decimal(1),
        Decimal("0.5"),
        "filled",
    )
