"""The reconciler's bulk writes obey the same rules as the bots' services (issue 19).

Each test here is a rule the bulk path used to break: it clamped, guessed or wrote what the
single-row services refuse. A venue report that breaks a rule is now deferred with the
rule's error (the discrepancy stays open for staff), never silently adjusted.
"""

import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.models import Discrepancy, Repair
from reconciliation.services import run_reconciliation
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.memory import MemoryExchange
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, Balance, Order, Position
from tradingstate.rules import orders as rules
from tradingstate.services.sync import (
    SyncItem,
    balances_sync,
    orders_create_from_exchange,
    orders_sync_state,
    positions_sync,
)

pytestmark = pytest.mark.django_db

D = Decimal
ORDER_COLUMNS = ("status", "filled_qty", "remaining_qty", "exchange_order_id", "version")


def _columns(order: Order) -> tuple:
    order.refresh_from_db()
    return tuple(getattr(order, c) for c in ORDER_COLUMNS)


def _sync_order(account, actor, order, **values):
    item = SyncItem(
        key=order.client_order_id, values=values, target_id=order.pk, expected_version=order.version
    )
    [outcome] = orders_sync_state(account=account, items=[item], actor=actor)
    return outcome


@pytest.mark.parametrize(
    ("values", "error"),
    [
        # a venue fill above the local quantity was clamped down to it
        (
            {"status": "partially_filled", "filled_qty": "1.5"},
            rules.FILLED_QTY_OVER.format(new="1.5", qty="1"),
        ),
        # partially filled with nothing remaining was accepted
        (
            {"status": "partially_filled", "filled_qty": "1"},
            rules.PARTIAL_NEEDS_RANGE.format(qty="1", new="1"),
        ),
        # a short "filled" was raised to the full quantity
        (
            {"status": "filled", "filled_qty": "0.5"},
            rules.FILLED_NEEDS_FULL.format(qty="1", new="0.5"),
        ),
        # a different exchange id was dropped silently, the state written onto the wrong order
        (
            {"status": "cancelled", "exchange_order_id": "B"},
            rules.EXCHANGE_ID_CONFLICT.format(old="A", new="B"),
        ),
        # (unchanged) a negative average price, in the same words as for the bots
        (
            {"status": "cancelled", "exchange_order_id": "", "avg_fill_price": "-1"},
            "avg_fill_price: must not be negative",
        ),
    ],
)
def test_venue_state_breaking_a_rule_is_deferred_and_changes_nothing(
    account, system_actor, values, error
):
    # given a submitted local order of quantity 1 with exchange id A
    order = OrderFactory(account=account, status="submitted", quantity=D(1), exchange_order_id="A")
    before = _columns(order)
    # when the reconciler applies a venue state that breaks a rule
    outcome = _sync_order(account, system_actor, order, **values)
    # then it is deferred with the rule's words, and nothing changed
    assert not outcome.applied
    assert outcome.error == error
    assert _columns(order) == before
    assert not AuditEntry.objects.exists()


def test_venue_exchange_id_over_128_characters_is_refused_naming_the_field(account, system_actor):
    # it was written as is (stored on SQLite; a DataError failing the pass on PostgreSQL)
    order = OrderFactory(account=account, status="submitted", quantity=D(1))
    outcome = _sync_order(
        account, system_actor, order, status="cancelled", exchange_order_id="x" * 129
    )
    assert not outcome.applied and outcome.error == "must be at most 128 characters"
    assert _columns(order)[3] == ""


def test_venue_may_still_skip_states(account, system_actor):
    # the one named difference: pending -> filled in one repair, through submitted
    order = OrderFactory(account=account, status="pending", quantity=D(1))
    outcome = _sync_order(account, system_actor, order, status="filled", filled_qty="1")
    assert outcome.applied and outcome.extra == {"from": "pending", "to": "filled"}
    assert _columns(order) == ("filled", D(1), D(0), "", 2)


def _create(account, actor, **values):
    base = {
        "client_order_id": "v1",
        "exchange_order_id": "E1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "1",
        "price": "100",
        "filled_qty": "0",
        "avg_fill_price": None,
        "status": "submitted",
    }
    [outcome] = orders_create_from_exchange(
        account=account, items=[SyncItem(key="v1", values={**base, **values})], actor=actor
    )
    return outcome


