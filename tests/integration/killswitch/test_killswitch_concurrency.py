"""The guard against real concurrency and a real database failure.

PostgreSQL: registration and activation in separate threads (each with its own connection,
real transactions). Both backends: the database really unreachable.
"""

import threading
import time

import psycopg
import pytest
from django.db import OperationalError, connection, transaction

from killswitch import services
from killswitch.models import KillSwitch
from killswitch.services import (
    killswitch_activate,
    order_register_guarded,
    trading_allowed,
)
from tests.factories import AccountFactory
from tests.integration.killswitch.support import in_thread, order_kwargs
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.errors import TradingHalted
from tradingstate.models import Order

REASON = "Manual position correction in progress"
ACTOR = Actor.system("test")


@pytest.fixture
def pg_account(transactional_db):
    KillSwitch.objects.get_or_create(account=None)
    return AccountFactory(name="conc-acct")


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_activation_waits_for_inflight_registration(pg_account, monkeypatch):
    # given a registration whose guard has run and whose transaction has not committed yet
    # (in a caller's transaction, so the window between the guarded insert and the commit
    # is wide enough to act in; in autocommit it is the statement itself)
    guard_passed, release = threading.Event(), threading.Event()
    real_register = services.order_register

    def slow_register(**kwargs):
        result = real_register(**kwargs)  # the guard's share locks are held until commit
        guard_passed.set()
        assert release.wait(10)
        return result

    def register_in_transaction():
        with transaction.atomic():
            return order_register_guarded(**order_kwargs(pg_account, "inflight"))

    monkeypatch.setattr(services, "order_register", slow_register)
    results = {}
    reg = in_thread(register_in_transaction, results, "reg")
    assert guard_passed.wait(10)
    # when the switch is activated meanwhile
    act = in_thread(lambda: killswitch_activate(reason=REASON, actor=ACTOR), results, "act")
    time.sleep(0.5)
    # then the activation waits for the registration's transaction (FOR SHARE vs FOR UPDATE)
    assert act.is_alive() and "act" not in results
    release.set()
    reg.join(10)
    act.join(10)
    _order, created = results["reg"]
    assert created and Order.objects.filter(client_order_id="inflight").exists()
    assert results["act"].changed
    # and once activation has returned, no order gets in
    monkeypatch.setattr(services, "order_register", real_register)
    with pytest.raises(TradingHalted):
        order_register_guarded(**order_kwargs(pg_account, "after"))
    assert not Order.objects.filter(client_order_id="after").exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_registration_waits_for_uncommitted_activation_then_is_refused(pg_account, monkeypatch):
    # given an activation that has changed the row but not committed yet
    activated, commit = threading.Event(), threading.Event()
    real_audit = services.killswitch_switched

    def slow_audit(**kwargs):
        entry = real_audit(**kwargs)
        activated.set()
        assert commit.wait(10)
        return entry

    monkeypatch.setattr(services, "killswitch_switched", slow_audit)
    results = {}
    act = in_thread(lambda: killswitch_activate(reason=REASON, actor=ACTOR), results, "act")
    assert activated.wait(10)
    # when a registration starts
    reg = in_thread(
        lambda: order_register_guarded(**order_kwargs(pg_account, "racer")), results, "reg"
    )
    time.sleep(0.5)
    # then it waits on the row lock rather than reading the old state
    assert reg.is_alive()
    commit.set()
    act.join(10)
    reg.join(10)
    assert results["act"].changed
    assert isinstance(results["reg"], TradingHalted), results["reg"]
    assert not Order.objects.filter(client_order_id="racer").exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_no_order_commits_after_activation_returns(pg_account):
    # given bots registering orders as fast as they can
    stop = threading.Event()
    counter = iter(range(1_000_000))
    results = {}

    def hammer(n):
        def run():
            accepted = refused = 0
            while not stop.is_set():
                try:
                    order_register_guarded(**order_kwargs(pg_account, f"b{n}-{next(counter)}"))
                    accepted += 1
                except TradingHalted:
                    refused += 1
            return accepted, refused

        return run

    threads = [in_thread(hammer(n), results, n) for n in range(4)]
    time.sleep(0.5)
    # when the switch is activated
    killswitch_activate(reason=REASON, actor=ACTOR)
    count_at_activation = Order.objects.count()
    time.sleep(0.5)
    stop.set()
    for t in threads:
        t.join(10)
    # then every order accepted had committed before the activation returned
    assert all(isinstance(r, tuple) for r in results.values()), results
    assert count_at_activation > 0
    assert sum(r[1] for r in results.values()) > 0
    assert Order.objects.count() == count_at_activation


# --- a real database failure -----------------------------------------------------------------
@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_guard_fails_closed_when_database_unreachable(caplog):
    # given the database moved away: a fresh connection hits a closed port
    account = AccountFactory(name="db-down")
    settings_dict = connection.settings_dict
    saved = dict(settings_dict)
    connection.close()
    settings_dict.update(HOST="127.0.0.1", PORT="1")
    try:
        # when
        decision = trading_allowed(account)
    finally:
        connection.close()
        settings_dict.clear()
        settings_dict.update(saved)
    # then
    assert not decision.allowed and decision.scope == "unavailable"
    assert decision.reason.startswith("kill switch state unavailable: ")
    assert "unavailable" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_guard_fails_closed_when_state_table_is_gone():
    # given a real database error on the state table (both backends)
    account = AccountFactory(name="no-table")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE killswitch_killswitch RENAME TO killswitch_moved")
    try:
        # when
        decision = trading_allowed(account)
        with pytest.raises(TradingHalted):
            order_register_guarded(**order_kwargs(account, "no-table"))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE killswitch_moved RENAME TO killswitch_killswitch")
    # then
    assert not decision.allowed and decision.scope == "unavailable"
    assert not Order.objects.filter(client_order_id="no-table").exists()


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_guard_fails_closed_when_backend_is_terminated(pg_account):
    # given the server killed our session (failover, admin, OOM)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.pop("prepare_threshold", None)
    with psycopg.connect(**params, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    try:
        # when
        decision = trading_allowed(pg_account)
        # the broken session fails as soon as the transaction opens, or at the guard
        with pytest.raises((TradingHalted, OperationalError)):
            order_register_guarded(**order_kwargs(pg_account, "after-kill"))
    finally:
        connection.close()
    # then
    assert not decision.allowed and decision.scope == "unavailable"
    assert not Order.objects.filter(client_order_id="after-kill").exists()
