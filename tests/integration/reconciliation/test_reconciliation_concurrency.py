"""Two passes of one account at once: one runs, the other is recorded as skipped."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from reconciliation.locks import file_lock
from reconciliation.models import ReconciliationRun, Repair
from reconciliation.services import run_reconciliation
from tests.factories import AccountFactory, OrderFactory, PositionFactory
from tests.fakes.memory import MemoryExchange
from tests.pg import requires_postgres
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, Order


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_second_concurrent_pass_is_skipped_no_duplicate_repairs():
    # given: a drifted account and a venue that holds the first pass inside its fetch
    account = AccountFactory(name="race")
    OrderFactory(account=account, client_order_id="gone", status="submitted")
    Order.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    PositionFactory(account=account, symbol="BTC/USDT", qty=Decimal("1"))
    slow = MemoryExchange(gate=threading.Event())
    slow.set_position("BTC/USDT", "2")
    # "gone" from the open orders: the venue cancelled it (one pass proves it, issue 14)
    slow.add_order(symbol="BTC/USDT", amount=Decimal(1), exchange_order_id="X-gone",
                   client_order_id="gone", status=ex.CANCELED)  # fmt: skip
    fast = MemoryExchange()
    fast.set_position("BTC/USDT", "2")
    results = {}

    def first():
        try:
            results["first"] = run_reconciliation(account.pk, "schedule", adapter=slow)
        finally:
            connection.close()

    # when: the second pass starts while the first holds the lock
    t = threading.Thread(target=first)
    t.start()
    for _ in range(100):
        if "fetch_open_orders" in slow.calls:
            break
        threading.Event().wait(0.05)
    results["second"] = run_reconciliation(account.pk, "schedule", adapter=fast)
    slow.gate.set()
    t.join(30)

    # then
    assert results["second"].status == "skipped"
    assert results["first"].status == "completed"
    assert results["first"].repairs_applied == 2
    assert fast.calls == []  # the skipped pass never even asked the exchange
    assert Repair.objects.count() == 2
    assert AuditEntry.objects.filter(action="repair.apply").count() == 2
    assert ReconciliationRun.objects.filter(status="skipped").count() == 1


def test_file_lock_excludes_a_second_holder(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    with file_lock("account-1") as first:
        with file_lock("account-1") as second:
            assert first and not second
        with file_lock("account-2") as other:
            assert other
    with file_lock("account-1") as again:
        assert again


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_one_ticker_leads_at_a_time():
    from reconciliation.ticker import Leadership

    held, release, released = threading.Event(), threading.Event(), threading.Event()

    def other_host():
        leader = Leadership()
        try:
            assert leader.try_acquire()
            held.set()
            release.wait(10)
            leader.release()
            released.set()
        finally:
            connection.close()

    t = threading.Thread(target=other_host)
    t.start()
    assert held.wait(10)
    me = Leadership()
    assert not me.try_acquire()  # the other host leads
    release.set()
    assert released.wait(10)
    assert me.try_acquire()  # and once it lets go, we take over
    me.release()
    t.join(10)


def test_file_lock_is_per_database(settings, tmp_path, monkeypatch):
    # given: this database holds account 1's lock file
    from django.db import connection

    settings.DATA_DIR = tmp_path
    with file_lock("account-1") as first:
        assert first
        # when: another database in the same data directory (a second tradingstate, or
        # another test worker) asks for its own account 1
        monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "other.sqlite3"))
        with file_lock("account-1") as other_database:
            # then: it is not blocked by a lock that is not its own
            assert other_database


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_pass_lease_is_per_database_not_per_server(monkeypatch):
    # given: another tradingstate database on the same PostgreSQL server holds the lease of
    # its account 1 (advisory locks are server-wide)
    import psycopg
    from django.db import connection

    from reconciliation.locks import account_pass_lease, lock_key

    own_name = connection.settings_dict["NAME"]
    monkeypatch.setitem(connection.settings_dict, "NAME", f"{own_name}_staging")
    foreign_key = lock_key("account:1")
    monkeypatch.setitem(connection.settings_dict, "NAME", own_name)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [foreign_key])
        # when: this database's pass for its account 1 takes its lease
        with account_pass_lease(1) as acquired:
            # then: it holds it; the other database's lock is not this one's
            assert acquired
