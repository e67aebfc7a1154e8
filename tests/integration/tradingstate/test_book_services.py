from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tests.audit import assert_audited
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tradingstate.errors import Conflict, ValidationFailed, VersionConflict
from tradingstate.models import AuditEntry, Fill, Order, Position
from tradingstate.services import (
    Overfill,
    balance_correct,
    balance_set,
    fill_record,
    position_correct,
    position_set,
)

pytestmark = pytest.mark.django_db


def record(account, actor, **over):
    data = {
        "account": account,
        "client_order_id": "o1",
        "trade_id": "t1",
        "quantity": "0.4",
        "price": "100",
        "actor": actor,
    }
    data.update(over)
    return fill_record(**data)


def test_fill_updates_order_and_position_atomically(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    fill, created = record(account, bot_actor)
    assert created
    order = Order.objects.get(client_order_id="o1")
    assert order.status == "partially_filled"
    assert order.filled_qty == Decimal("0.4") and order.remaining_qty == Decimal("0.6")
    assert order.avg_fill_price == Decimal("100")
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    assert position.qty == Decimal("0.4") and position.entry_price == Decimal("100")
    entry = assert_audited(fill, action="fill.record", actor=bot_actor)
    assert entry.after["order"]["filled_qty"] == "0.4"
    assert entry.after["position"]["qty"] == "0.4"

    record(account, bot_actor, trade_id="t2", quantity="0.6", price="110")
    order.refresh_from_db()
    assert order.status == "filled" and order.remaining_qty == 0
    assert order.avg_fill_price == Decimal("106")
    position.refresh_from_db()
    assert position.qty == Decimal("1") and position.entry_price == Decimal("106")


def test_same_trade_twice_is_a_no_op(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    first, _ = record(account, bot_actor)
    again, created = record(account, bot_actor)
    assert not created and again.pk == first.pk
    assert Fill.objects.count() == 1
    assert Order.objects.get().filled_qty == Decimal("0.4")
    assert Position.objects.get().qty == Decimal("0.4")
    assert AuditEntry.objects.filter(action="fill.record").count() == 1


def test_same_trade_id_other_content_conflicts(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    record(account, bot_actor)
    with pytest.raises(Conflict, match="quantity"):
        record(account, bot_actor, quantity="0.5")


def test_overfill_refused_and_nothing_changes(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    record(account, bot_actor, quantity="0.9")
    with pytest.raises(Overfill) as exc:
        record(account, bot_actor, trade_id="t2", quantity="0.2")
    assert "overfill" in exc.value.message
    assert Order.objects.get().filled_qty == Decimal("0.9")
    assert Position.objects.get().qty == Decimal("0.9")
    assert Fill.objects.count() == 1


def test_sell_fill_subtracts_and_flips(account, bot_actor):
    PositionFactory(
        account=account, symbol="BTC/USDT", qty=Decimal("0.3"), entry_price=Decimal("90")
    )
    OrderFactory(account=account, client_order_id="o1", side="sell", status="submitted")
    record(account, bot_actor, quantity="0.5", price="120")
    position = Position.objects.get()
    assert position.qty == Decimal("-0.2") and position.entry_price == Decimal("120")


def test_pending_order_fill_walks_machine(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="pending")
    record(account, bot_actor, quantity="1")
    assert Order.objects.get().status == "filled"


def test_late_fill_on_cancelled_order_keeps_status(account, bot_actor):
    OrderFactory(account=account, client_order_id="o1", status="cancelled")
    record(account, bot_actor)
    order = Order.objects.get()
    assert order.status == "cancelled" and order.filled_qty == Decimal("0.4")


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"trade_id": ""}, "trade_id"),
        ({"trade_id": "x\x00"}, "trade_id"),
        ({"quantity": "0"}, "quantity"),
        ({"price": "-1"}, "price"),
        ({"executed_at": timezone.now() + timedelta(days=3650)}, "executed_at"),
        ({"executed_at": timezone.now() - timedelta(days=3650)}, "executed_at"),
    ],
)
def test_fill_bad_input(account, bot_actor, over, field):
    OrderFactory(account=account, client_order_id="o1", status="submitted")
    with pytest.raises(ValidationFailed) as exc:
        record(account, bot_actor, **over)
    assert field in exc.value.fields
    assert Fill.objects.count() == 0


def test_position_set_and_correct(account, bot_actor, staff_actor):
    pos = position_set(
        account=account, symbol="BTC/USDT", qty="0.05", entry_price="50000", actor=bot_actor
    )
    assert pos.qty == Decimal("0.05") and pos.version == 1
    assert_audited(pos, action="position.set", actor=bot_actor, after={"qty": "0.05"})
    pos = position_correct(
        account=account,
        symbol="BTC/USDT",
        qty="0.08",
        actor=staff_actor,
        reason="matches exchange UI",
        expected_version=1,
    )
    assert pos.qty == Decimal("0.08") and pos.version == 2
    assert_audited(
        pos,
        action="position.correct",
        actor=staff_actor,
        reason="matches exchange UI",
        before={"qty": "0.05"},
        after={"qty": "0.08"},
    )


def test_correction_needs_reason(account, staff_actor):
    for reason in ("", "   "):
        with pytest.raises(ValidationFailed) as exc:
            position_correct(
                account=account, symbol="BTC/USDT", qty="1", actor=staff_actor, reason=reason
            )
        assert "reason" in exc.value.fields
        with pytest.raises(ValidationFailed):
            balance_correct(
                account=account, currency="USDT", total="1", actor=staff_actor, reason=reason
            )
    assert Position.objects.count() == 0 and AuditEntry.objects.count() == 0


def test_version_guard(account, bot_actor):
    PositionFactory(account=account, symbol="ETH/USDT", qty=Decimal("1"))
    with pytest.raises(VersionConflict):
        position_set(
            account=account, symbol="ETH/USDT", qty="2", actor=bot_actor, expected_version=7
        )
    assert Position.objects.get(symbol="ETH/USDT").qty == Decimal("1")


def test_balance_set_and_correct(account, bot_actor, staff_actor):
    bal = balance_set(account=account, currency="USDT", free="900", used="100", actor=bot_actor)
    assert bal.total == Decimal("1000") and bal.version == 1
    assert_audited(bal, action="balance.set", actor=bot_actor, after={"total": "1000"})
    bal = balance_correct(
        account=account,
        currency="USDT",
        total="1200",
        used="100",
        actor=staff_actor,
        reason="deposit",
    )
    assert bal.free == Decimal("1100") and bal.version == 2
    assert_audited(
        bal,
        action="balance.correct",
        actor=staff_actor,
        reason="deposit",
        before={"total": "1000"},
        after={"total": "1200"},
    )


def test_balance_bad_currency(account, bot_actor):
    BalanceFactory(account=account, currency="BTC")
    with pytest.raises(ValidationFailed) as exc:
        balance_set(account=account, currency="US DT", total="1", actor=bot_actor)
    assert "currency" in exc.value.fields
