"""Cancel-all on activation, against the paper venue and a boundary fake of a stubborn venue."""

import logging
from decimal import Decimal

import pytest

from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.services import killswitch_activate, killswitch_cancel_open_orders
from tests.audit import assert_audited
from tests.factories import AccountFactory, OrderFactory
from tradingstate.exchanges.base import (
    ExchangeAdapter,
    ExchangeOrder,
    FetchResult,
    OrderNotFound,
    TransientExchangeError,
)
from tradingstate.models import PaperOrder

pytestmark = pytest.mark.django_db

REASON = "Manual position correction in progress"


def venue_order(account, ex_id, coid="", status="open"):
    return PaperOrder.objects.create(
        account=account,
        exchange_order_id=ex_id,
        client_order_id=coid,
        symbol="BTC/USDT",
        side="buy",
        amount=Decimal("0.01"),
        price=Decimal("50000"),
        status=status,
    )


def exchange_order(ex_id, coid=""):
    return ExchangeOrder(
        symbol="BTC/USDT",
        side="sell",
        type="limit",
        amount=Decimal("1"),
        filled=Decimal("0"),
        status="open",
        exchange_order_id=ex_id,
        client_order_id=coid,
    )


class StubbornVenue(ExchangeAdapter):
    """An exchange that acknowledges cancels but keeps some orders open."""

    def __init__(self, orders, *, failing=(), not_found=(), complete=True):
        self.orders = list(orders)
        self.failing = set(failing)
        self.not_found = set(not_found)
        self.complete = complete
        self.cancel_calls = []
        self.closed = False

    def fetch_open_orders(self):
        return FetchResult(list(self.orders), complete=self.complete)

    def cancel_order(self, client_order_id, exchange_order_id, symbol):
        self.cancel_calls.append(exchange_order_id)
        if exchange_order_id in self.failing:
            raise TransientExchangeError("429 Too Many Requests", retry_after=1)
        if exchange_order_id in self.not_found:
            raise OrderNotFound("gone")

    def fetch_positions(self):
        raise NotImplementedError

    def fetch_balances(self):
        raise NotImplementedError

    def fetch_order(self, client_order_id, exchange_order_id, symbol):
        raise NotImplementedError

    def load_instruments(self):
        raise NotImplementedError

    def close(self):
        self.closed = True


def test_activation_cancels_open_orders_after_commit(
    account, staff_actor, django_capture_on_commit_callbacks
):
    # given the venue has an order the platform knows and one it never knew
    OrderFactory(account=account, client_order_id="abc123", exchange_order_id="EX-1")
    venue_order(account, "EX-1", "abc123")
    venue_order(account, "EX-2", "def456")
    venue_order(account, "EX-3", status="closed")
    # when
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = killswitch_activate(
            reason=REASON, actor=staff_actor, account=account, cancel_open_orders=True
        )
        # then nothing is cancelled inside the activation's transaction
        assert PaperOrder.objects.filter(status="open").count() == 2
    assert len(callbacks) == 1 and result.cancel_summary is None
    callbacks[0]()
    # then after commit
    assert not PaperOrder.objects.filter(status="open").exists()
    summary = result.cancel_summary
    assert summary["complete"] and summary["cancelled"] == 2 and summary["remaining"] == 0
    assert {c["exchange_order_id"] for c in summary["accounts"]["test-acct"]["cancelled"]} == {
        "EX-1",
        "EX-2",
    }
    activate, cancel = KillSwitchEvent.objects.order_by("id")
    assert activate.action == "activate" and activate.cancel_open_orders
    assert cancel.action == "cancel_orders" and cancel.cancel_summary == summary
    assert cancel.account == account and cancel.actor_name == "alice"
    assert_audited(
        KillSwitch.objects.get(account=account),
        action="killswitch.cancel_open_orders",
        actor=staff_actor,
        after={"complete": True, "cancelled": 2, "remaining": 0},
    )


