"""A bot's transition on PostgreSQL reads the order without a lock and writes it back only
if its version is unchanged (``order_transition``'s compare-and-set). A change that lands
between the read and the write must not be overwritten: the transition reads again and the
rule decides on the new state."""

from decimal import Decimal

import pytest

from tests.factories import AccountFactory
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.errors import ValidationFailed, VersionConflict
from tradingstate.models import AuditEntry, Order
from tradingstate.services import order_register, order_transition
from tradingstate.services import orders as order_services

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
BOT = Actor(type="bot", name="cas-bot")
OTHER = Actor(type="bot", name="other-bot")


def _order(account, coid="o-1"):
    order_register(
        account=account,
        client_order_id=coid,
        symbol="BTC/USDT",
        side="buy",
        quantity="1",
        price="100",
        actor=BOT,
    )
    order_transition(account=account, client_order_id=coid, to_status="submitted", actor=BOT)
    return Order.objects.get(account=account, client_order_id=coid)


def _interleave(monkeypatch, account, times, **change):
    """After each of the first ``times`` unlocked reads, another actor's transition lands."""
    real = order_services.order_get_or_404
    state = {"left": times, "inside": False}

    def read_then_interleave(**kwargs):
        order = real(**kwargs)
        if state["left"] and not state["inside"]:
            state["left"] -= 1
            state["inside"] = True
            try:
                order_transition(account=account, actor=OTHER, **change)
            finally:
                state["inside"] = False
        return order

    monkeypatch.setattr(order_services, "order_get_or_404", read_then_interleave)


def test_a_change_between_read_and_write_is_not_overwritten(monkeypatch):
    account = AccountFactory(name="cas", exchange="binance")
    _order(account)
    # another writer reports 0.5 filled after the bot read the order
    _interleave(
        monkeypatch,
        account,
        1,
        client_order_id="o-1",
        to_status="partially_filled",
        filled_qty="0.5",
    )
    # the bot's stale 0.3 would lower filled_qty: refused on the fresh state, not written
    with pytest.raises(ValidationFailed):
        order_transition(
            account=account,
            client_order_id="o-1",
            to_status="partially_filled",
            filled_qty="0.3",
            actor=BOT,
        )
    order = Order.objects.get(client_order_id="o-1")
    assert order.filled_qty == Decimal("0.5") and order.version == 3
    moves = AuditEntry.objects.filter(action="order.transition").order_by("id")
    assert [m.actor_name for m in moves] == ["cas-bot", "other-bot"]


def test_the_transition_applies_on_the_fresh_state(monkeypatch):
    account = AccountFactory(name="cas", exchange="binance")
    _order(account)
    _interleave(
        monkeypatch,
        account,
        1,
        client_order_id="o-1",
        to_status="partially_filled",
        filled_qty="0.5",
    )
    order = order_transition(
        account=account,
        client_order_id="o-1",
        to_status="partially_filled",
        filled_qty="0.7",
        actor=BOT,
    )
    fresh = Order.objects.get(client_order_id="o-1")
    assert fresh.filled_qty == order.filled_qty == Decimal("0.7")
    assert fresh.version == order.version == 4
    entry = AuditEntry.objects.filter(action="order.transition").order_by("-id").first()
    assert entry.actor_name == "cas-bot" and entry.before["filled_qty"] == "0.5"


def test_endless_contention_ends_in_a_conflict_with_nothing_written(monkeypatch):
    account = AccountFactory(name="cas", exchange="binance")
    _order(account)
    filled = iter(range(1, 100))

    real = order_services.order_get_or_404

    def always_interleave(**kwargs):
        order = real(**kwargs)
        Order.objects.filter(pk=order.pk).update(version=order.version + 1)
        return order

    monkeypatch.setattr(order_services, "order_get_or_404", always_interleave)
    with pytest.raises(VersionConflict):
        order_transition(
            account=account,
            client_order_id="o-1",
            to_status="partially_filled",
            filled_qty=f"0.{next(filled)}",
            actor=BOT,
        )
    order = Order.objects.get(client_order_id="o-1")
    assert order.status == "submitted" and order.filled_qty == 0
    assert order.version == 2 + order_services.TRANSITION_ATTEMPTS
