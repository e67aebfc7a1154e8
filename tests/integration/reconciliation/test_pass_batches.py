"""Many passes per worker (issue 17 point 5): the ticker hands due passes over in batches,
with set-based bookkeeping; a worker runs a batch's passes at once, each recording its own
run; a failing pass does not stop the others; a duplicate delivery runs nothing twice."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from reconciliation.models import ReconciliationRun
from reconciliation.passes import batch
from reconciliation.tasks import reconcile_accounts_task
from reconciliation.ticker import Ticker
from tests.factories import AccountFactory
from tests.fakes.exchange_server import FakeBalance
from tests.pg import requires_postgres


@pytest.fixture
def batch_of_three(settings):
    worker = settings.TRADINGSTATE.worker.model_copy(update={"passes_per_worker": 3})
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(update={"worker": worker})


@pytest.fixture
def pass_threads_close_connections(monkeypatch):
    # the worker's pass threads keep their connections between passes (CONN_MAX_AGE); here
    # they close them after each pass, so none outlives the test database
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def _ticker(sent):
    return Ticker(enqueue_batch=sent.append, clock=Clock())


@pytest.mark.django_db
def test_the_ticker_hands_due_passes_over_in_batches(batch_of_three):
    # given: seven enabled accounts, batches of three
    accounts = [AccountFactory(name=f"acc-{i}") for i in range(7)]
    sent: list[list] = []
    # when: the first tick (every account's startup pass is due)
    _ticker(sent).tick()
    # then: 3 + 3 + 1, each pass with its own queued run row
    assert [len(b) for b in sent] == [3, 3, 1]
    passes = [p for b in sent for p in b]
    assert sorted(p[0] for p in passes) == sorted(a.pk for a in accounts)
    runs = ReconciliationRun.objects.in_bulk([p[2] for p in passes])
    assert {(r.account_id, r.status, r.trigger) for r in runs.values()} == {
        (a.pk, "queued", "startup") for a in accounts
    }


@pytest.mark.django_db
def test_a_ticks_bookkeeping_does_not_grow_with_the_accounts_due(batch_of_three):
    # given: 3 accounts due, then 30 more
    def queries_of_first_tick():
        ticker = _ticker([])
        ticker._last_beat = ticker.clock()  # the heartbeat is not part of this
        with CaptureQueriesContext(connection) as ctx:
            ticker.tick()
        return len(ctx.captured_queries)

    for i in range(3):
        AccountFactory(name=f"few-{i}")
    few = queries_of_first_tick()
    ReconciliationRun.objects.all().delete()
    for i in range(30):
        AccountFactory(name=f"many-{i}")
    # when / then: as many statements for 33 accounts as for 3
    assert queries_of_first_tick() == few <= 6


@pytest.mark.django_db
def test_an_account_still_queued_gets_no_second_run(batch_of_three):
    # given: a tick queued a pass that no worker has taken yet
    AccountFactory(name="slow", reconciliation_interval_seconds=5)
    sent: list[list] = []
    ticker = _ticker(sent)
    ticker.tick()
    # when: its next slot comes
    ticker.clock.now += 5.25
    ticker.tick()
    # then: nothing piles up behind the queued one
    assert [len(b) for b in sent] == [1]


@pytest.mark.django_db
def test_a_lone_due_pass_is_not_held_back(batch_of_three):
    # given: one account; its pass is due and no other falls due soon
    AccountFactory(name="alone")
    sent: list[list] = []
    # when
    _ticker(sent).tick()
    # then: handed over at once, a batch of one
    assert [len(b) for b in sent] == [1]


def _queued(account, trigger="schedule"):
    run = ReconciliationRun.objects.create(account=account, trigger=trigger)
    return [account.pk, trigger, run.pk]


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_each_pass_and_one_failing_stops_no_other(
    fake_exchange, make_fake_account, monkeypatch, pass_threads_close_connections
):
    # given: two accounts on the fake venue, one whose credential variable is not set
    fake_exchange.binance.futures_balances.append(FakeBalance("USDT", "1000"))
    good = [make_fake_account("binance", "swap", name=f"ok-{i}", save=True) for i in range(2)]
    broken = make_fake_account("binance", "swap", name="no-key", save=True)
    broken.api_key_env = "TS_TEST_UNSET_KEY"
    broken.save()
    monkeypatch.delenv("TS_TEST_UNSET_KEY", raising=False)
    passes = [_queued(good[0]), _queued(broken), _queued(good[1])]
    # when: a worker takes the batch
    line = reconcile_accounts_task(passes)
    assert batch.passes_drain(60)
    # then: every pass ran on its own and recorded its own run
    assert line == "started 3 passes"
    runs = ReconciliationRun.objects.in_bulk([p[2] for p in passes])
    statuses = [runs[p[2]].status for p in passes]
    assert statuses == ["completed", "failed", "completed"], [r.error for r in runs.values()]
    assert ReconciliationRun.objects.count() == 3  # no run but the queued ones


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_delivered_twice_runs_nothing_twice(
    fake_exchange, make_fake_account, pass_threads_close_connections
):
    # given: a batch that already ran
    fake_exchange.binance.futures_balances.append(FakeBalance("USDT", "1000"))
    accounts = [make_fake_account("binance", "swap", name=f"dup-{i}", save=True) for i in range(2)]
    passes = [_queued(a) for a in accounts]
    first = batch.passes_run_batch(passes)
    # when: django-q2 delivers it again
    again = batch.passes_run_batch(passes)
    # then
    assert all(line.endswith("completed") for line in first), first
    assert again == [f"run {p[2]} already completed" for p in passes]
    assert ReconciliationRun.objects.count() == 2


@pytest.mark.django_db
def test_slots_spread_over_the_interval_without_leaving_the_cadence_budget(batch_of_three):
    # given: ten accounts, all due at startup (the same tick), every 15 s
    accounts = [
        AccountFactory(name=f"acc-{i}", reconciliation_interval_seconds=15) for i in range(10)
    ]
    sent: list[list] = []
    clock = Clock()
    ticker = Ticker(enqueue_batch=sent.append, clock=clock)
    starts: dict[int, list[float]] = {a.pk: [] for a in accounts}
    # when: the ticker runs for 40 intervals, every pass finishing at once
    for _ in range(int(40 * 15 / 0.25)):
        before = sum(len(b) for b in sent)
        ticker.tick()
        handed = [p for b in sent for p in b][before:]
        for account_id, _trigger, run_id in handed:
            starts[account_id].append(clock.now)
            ReconciliationRun.objects.filter(pk=run_id).update(status="completed")
        clock.now += 0.25
    # then: every interval stays within 15 ± 2 s (the slot moves at most 0.75 s at a time)
    gaps = [b - a for s in starts.values() for a, b in itertools.pairwise(s)]
    assert gaps and all(13 <= g <= 17 for g in gaps), sorted(gaps)[-3:]
    # and the accounts end spread over the interval, not all in one tick
    phases = sorted(round(s[-1] % 15, 2) for s in starts.values())
    assert len(set(phases)) == len(accounts)
    assert max(b - a for a, b in itertools.pairwise(phases)) <= 2.5


# --- no free pass thread within half the task timeout --------------------------------------
@pytest.fixture
def one_pass_thread(settings):
    """A worker with one pass thread and a 4 s task timeout: a pass waits at most 2 s for a
    thread. The pass threads are started anew with that size (and again after the test)."""
    worker = settings.TRADINGSTATE.worker.model_copy(
        update={"passes_per_worker": 1, "task_timeout_seconds": 4}
    )
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(update={"worker": worker})
    batch.pass_threads_close()
    yield 2.0
    batch.pass_threads_close()


class BalanceLock:
    """A concurrent transaction holding an account's balance rows ``FOR UPDATE``: that
    account's pass waits at its repair's row lock (a real lock wait, on its pass thread)
    until ``release``."""

    def __init__(self, account):
        import psycopg

        s = connection.settings_dict
        self.conn = psycopg.connect(
            dbname=s["NAME"],
            host=s["HOST"] or None,
            port=s["PORT"] or None,
            user=s["USER"] or None,
            password=s["PASSWORD"] or None,
        )
        self.conn.execute(
            "SELECT id FROM tradingstate_balance WHERE account_id = %s FOR UPDATE", [account.pk]
        )

    def release(self):
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()


@pytest.fixture
def desynced_accounts(fake_exchange, make_fake_account):
    """Accounts whose passes repair their USDT balance (900 locally, 1000 on the venue)."""
    from tradingstate.models import Balance

    fake_exchange.binance.futures_balances.append(FakeBalance("USDT", "1000"))

    def make(name, **fields):
        account = make_fake_account("binance", "swap", name=name, save=True, **fields)
        Balance.objects.create(account=account, currency="USDT", free=900, total=900)
        return account

    return make


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_batch_waits_for_threads_at_most_half_the_task_timeout_in_all(
    desynced_accounts, one_pass_thread, pass_threads_close_connections, caplog
):
    # given: the worker's one pass thread is busy with a pass that ends after 1 s
    patience = one_pass_thread
    first, second, third = (desynced_accounts(n) for n in ("first", "second", "third"))
    first_lock, second_lock = BalanceLock(first), BalanceLock(second)
    locks = [first_lock, second_lock]
    try:
        assert reconcile_accounts_task([_queued(first)]) == "started 1 passes"
        release = threading.Timer(patience / 2, first_lock.release)
        release.start()
        # when: a batch of two arrives; its first pass gets the thread after 1 s and holds
        # it (its rows are locked), so its second pass finds no thread
        started = time.monotonic()
        passes = [_queued(second), _queued(third)]
        line = reconcile_accounts_task(passes)
        waited = time.monotonic() - started
        release.join()
    finally:
        for lock in locks:
            lock.release()
    assert batch.passes_drain(60)
    # then: the task returned within half the task timeout from its start (not half the
    # timeout per pass: a batch of 32 would keep the worker for 32 half-timeouts, past
    # django-q2's timeout, which kills the worker with its passes running)
    assert line == "started 1 passes"
    assert waited < patience + 0.5, waited
    runs = ReconciliationRun.objects.in_bulk([p[2] for p in passes])
    assert runs[passes[0][2]].status == "completed", runs[passes[0][2]].error
    left = runs[passes[1][2]]
    assert (left.status, left.error) == ("failed", batch.NO_FREE_THREAD.format(seconds=patience))
    assert left.finished_at is not None
    assert "1 passes not started: no pass thread" in caplog.text


@requires_postgres
@pytest.mark.django_db(transaction=True)
def test_a_pass_with_no_free_thread_is_recorded_failed_and_runs_at_the_next_slot(
    desynced_accounts, one_pass_thread, pass_threads_close_connections, caplog
):
    # given: two accounts due; the ticker hands their startup passes over, one a batch
    patience = one_pass_thread
    busy = desynced_accounts("busy", reconciliation_interval_seconds=5)
    waiting = desynced_accounts("waiting", reconciliation_interval_seconds=5)
    sent: list[list] = []
    clock = Clock()
    ticker = Ticker(enqueue_batch=sent.append, clock=clock)
    ticker.tick()
    by_account = {b[0][0]: b for b in sent}
    assert [len(b) for b in sent] == [1, 1]
    lock = BalanceLock(busy)
    try:
        # the busy account's pass holds the worker's only thread (its rows are locked)
        assert reconcile_accounts_task(by_account[busy.pk]) == "started 1 passes"
        # when: the other batch finds no free thread within half the task timeout
        started = time.monotonic()
        line = reconcile_accounts_task(by_account[waiting.pk])
        waited = time.monotonic() - started
    finally:
        lock.release()
    assert batch.passes_drain(60)
    # then: that pass was not started; its run says why; the worker logged it
    assert line == "started 0 passes"
    assert patience - 0.1 <= waited < patience + 0.5, waited
    run = ReconciliationRun.objects.get(pk=by_account[waiting.pk][0][2])
    assert (run.status, run.error) == ("failed", batch.NO_FREE_THREAD.format(seconds=patience))
    assert "1 passes not started: no pass thread of the worker was free" in caplog.text
    # and: at the account's next slot the ticker queues a new pass for it (a failed run is
    # not a queued one), which runs
    sent.clear()
    clock.now += 5 + 1
    ticker.tick()
    again = [p for b in sent for p in b if p[0] == waiting.pk]
    assert len(again) == 1 and again[0][2] != run.pk
    assert batch.passes_run_batch(again) == [f"run {again[0][2]} completed"]
    statuses = list(
        ReconciliationRun.objects.filter(account=waiting).order_by("pk").values_list("status")
    )
    assert statuses == [("failed",), ("completed",)]
