"""No guard holds a switch row's lock while it creates a missing switch row.

Every path locks the global row first, then the account's. A registration's guard that
found a row missing used to keep the share lock of the row it did find (the account's)
while it created the missing one (the global row): if a halt had just created the global
row, the guard waited on the halt and the halt waited on the account's row, a deadlock
(seen in CI: ``test_halt_race_over_http_sample``, ``deadlock detected ... while locking
tuple ... in relation "killswitch_killswitch"``). The guard now gives its locks back before
it creates a row, then locks again in order.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from killswitch import services
from killswitch.models import KillSwitch
from killswitch.services import (
    killswitch_activate,
    killswitch_row_ensure,
    order_register_guarded,
    trading_allowed,
)
from tests.factories import AccountFactory
from tests.integration.killswitch.support import in_thread, order_kwargs
from tests.pg import lockable_elsewhere, requires_postgres
from tradingstate.actors import Actor
from tradingstate.errors import TradingHalted
from tradingstate.models import Order

ACTOR = Actor.system("test")


def _waiting_backends() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # a transaction caches the view
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def _wait_until_blocked(thread: threading.Thread, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _waiting_backends():
            return
        assert thread.is_alive(), "the registration finished without waiting on the halt"
        time.sleep(0.01)
    raise AssertionError("the registration never waited on the halt")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_halt_creating_the_global_row_and_a_registration_do_not_deadlock():
    # given an account whose global switch row is missing (deleted behind the ORM's back)
    account = AccountFactory(name="rowless-global")
    KillSwitch.objects.filter(account__isnull=True).delete()
    results: dict = {}
    with transaction.atomic():
        # when a halt of the account creates and locks the global row (not yet committed),
        killswitch_row_ensure(account=None)
        KillSwitch.objects.select_for_update().get(account__isnull=True)
        # a registration runs meanwhile and waits on the halt's global row,
        reg = in_thread(
            lambda: order_register_guarded(**order_kwargs(account, "during")), results, "reg"
        )
        _wait_until_blocked(reg)
        # and the halt then locks the account's row (FOR UPDATE) and commits
        result = killswitch_activate(reason="halt, row was missing", actor=ACTOR, account=account)
    reg.join(15)
    # then neither deadlocked: the halt is in, and the registration was refused by it
    assert result.changed
    assert isinstance(results["reg"], TradingHalted), results["reg"]
    assert results["reg"].extra["scope"] == "account"
    assert not Order.objects.filter(client_order_id="during").exists()
    assert KillSwitch.objects.filter(account__isnull=True).count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_guard_holds_no_row_lock_while_it_creates_a_missing_row(monkeypatch):
    # given an account with its row and no global row
    account = AccountFactory(name="rowless-global-2")
    KillSwitch.objects.filter(account__isnull=True).delete()
    locked_while_creating: list[bool] = []
    real_ensure = services.killswitch_row_ensure

    def spy(*, account):
        # may another connection take the rows this transaction has read, right now?
        locked_while_creating.append(not lockable_elsewhere(KillSwitch))
        real_ensure(account=account)

    monkeypatch.setattr(services, "killswitch_row_ensure", spy)
    with transaction.atomic():
        decision = trading_allowed(account, lock=True)
    # then the row was created, the decision read both rows, and no lock was held meanwhile
    assert decision.allowed
    assert KillSwitch.objects.filter(account__isnull=True).count() == 1
    assert locked_while_creating and not any(locked_while_creating), locked_while_creating
