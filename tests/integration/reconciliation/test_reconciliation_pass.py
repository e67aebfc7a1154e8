import json
import logging
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from reconciliation.models import Discrepancy, Repair
from reconciliation.services import discrepancy_acknowledge, repair_apply, run_reconciliation
from tests.audit import assert_audited
from tests.fakes.memory import MemoryExchange
from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, Balance, ExchangeAccount, Instrument, Order, Position
from tradingstate.services import balance_set, order_register, order_transition, position_set

pytestmark = pytest.mark.django_db


def age(order_coid, seconds=300):
    Order.objects.filter(client_order_id=order_coid).update(
        updated_at=timezone.now() - timedelta(seconds=seconds)
    )


@pytest.fixture
def scenario(account, bot_actor):
    """The runbook's desync: local 0.05 vs exchange 0.08, abc123 gone, def456 unknown."""
    Instrument.objects.create(
        account=account, symbol="BTC/USDT", base="BTC", quote="USDT", amount_step=Decimal("0.001")
    )
    order_register(
        account=account,
        client_order_id="abc123",
        symbol="BTC/USDT",
        side="buy",
        quantity="0.01",
        price="60000",
        actor=bot_actor,
    )
    order_transition(
        account=account,
        client_order_id="abc123",
        to_status="submitted",
        exchange_order_id="X-abc",
        actor=bot_actor,
    )
    age("abc123")
    position_set(account=account, symbol="BTC/USDT", qty="0.05", actor=bot_actor)
    balance_set(account=account, currency="USDT", total="10000", actor=bot_actor)
    venue = MemoryExchange()
    venue.add_order(
        symbol="BTC/USDT",
        amount=Decimal("0.02"),
        exchange_order_id="X-def",
        client_order_id="def456",
        timestamp=timezone.now() - timedelta(minutes=10),
    )
    # abc123 is no longer open there: the venue cancelled it (its answer proves the end
    # state in one pass; an order it does not know at all waits stale_not_found_passes)
    venue.add_order(
        symbol="BTC/USDT",
        amount=Decimal("0.01"),
        exchange_order_id="X-abc",
        client_order_id="abc123",
        status=ex.CANCELED,
        timestamp=timezone.now() - timedelta(minutes=10),
    )
    venue.set_position("BTC/USDT", "0.08", "61000")
    venue.set_balance("USDT", "10000")
    return venue


def test_runbook_pass_repairs_and_audits(account, scenario, caplog):
    caplog.set_level(logging.INFO, logger="reconciliation")
    run = run_reconciliation(account, "manual", adapter=scenario)
    assert run.status == "completed"
    assert (run.discrepancies_found, run.repairs_applied) == (3, 3)
    assert (run.order_discrepancies, run.position_discrepancies, run.balance_discrepancies) == (
        2,
        1,
        0,
    )
    # the local state now is the exchange's truth
    assert Order.objects.get(client_order_id="abc123").status == "cancelled"
    created = Order.objects.get(client_order_id="def456")
    assert created.origin == "reconciliation" and created.status == "submitted"
    assert created.exchange_order_id == "X-def" and created.quantity == Decimal("0.02")
    assert Position.objects.get(symbol="BTC/USDT").qty == Decimal("0.08")
    # one repair row and one audit entry per repair, each naming run and discrepancy
    assert Repair.objects.filter(status="applied").count() == 3
    audits = AuditEntry.objects.filter(action="repair.apply")
    assert audits.count() == 3
    assert set(audits.values_list("actor_name", flat=True)) == {"system:reconciliation"}
    assert all(a.run_id == run.pk and a.discrepancy_id for a in audits)
    assert set(Discrepancy.objects.values_list("status", flat=True)) == {"repaired"}
    # the runbook's log lines
    text = caplog.text
    assert (
        "Reconciliation found 3 discrepancies (orders=2 positions=1 balances=0 repairs=3)" in text
    )
    assert (
        '{"type": "position_mismatch", "symbol": "BTC/USDT", "local_qty": "0.05", '
        '"exchange_qty": "0.08", "detail": "Quantity mismatch"}' in text
    )
    assert (
        '{"type": "stale_local_order", "client_order_id": "abc123", "local_status": "submitted"}'
        in text
    )
    assert (
        '{"type": "missing_local_order", "client_order_id": "def456", "exchange_status": "open"}'
        in text
    )
    assert "Auto-repair applied: stale_local_order abc123 submitted -> cancelled" in text
    account.refresh_from_db()
    assert account.last_reconciled_at is not None
    # a second pass is clean
    caplog.clear()
    again = run_reconciliation(account, "manual", adapter=scenario)
    assert again.status == "completed" and again.discrepancies_found == 0
    assert "Reconciliation clean" in caplog.text