def test_global_activation_cancels_every_enabled_account(
    staff_actor, django_capture_on_commit_callbacks
):
    a, b = AccountFactory(name="a"), AccountFactory(name="b")
    off = AccountFactory(name="off", enabled=False)
    for acct in (a, b, off):
        venue_order(acct, f"{acct.name}-1")
    # when
    with django_capture_on_commit_callbacks(execute=True):
        result = killswitch_activate(reason=REASON, actor=staff_actor, cancel_open_orders=True)
    # then
    assert set(result.cancel_summary["accounts"]) == {"a", "b"}
    assert set(
        PaperOrder.objects.filter(status="open").values_list("account__name", flat=True)
    ) == {"off"}
    event = KillSwitchEvent.objects.get(action="cancel_orders")
    assert event.account is None and event.cancel_summary["scope"] == "global"


def test_activation_without_cancel_leaves_orders(
    account, staff_actor, django_capture_on_commit_callbacks
):
    venue_order(account, "EX-1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = killswitch_activate(reason=REASON, actor=staff_actor, account=account)
    assert callbacks == [] and result.cancel_summary is None
    assert PaperOrder.objects.filter(status="open").count() == 1


def test_already_active_still_cancels_when_asked(
    account, staff_actor, django_capture_on_commit_callbacks
):
    killswitch_activate(reason=REASON, actor=staff_actor, account=account)
    venue_order(account, "EX-9")
    with django_capture_on_commit_callbacks(execute=True):
        result = killswitch_activate(
            reason="again", actor=staff_actor, account=account, cancel_open_orders=True
        )
    assert not result.changed and result.cancel_summary["cancelled"] == 1
    assert not PaperOrder.objects.filter(status="open").exists()


def test_stubborn_venue_reports_what_remains(account, staff_actor, caplog):
    # given a venue that never lets go of two orders, one unknown to the platform
    OrderFactory(account=account, client_order_id="known", exchange_order_id="EX-K")
    venue = StubbornVenue([exchange_order("EX-K", "known"), exchange_order("EX-U")])
    # when
    with caplog.at_level(logging.WARNING, logger="killswitch"):
        summary = killswitch_cancel_open_orders(
            actor=staff_actor, account=account, adapter_factory=lambda acct: venue
        )
    # then: bounded tries, a clear report
    acct = summary["accounts"]["test-acct"]
    assert acct["rounds"] == 3 and len(venue.cancel_calls) == 6 and venue.closed
    assert not summary["complete"] and summary["remaining"] == 2
    assert {(r["exchange_order_id"], r["known_locally"]) for r in acct["remaining"]} == {
        ("EX-K", True),
        ("EX-U", False),
    }
    assert any(
        r.levelno == logging.ERROR and "cancel-all" in r.getMessage() for r in caplog.records
    )
    assert KillSwitchEvent.objects.get(action="cancel_orders").cancel_summary == summary


def test_transient_and_not_found_cancel_errors_are_recorded(account, staff_actor):
    venue = StubbornVenue(
        [exchange_order("EX-1"), exchange_order("EX-2")], failing={"EX-1"}, not_found={"EX-2"}
    )
    summary = killswitch_cancel_open_orders(
        actor=staff_actor, account=account, adapter_factory=lambda acct: venue, max_rounds=1
    )
    acct = summary["accounts"]["test-acct"]
    assert acct["failed"][0]["order"] == "EX-1" and "429" in acct["failed"][0]["error"]
    assert acct["already_gone"] == ["EX-2"]


def test_incomplete_listing_is_never_read_as_empty(account, staff_actor):
    venue = StubbornVenue([], complete=False)
    summary = killswitch_cancel_open_orders(
        actor=staff_actor, account=account, adapter_factory=lambda acct: venue
    )
    acct = summary["accounts"]["test-acct"]
    assert not summary["complete"] and "incomplete" in acct["error"]


def test_no_adapter_is_reported_not_raised(staff_actor):
    acct = AccountFactory(name="weird", exchange="no-such-exchange")
    summary = killswitch_cancel_open_orders(actor=staff_actor, account=acct)
    assert not summary["complete"]
    assert "unavailable" in summary["accounts"]["weird"]["error"]
