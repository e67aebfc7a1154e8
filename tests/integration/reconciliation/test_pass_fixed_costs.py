"""A pass's fixed costs: its fixed-shape reads compiled once (tradingstate.db.compiled),
returning what the ORM returns; its run row written once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation import selectors
from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.passes import run_reconciliation
from tests.counting import compiles
from tests.factories import AccountFactory, BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.memory import MemoryExchange
from tests.pg import requires_postgres
from tradingstate.db.compiled import CompiledRead
from tradingstate.models import ExchangeAccount, Instrument, Position


def _world():
    # given: an account with every kind of row, and another account's rows beside it
    account = AccountFactory(
        name="compiled",
        balance_tolerances={"USDT": "0.5"},
        ccxt_options={"options": {"x": [1, 2.5, None]}},
        balance_tolerance=Decimal("0.000000000000000001"),
        fills_watermark_at=timezone.now() - timedelta(minutes=3),
    )
    other = AccountFactory(name="compiled-other")
    for of in (account, other):
        OrderFactory(account=of, status="submitted", price=Decimal("12345678901234567890.5"))
        OrderFactory(account=of, status="filled", filled_qty=Decimal(1))
        PositionFactory(account=of, symbol="ETH/USDT", qty=Decimal("-0.000000000000000001"))
        BalanceFactory(account=of, currency="BTC", total=Decimal("3.25"))
        Instrument.objects.create(
            account=of, symbol="ETH/USDT", base="ETH", quote="USDT", amount_step=Decimal("0.001")
        )
    old = ReconciliationRun.objects.create(account=account, trigger="manual", status="completed")
    run = ReconciliationRun.objects.create(account=account, trigger="manual", status="completed")
    for r, key in ((old, "a"), (run, "b")):
        Discrepancy.objects.create(
            run=r,
            account=account,
            type="stale_local_order",
            entity="orders",
            key=key,
            exchange_value={"not_found_passes": 2, "not_found_at": "2026-01-01T00:00:00+00:00"},
            consecutive_runs=3,
        )
    return account, other, run


@pytest.mark.django_db
def test_compiled_reads_return_what_the_orm_returns():
    account, other, run = _world()
    # when / then: each read as the ORM reads it, the other account's rows left out
    fresh = selectors.account_for_pass(account.pk)
    orm = ExchangeAccount.objects.get(pk=account.pk)
    for field in ExchangeAccount._meta.concrete_fields:
        assert getattr(fresh, field.attname) == getattr(orm, field.attname), field.name
        assert type(getattr(fresh, field.attname)) is type(getattr(orm, field.attname))
    assert fresh.balance_tolerances == {"USDT": "0.5"}
    assert fresh._state.adding is False and fresh._state.db == "default"

    positions, balances = selectors.local_books(account=account)
    assert [(p.symbol, p.qty) for p in positions] == [
        ("ETH/USDT", Decimal("-0.000000000000000001"))
    ]
    assert [(b.currency, b.free, b.total) for b in balances] == [
        ("BTC", Decimal("3.25"), Decimal("3.25"))
    ]
    assert positions[0].version == Position.objects.get(account=account).version

    local = selectors.local_snapshot(account=account, exchange_orders=[], books=(positions, []))
    assert [(o.status, o.price) for o in local.orders] == [
        ("submitted", Decimal("12345678901234567890.5"))
    ]

    assert selectors.instrument_terms(account=account) == {
        "ETH/USDT": (Decimal("0.001"), "ETH", "USDT", "")
    }
    assert selectors.previous_run_findings(account=account) == {
        ("stale_local_order", "b"): (
            3,
            {"not_found_passes": 2, "not_found_at": "2026-01-01T00:00:00+00:00"},
        )
    }
    assert selectors.previous_run_findings(account=other) == {}
    open_elsewhere = selectors.discrepancies_open_before(account=account, run_id=run.pk)
    assert [(typ, key) for _pk, typ, key, _entity in open_elsewhere] == [("stale_local_order", "a")]


@pytest.mark.django_db
def test_a_missing_account_is_does_not_exist():
    with pytest.raises(ExchangeAccount.DoesNotExist):
        selectors.account_for_pass(987654321)
    with pytest.raises(ExchangeAccount.DoesNotExist):
        run_reconciliation(987654321, "manual", adapter=MemoryExchange())


@pytest.mark.django_db
def test_an_id_that_does_not_reach_the_statement_as_itself_is_refused():
    # an id turned into a LIKE pattern is not a parameter of its own: substituting it would
    # be wrong, so compiling refuses
    read = CompiledRead(lambda pk: Position.objects.filter(symbol__startswith=str(pk)))
    with pytest.raises(ValueError, match="did not reach the statement"):
        read.statement(1)


@requires_postgres
@pytest.mark.django_db
def test_a_steady_pass_compiles_few_statements(monkeypatch):
    """A pass that finds nothing compiles only its writes and reads whose shape varies: the
    fixed reads (account, positions, balances, active orders, instruments, previous
    findings, open discrepancies) reuse their compiled text."""
    # given: a pass run already (the compiled reads are compiled)
    account = AccountFactory(name="compiled-once")
    venue = MemoryExchange()
    venue.set_balance("USDT", "5")
    BalanceFactory(account=account, currency="USDT", total=Decimal(5))
    run_reconciliation(account.pk, "manual", adapter=venue)
    compiled = compiles(monkeypatch)
    # when: the next passes (by id and by instance)
    run = run_reconciliation(account.pk, "manual", adapter=venue)
    by_id = list(compiled)
    run_reconciliation(account, "manual", adapter=venue)
    # then: the passes did their work, and compiled only the statements that vary
    assert run.status == "completed" and run.discrepancies_found == 0
    assert run.balances_synced == 1
    for model in ("Position", "Balance", "Instrument", "Discrepancy", "Order", "NotificationState"):
        assert model not in by_id, by_id
    assert by_id.count("ExchangeAccount") == 1, by_id  # its update; read compiled
    assert len(by_id) <= STEADY_PASS_COMPILES, by_id
    assert len(compiled) - len(by_id) <= STEADY_PASS_COMPILES


# the run's insert, the account's update
STEADY_PASS_COMPILES = 2


@requires_postgres
@pytest.mark.django_db
def test_a_new_run_row_is_inserted_once_at_the_end_with_its_reserved_id():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # given: an account whose pass finds and repairs a discrepancy (rows naming the run are
    # written before the run's row)
    account = AccountFactory(name="run-once")
    venue = MemoryExchange()
    venue.set_balance("USDT", "5")
    # when
    with CaptureQueriesContext(connection) as ctx:
        run = run_reconciliation(account.pk, "manual", adapter=venue)
    # then: one statement writes the run row, an INSERT with the id taken with the lease
    run_writes = [
        q["sql"]
        for q in ctx.captured_queries
        if q["sql"].startswith(("INSERT", "UPDATE", "COPY"))
        and "reconciliation_reconciliationrun" in q["sql"].split("(")[0]
    ]
    assert len(run_writes) == 1 and run_writes[0].startswith("INSERT"), run_writes
    assert f"{run.pk}" in run_writes[0]
    stored = ReconciliationRun.objects.get(pk=run.pk)
    assert (stored.status, stored.discrepancies_found, stored.repairs_applied) == (
        "completed",
        1,
        1,
    )
    assert stored.finished_at is not None and stored.created_at is not None
    assert Discrepancy.objects.get(run=run).status == "repaired"


@pytest.mark.django_db
@pytest.mark.parametrize("named_by", ["exid", "coid", "both", "none"])
def test_fill_orders_compiled_for_each_shape_of_the_trades(named_by):
    from reconciliation.selectors import ORDER_FIELDS, local_fill_orders
    from tests.integration.reconciliation.test_pass_reads import _trade
    from tradingstate.models import Order

    # given: an order short of its fills, two the trades may name, one of another account
    account = AccountFactory(name=f"fill-orders-{named_by}")
    short = OrderFactory(account=account, status="filled", filled_qty=Decimal(1))
    by_exid = OrderFactory(account=account, exchange_order_id="X9", status="filled")
    by_coid = OrderFactory(account=account, client_order_id="named-9", status="filled")
    OrderFactory(account=AccountFactory(name=f"fo-other-{named_by}"), filled_qty=Decimal(1))
    trades = {
        "exid": [_trade(exid="X9")],
        "coid": [_trade(coid="named-9")],
        "both": [_trade(exid="X9"), _trade(coid="named-9"), _trade(exid="nobody")],
        "none": [],
    }[named_by]
    # when: twice (compiled on the first call)
    first = local_fill_orders(account=account, trades=trades, known=set())
    again = local_fill_orders(account=account, trades=trades, known={short.pk})
    # then: the orders the ORM finds, as it reads them
    wanted = {short.pk}
    wanted |= {by_exid.pk} if named_by in ("exid", "both") else set()
    wanted |= {by_coid.pk} if named_by in ("coid", "both") else set()
    assert {o.id for o in first} == wanted
    assert {o.id for o in again} == wanted - {short.pk}
    orm = Order.objects.filter(pk__in=wanted).values_list(*ORDER_FIELDS)
    assert ORDER_FIELDS[0] == "id"
    orm = {row[0]: row[1:] for row in orm}
    assert {o.id: tuple(o)[1:] for o in first} == orm


@pytest.mark.django_db
def test_alerting_keys_compiled_match_the_account_name_literally():
    from django.utils import timezone as tz

    from reconciliation.alerts import DESYNC, REPAIR_FAILED, _alerting_keys
    from tradingstate.models import NotificationState

    # given: alert states of "a_b", and of "axb" and "a%b" (which a LIKE pattern built from
    # "a_b" unescaped would match)
    now = tz.now()
    for event, key, state in [
        (DESYNC, "a_b:stale_local_order:c1", "open"),
        (DESYNC, "a_b:missing_local_order:c2", "closed"),
        (REPAIR_FAILED, "a_b:balance_mismatch:USDT", "failed"),
        (DESYNC, "axb:stale_local_order:c1", "open"),
        (REPAIR_FAILED, "a%b:balance_mismatch:USDT", "failed"),
    ]:
        NotificationState.objects.create(event=event, key=key, state=state, changed_at=now)
    account = AccountFactory(name="a_b")
    # when: twice (compiled on the first call)
    first, again = _alerting_keys(account), _alerting_keys(account)
    # then: only "a_b"'s open and failed ones
    assert (
        first
        == again
        == {
            DESYNC: {"a_b:stale_local_order:c1"},
            REPAIR_FAILED: {"a_b:balance_mismatch:USDT"},
        }
    )
    assert _alerting_keys(AccountFactory(name="axb")) == {
        DESYNC: {"axb:stale_local_order:c1"},
        REPAIR_FAILED: set(),
    }


@requires_postgres
@pytest.mark.django_db
def test_a_queued_pass_reads_and_writes_its_run_row_without_compiling(monkeypatch):
    """The ticker's passes run queued runs (``batch.pass_run_queued``): the run's state and
    its account's, the run row, and the run row's update reuse their statement text."""
    from reconciliation.passes.batch import pass_run_queued

    # given: a paper account that had a pass, and a queued run the ticker made for it
    account = AccountFactory(name="queued-once")
    first = ReconciliationRun.objects.create(account=account, trigger="schedule", status="queued")
    assert pass_run_queued(account.pk, "schedule", first.pk) == f"run {first.pk} completed"
    queued = ReconciliationRun.objects.create(
        account=account, trigger="schedule", status="queued", requested_by="ticker"
    )
    compiled = compiles(monkeypatch)
    # when: the worker runs it
    line = pass_run_queued(account.pk, "schedule", queued.pk)
    # then: it ran, and of the pass's own statements only the account's update was compiled
    # (the paper venue's reads of its simulated book stand for a venue's HTTP calls)
    assert line == f"run {queued.pk} completed"
    ours = [model for model in compiled if not model.startswith("Paper")]
    assert ours == ["ExchangeAccount"], compiled


@pytest.mark.django_db
def test_a_queued_run_row_gets_the_pass_and_keeps_who_asked_and_when():
    from reconciliation.passes.batch import pass_run_queued

    # given: a staff member's queued dry run of an account with a stray local balance
    account = AccountFactory(name="queued-row")
    BalanceFactory(account=account, currency="BTC", total=Decimal(2))
    queued = ReconciliationRun.objects.create(
        account=account, trigger="manual", status="queued", dry_run=True, requested_by="alice"
    )
    created = queued.created_at
    # when: a worker runs it
    assert pass_run_queued(account.pk, "manual", queued.pk) == f"run {queued.pk} completed"
    # then: the row has the pass's outcome, and who asked for it, how and when as they were
    run = ReconciliationRun.objects.get(pk=queued.pk)
    assert (run.status, run.trigger, run.requested_by, run.dry_run) == (
        "completed", "manual", "alice", True,
    )  # fmt: skip
    assert run.created_at == created
    assert run.started_at is not None and run.finished_at >= run.started_at
    assert run.duration_ms is not None
    assert run.discrepancies_found == run.balance_discrepancies == 1
    assert run.repairs_applied == 0  # a dry run repairs nothing
    assert account.balances.get(currency="BTC").total == Decimal(2)
    assert ReconciliationRun.objects.filter(account=account).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("state", ["missing", "disabled", "finished", "other-account"])
def test_a_queued_pass_that_must_not_run_says_why(state):
    from reconciliation.passes.batch import MISSING_OR_DISABLED, pass_run_queued

    account = AccountFactory(name=f"queued-{state}")
    other = AccountFactory(name=f"queued-{state}-other", enabled=state != "other-account")
    run = ReconciliationRun.objects.create(account=account, trigger="schedule", status="queued")
    if state == "disabled":
        ExchangeAccount.objects.filter(pk=account.pk).update(enabled=False)
    if state == "finished":
        ReconciliationRun.objects.filter(pk=run.pk).update(status="completed")
    account_id = {"missing": 987654321, "other-account": other.pk}.get(state, account.pk)
    line = pass_run_queued(account_id, "schedule", run.pk)
    if state == "finished":
        assert line == f"run {run.pk} already completed"
    else:
        # a disabled account, a missing one, or a run naming another account than the
        # (disabled) one asked for: nothing runs
        assert line == MISSING_OR_DISABLED
    assert ReconciliationRun.objects.filter(account=account).count() == 1
    assert ReconciliationRun.objects.get(pk=run.pk).status == (
        "completed" if state == "finished" else "queued"
    )