def test_auto_repair_off_changes_nothing_local(account, scenario):
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=False)
    before = AuditEntry.objects.count()
    run = run_reconciliation(account, "manual", adapter=scenario)
    assert run.discrepancies_found == 3 and run.repairs_applied == 0
    assert Order.objects.get(client_order_id="abc123").status == "submitted"
    assert not Order.objects.filter(client_order_id="def456").exists()
    assert Position.objects.get().qty == Decimal("0.05")
    assert AuditEntry.objects.count() == before
    assert Discrepancy.objects.filter(status="open").count() == 3


def test_dry_run_then_staff_apply_and_acknowledge(account, scenario, staff_actor):
    run_reconciliation(account, "manual", dry_run=True, adapter=scenario)
    pos = Discrepancy.objects.get(type="position_mismatch")
    with pytest.raises(ValidationFailed):
        repair_apply(discrepancy=pos, actor=staff_actor, reason="  ")
    repair = repair_apply(discrepancy=pos, actor=staff_actor, reason="checked exchange UI")
    assert repair.status == "applied" and repair.actor_name == "alice"
    position = Position.objects.get()
    assert position.qty == Decimal("0.08")
    assert_audited(
        position,
        action="repair.apply",
        actor=staff_actor,
        reason="checked exchange UI",
        before={"qty": "0.05"},
        after={"qty": "0.08"},
    )
    with pytest.raises(Conflict):
        repair_apply(discrepancy=pos, actor=staff_actor, reason="again")
    stale = Discrepancy.objects.get(type="stale_local_order")
    row = discrepancy_acknowledge(discrepancy=stale, actor=staff_actor, reason="bot will handle")
    assert row.status == "acknowledged"
    assert_audited(
        row, action="discrepancy.acknowledge", actor=staff_actor, reason="bot will handle"
    )
    assert Order.objects.get(client_order_id="abc123").status == "submitted"


def test_bot_write_after_snapshot_is_not_overwritten(account, scenario, bot_actor, staff_actor):
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=False)
    run_reconciliation(account, "manual", adapter=scenario)
    # the bot updates its position after the snapshot was taken
    position_set(account=account, symbol="BTC/USDT", qty="0.07", actor=bot_actor)
    pos = Discrepancy.objects.get(type="position_mismatch")
    with pytest.raises(Conflict, match="changed since the snapshot"):
        repair_apply(discrepancy=pos, actor=staff_actor, reason="fix")
    assert Position.objects.get().qty == Decimal("0.07")


def test_stale_resolved_through_fetch_order(account, bot_actor):
    order_register(
        account=account,
        client_order_id="f1",
        symbol="BTC/USDT",
        side="sell",
        quantity="2",
        price="10",
        actor=bot_actor,
    )
    order_transition(
        account=account,
        client_order_id="f1",
        to_status="submitted",
        exchange_order_id="X1",
        actor=bot_actor,
    )
    age("f1")
    venue = MemoryExchange()
    venue.add_order(
        symbol="BTC/USDT",
        amount=Decimal("2"),
        exchange_order_id="X1",
        client_order_id="f1",
        status=ex.CLOSED,
        filled=Decimal("2"),
        average=Decimal("10.5"),
    )
    run = run_reconciliation(account, "manual", adapter=venue)
    order = Order.objects.get(client_order_id="f1")
    assert order.status == "filled" and order.filled_qty == Decimal("2")
    assert order.avg_fill_price == Decimal("10.5")
    assert "fetch_order" in venue.calls and run.repairs_applied == 1


