from decimal import Decimal

import pytest

from tests.audit import assert_audited
from tests.factories import OrderFactory
from tradingstate.errors import Conflict, NotFound, TransitionNotAllowed, ValidationFailed
from tradingstate.models import AuditEntry, Instrument, Order
from tradingstate.services import (
    TransitionRequest,
    order_bulk_transition,
    order_register,
    order_transition,
)

pytestmark = pytest.mark.django_db


def register(account, actor, **over):
    data = {
        "account": account,
        "client_order_id": "abc123",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.05",
        "price": "50000",
        "actor": actor,
    }
    data.update(over)
    return order_register(**data)


def test_register_creates_and_audits(account, bot_actor):
    # when
    order, created = register(account, bot_actor, reason="new signal")
    # then
    assert created
    assert order.status == "pending" and order.origin == "bot"
    assert order.quantity == Decimal("0.05") and order.remaining_qty == Decimal("0.05")
    assert_audited(
        order,
        action="order.register",
        actor=bot_actor,
        reason="new signal",
        after={"client_order_id": "abc123", "quantity": "0.05", "status": "pending"},
    )


def test_register_is_idempotent_on_same_content(account, bot_actor):
    first, _ = register(account, bot_actor)
    again, created = register(account, bot_actor, quantity="0.050")
    assert not created and again.pk == first.pk
    assert Order.objects.count() == 1
    assert AuditEntry.objects.filter(action="order.register").count() == 1


def test_register_conflict_names_the_fields(account, bot_actor):
    register(account, bot_actor)
    with pytest.raises(Conflict) as exc:
        register(account, bot_actor, quantity="0.06", side="sell")
    assert set(exc.value.fields) == {"quantity", "side"}
    assert "quantity, side" in exc.value.message or "side, quantity" in exc.value.message
    assert Order.objects.get().quantity == Decimal("0.05")


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"client_order_id": ""}, "client_order_id"),
        ({"client_order_id": "x" * 65}, "client_order_id"),
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"client_order_id": "nul\x00"}, "client_order_id"),
        ({"client_order_id": "rtl\u202e"}, "client_order_id"),
        ({"side": "long"}, "side"),
        ({"type": "iceberg"}, "type"),
        ({"quantity": "0"}, "quantity"),
        ({"quantity": "-1"}, "quantity"),
        ({"quantity": "NaN"}, "quantity"),
        ({"price": "-5"}, "price"),
        ({"price": None}, "price"),
        ({"symbol": ""}, "symbol"),
        ({"strategy_id": "s" * 65}, "strategy_id"),
    ],
)
def test_register_refuses_bad_input_naming_the_field(account, bot_actor, over, field):
    with pytest.raises(ValidationFailed) as exc:
        register(account, bot_actor, **over)
    assert field in exc.value.fields
    assert Order.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_register_refuses_unknown_symbol_when_instruments_known(account, bot_actor):
    Instrument.objects.create(account=account, symbol="ETH/USDT", base="ETH", quote="USDT")
    with pytest.raises(ValidationFailed, match="Unknown symbol 'BTC/USDT'"):
        register(account, bot_actor)


def test_transition_updates_and_audits(account, bot_actor):
    order, _ = register(account, bot_actor)
    order_transition(
        account=account,
        client_order_id="abc123",
        to_status="submitted",
        exchange_order_id="EX-1",
        actor=bot_actor,
    )
    order = order_transition(
        account=account,
        client_order_id="abc123",
        to_status="partially_filled",
        filled_qty="0.02",
        avg_fill_price="50010",
        actor=bot_actor,
        reason="ws update",
    )
    assert order.status == "partially_filled"
    assert order.filled_qty == Decimal("0.02") and order.remaining_qty == Decimal("0.03")
    assert order.version == 3 and order.exchange_order_id == "EX-1"
    assert_audited(
        order,
        action="order.transition",
        actor=bot_actor,
        count=2,
        reason="ws update",
        before={"status": "submitted", "filled_qty": "0"},
        after={"status": "partially_filled", "filled_qty": "0.02", "avg_fill_price": "50010"},
    )


