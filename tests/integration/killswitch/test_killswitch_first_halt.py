"""D1 (issue 13): an order is never accepted after an account's first halt commits.

The order guard share-locks the global row and the account's row. Before, an account's row
was INSERTed by its first halt: a registration waiting on the global row woke up with a
snapshot that predated the new row, read "not halted" and committed an order after the halt.
Now every account has its row from creation, so the guard waits on it and re-reads it.
"""

import threading
import time

import pytest

from killswitch import services
from killswitch.models import KillSwitch
from killswitch.services import killswitch_activate, order_register_guarded
from tests.factories import AccountFactory
from tests.integration.killswitch.support import in_thread, order_kwargs
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.errors import TradingHalted
from tradingstate.models import Order
from tradingstate.services.accounts import account_upsert

REASON = "first halt of this account"
ACTOR = Actor.system("test")


@pytest.mark.django_db
def test_every_account_has_its_switch_row_from_creation():
    # when accounts are created by the factory (objects.create) and by the service
    made = AccountFactory(name="made")
    upserted = account_upsert(
        name="upserted", values={"exchange": "paper"}, actor=ACTOR, reason="test"
    )
    # then each has one inactive row, before any halt
    for account in (made, upserted):
        row = KillSwitch.objects.get(account=account)
        assert not row.active and row.reason == ""


@pytest.mark.django_db
def test_guard_creates_a_missing_row_before_it_reads():
    # given an account whose row was removed behind the ORM's back
    account = AccountFactory(name="rowless")
    KillSwitch.objects.filter(account=account).delete()
    # when a guarded registration runs
    order_register_guarded(**order_kwargs(account, "o1"))
    # then the guard made the row it share-locks
    assert KillSwitch.objects.filter(account=account, active=False).count() == 1


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_registration_during_an_accounts_first_halt_is_refused(monkeypatch):
    # given an account never halted, and its first halt changed but not committed
    KillSwitch.objects.get_or_create(account=None)
    account = AccountFactory(name="first-halt")
    activated, commit = threading.Event(), threading.Event()
    real_audit = services.killswitch_switched

    def slow_audit(**kwargs):
        entry = real_audit(**kwargs)
        activated.set()
        assert commit.wait(10)
        return entry

    monkeypatch.setattr(services, "killswitch_switched", slow_audit)
    results = {}
    act = in_thread(
        lambda: killswitch_activate(reason=REASON, actor=ACTOR, account=account), results, "act"
    )
    assert activated.wait(10)
    # when a registration for that account starts meanwhile
    reg = in_thread(
        lambda: order_register_guarded(**order_kwargs(account, "racer")), results, "reg"
    )
    time.sleep(0.5)
    assert reg.is_alive()  # it waits on the switch rows
    commit.set()
    act.join(10)
    reg.join(10)
    # then it is refused: nothing commits after the halt commits
    assert results["act"].changed
    assert isinstance(results["reg"], TradingHalted), results["reg"]
    assert results["reg"].extra.get("scope") == "account"
    assert not Order.objects.filter(client_order_id="racer").exists()