def test_fetch_errors_block_repairs_of_that_entity(account, scenario):
    scenario.faults["fetch_positions"] = ex.RateLimited("429 slow down", retry_after=7)
    scenario.incomplete.add("orders")
    run = run_reconciliation(account, "manual", adapter=scenario)
    assert run.status == "incomplete" and run.retry_after_seconds == 7
    types = sorted(Discrepancy.objects.values_list("type", flat=True))
    assert types == ["fetch_error", "fetch_error"]
    assert Position.objects.get().qty == Decimal("0.05")
    assert Order.objects.get(client_order_id="abc123").status == "submitted"
    assert "fetch_order" not in scenario.calls  # an incomplete list never declares anything stale


def test_auth_error_stops_the_account(account, scenario, caplog):
    scenario.faults["fetch_open_orders"] = ex.AuthenticationFailed("invalid api key")
    run = run_reconciliation(account, "manual", adapter=scenario)
    assert run.status == "failed" and "authentication failed" in run.error
    account.refresh_from_db()
    assert not account.enabled and "invalid api key" in account.disabled_reason
    assert "ALERT reconciliation stopped for account test-acct" in caplog.text
    assert Position.objects.get().qty == Decimal("0.05")


def test_persistent_desync_after_three_passes(account, scenario, bot_actor, caplog):
    for _ in range(3):
        position_set(account=account, symbol="BTC/USDT", qty="0.05", actor=bot_actor)
        run_reconciliation(account, "manual", adapter=scenario)
    latest = Discrepancy.objects.filter(type="position_mismatch").order_by("-id").first()
    assert latest.consecutive_runs == 3 and latest.persistent
    assert (
        "Persistent desync: position_mismatch BTC/USDT seen in 3 consecutive passes" in caplog.text
    )


def test_open_discrepancies_superseded_or_resolved(account, scenario):
    ExchangeAccount.objects.filter(pk=account.pk).update(auto_repair=False)
    run_reconciliation(account, "manual", adapter=scenario)
    scenario.set_position("BTC/USDT", "0.05")  # the exchange now agrees on the position
    run2 = run_reconciliation(account, "manual", adapter=scenario)
    pos_rows = Discrepancy.objects.filter(type="position_mismatch")
    assert list(pos_rows.values_list("status", flat=True)) == ["resolved"]
    open_rows = Discrepancy.objects.filter(status="open")
    assert set(open_rows.values_list("run_id", flat=True)) == {run2.pk}
    assert open_rows.count() == 2
    assert all(r.consecutive_runs == 2 for r in open_rows)


def test_recovery_gate_cleared_by_completed_pass(account, scenario):
    ExchangeAccount.objects.filter(pk=account.pk).update(recovery_started_at=timezone.now())
    run_reconciliation(account, "startup", adapter=scenario)
    account.refresh_from_db()
    assert account.recovery_started_at is None


def test_summary_line_carries_repairs_applied(account, scenario):
    from tradingstate.logconfig import JsonLinesFormatter

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("reconciliation").addHandler(handler)
    try:
        run_reconciliation(account, "manual", adapter=scenario)
    finally:
        logging.getLogger("reconciliation").removeHandler(handler)
    lines = [JsonLinesFormatter().format(r) for r in records]
    summary = json.loads(next(line for line in lines if "Reconciliation found" in line))
    assert summary["repairs_applied"] == 3 and summary["account"] == "test-acct"
    assert Balance.objects.get().total == Decimal("10000")


def test_queries_do_not_grow_with_size(db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import AccountFactory

    def world(n):
        venue = MemoryExchange()
        for i in range(n):
            venue.add_order(
                symbol="BTC/USDT",
                amount=Decimal(1),
                exchange_order_id=f"E{n}-{i}",
                client_order_id=f"m{n}-{i}",
            )
        for i in range(n // 10 or 1):
            venue.set_position(f"S{i}/USDT", "1")
            venue.set_balance(f"C{i}", "5")
        return venue

    counts = []
    # SQLite caps a statement at 999 parameters, so Django splits big bulk inserts there;
    # PostgreSQL gets the real scaling check.
    from tests.pg import ON_POSTGRES

    for n in (20, 400) if ON_POSTGRES else (10, 40):
        venue = world(n)
        account = AccountFactory(name=f"size-{n}")
        with CaptureQueriesContext(connection) as ctx:
            run = run_reconciliation(account, "manual", adapter=venue)
        assert run.repairs_applied == n + 2 * (n // 10)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert counts[0] <= 40