@pytest.mark.parametrize(
    ("values", "error"),
    [
        # these reached the database's check constraints and came back as "a local row
        # appeared since the snapshot"
        ({"side": "long"}, "must be one of buy, sell (got 'long')"),
        ({"status": "open"}, "Unknown order status 'open'."),
        # no status/quantity check at all
        (
            {"status": "partially_filled", "filled_qty": "0"},
            rules.PARTIAL_NEEDS_RANGE.format(qty="1", new="0"),
        ),
        (
            {"type": "iceberg"},
            "must be one of market, limit, stop, stop_limit, take_profit, take_profit_limit, "
            "trailing_stop, other (got 'iceberg')",
        ),
        (
            {"symbol": "S" * 65},
            "symbol: must be a ccxt unified symbol such as 'BTC/USDT' (1-64 characters)",
        ),
    ],
)
def test_venue_order_creation_breaking_a_rule_names_it(account, system_actor, values, error):
    outcome = _create(account, system_actor, **values)
    assert not outcome.applied and outcome.error == error
    assert not Order.objects.exists() and not AuditEntry.objects.exists()


def test_venue_order_without_a_type_is_recorded_as_other(account, system_actor):
    outcome = _create(account, system_actor, type=None, price=None)
    assert outcome.applied
    order = Order.objects.get()
    assert (order.type, order.price, order.origin, order.status) == (
        "other",
        None,
        "reconciliation",
        "submitted",
    )


def test_position_repair_checks_the_entry_price_even_when_flat(account, system_actor):
    # the single-row position_set refused this; the bulk path ignored it
    position = PositionFactory(account=account, symbol="BTC/USDT", qty=D("0.5"), version=1)
    item = SyncItem(
        key="BTC/USDT",
        values={"symbol": "BTC/USDT", "qty": "0", "entry_price": "-1"},
        target_id=position.pk,
        expected_version=1,
    )
    [outcome] = positions_sync(account=account, items=[item], actor=system_actor)
    assert not outcome.applied and outcome.error == "entry_price: must not be negative"
    assert Position.objects.get().qty == D("0.5")


def test_balance_repair_checks_the_currency_code(account, system_actor):
    # the single-row balance_set refused this; the bulk path stored it
    item = SyncItem(
        key="US DT", values={"currency": "US DT", "free": "1", "used": "0", "total": "1"}
    )
    [outcome] = balances_sync(account=account, items=[item], actor=system_actor)
    assert not outcome.applied
    assert (
        outcome.error == "currency: must be a currency code such as 'USDT' (1-32 letters or digits)"
    )
    assert not Balance.objects.exists()


def test_balance_repair_defaults_like_balance_set(account, system_actor):
    # the bulk path needed all three amounts (a KeyError otherwise); the rule's defaults apply
    BalanceFactory(account=account, currency="USDT", free=D(1), used=D(0), total=D(1), version=4)
    balance = Balance.objects.get()
    item = SyncItem(
        key="USDT",
        values={"currency": "USDT", "total": "12", "used": "2"},
        target_id=balance.pk,
        expected_version=4,
    )
    [outcome] = balances_sync(account=account, items=[item], actor=system_actor)
    assert outcome.applied
    balance.refresh_from_db()
    assert (balance.free, balance.used, balance.total, balance.version) == (D(10), D(2), D(12), 5)


def test_stale_order_closed_with_more_than_its_quantity_stays_open_for_staff(
    account, bot_actor, caplog
):
    # given a local order of 1, submitted long ago, that the venue says closed with 1.2 filled
    order = OrderFactory(
        account=account,
        client_order_id="big",
        status="submitted",
        quantity=D(1),
        exchange_order_id="X9",
    )
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    venue = MemoryExchange()
    venue.add_order(
        symbol="BTC/USDT",
        amount=D("1.2"),
        exchange_order_id="X9",
        client_order_id="big",
        status=ex.CLOSED,
        filled=D("1.2"),
    )
    # when a pass runs
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account, "manual", adapter=venue)
    # then the order is not clamped to "filled 1": the repair is deferred, the discrepancy open
    order.refresh_from_db()
    assert (order.status, order.filled_qty) == ("submitted", D(0))
    stale = Discrepancy.objects.get(type="stale_local_order")
    assert stale.status == "open" and stale.proposed_repair["values"]["filled_qty"] == "1.2"
    repair = Repair.objects.get(discrepancy=stale)
    assert repair.status == "deferred"
    assert repair.error == rules.FILLED_QTY_OVER.format(new="1.2", qty="1")
    assert run.repairs_deferred == 1 and run.repairs_applied == 0
    assert "Auto-repair deferred: stale_local_order big: filled_qty 1.2 exceeds" in caplog.text