def test_filled_without_qty_fills_completely(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    order = order_transition(
        account=account, client_order_id="o1", to_status="filled", actor=bot_actor
    )
    assert order.filled_qty == order.quantity and order.remaining_qty == 0


def test_illegal_transition_changes_nothing(account, bot_actor):
    original = OrderFactory(
        account=account, client_order_id="o1", status="filled", filled_qty=Decimal("1")
    )
    snapshot = Order.objects.filter(pk=original.pk).values().get()
    with pytest.raises(TransitionNotAllowed) as exc:
        order_transition(
            account=account, client_order_id="o1", to_status="cancelled", actor=bot_actor
        )
    assert exc.value.message == "Order status cannot change from 'filled' to 'cancelled'."
    assert Order.objects.filter(pk=original.pk).values().get() == snapshot
    assert AuditEntry.objects.count() == 0


@pytest.mark.parametrize(
    ("status", "filled", "message"),
    [
        ("partially_filled", "0", "0 < filled_qty"),
        ("partially_filled", "1", "0 < filled_qty"),
        ("filled", "0.5", "equal to the quantity"),
        ("partially_filled", "2", "exceeds the order quantity"),
    ],
)
def test_filled_qty_rules(account, bot_actor, status, filled, message):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    with pytest.raises(ValidationFailed, match=message):
        order_transition(
            account=account,
            client_order_id="o1",
            to_status=status,
            filled_qty=filled,
            actor=bot_actor,
        )


def test_filled_qty_cannot_decrease(account, bot_actor):
    OrderFactory(
        account=account, client_order_id="o1", status="partially_filled", filled_qty=Decimal("0.5")
    )
    with pytest.raises(ValidationFailed, match="cannot decrease"):
        order_transition(
            account=account,
            client_order_id="o1",
            to_status="partially_filled",
            filled_qty="0.4",
            actor=bot_actor,
        )


def test_exchange_order_id_cannot_change(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="pending", exchange_order_id="A")
    with pytest.raises(Conflict, match="cannot change"):
        order_transition(
            account=account,
            client_order_id="o1",
            to_status="submitted",
            exchange_order_id="B",
            actor=bot_actor,
        )


def test_unknown_order_is_not_found(account, bot_actor):
    with pytest.raises(NotFound):
        order_transition(
            account=account, client_order_id="nope", to_status="submitted", actor=bot_actor
        )


def test_bulk_transition_applies_valid_reports_each(
    account, bot_actor, django_assert_max_num_queries
):
    for i in range(50):
        OrderFactory(account=account, client_order_id=f"b{i}", status="pending")
    OrderFactory(account=account, client_order_id="done", status="filled", filled_qty=Decimal(1))
    requests = [TransitionRequest(client_order_id=f"b{i}", status="submitted") for i in range(50)]
    requests += [
        TransitionRequest(client_order_id="done", status="cancelled"),
        TransitionRequest(client_order_id="ghost", status="submitted"),
        TransitionRequest(client_order_id="b0", status="filled"),  # second step for b0
    ]
    with django_assert_max_num_queries(8):
        results = order_bulk_transition(account=account, requests=requests, actor=bot_actor)
    assert [r.ok for r in results] == [True] * 50 + [False, False, True]
    assert isinstance(results[50].error, TransitionNotAllowed)
    assert isinstance(results[51].error, NotFound)
    assert Order.objects.get(client_order_id="b0").status == "filled"
    assert Order.objects.filter(status="submitted").count() == 49
    assert Order.objects.get(client_order_id="done").status == "filled"
    assert AuditEntry.objects.filter(action="order.transition").count() == 51
    b0 = Order.objects.get(client_order_id="b0")
    assert_audited(
        b0, action="order.transition", actor=bot_actor, count=2, after={"status": "filled"}
    )
