"""Venue lists that repeat an identity, end to end through the real ccxt client against the
loopback fake Binance: two open orders sharing one client order id, one order listed twice,
and a repair that builds on another repair the rules refuse.

Invariants checked each time: a venue order reported repaired is tracked by a local row;
one finding, one repair, one audit entry (audit entries == ``repairs_applied``); a repair
whose prerequisite is deferred is deferred with it.

Runs on whichever database DATABASE_URL names (PostgreSQL) or SQLite by default.
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal as D

import pytest

from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.passes import REPAIR_DEFERRED, repair_apply
from reconciliation.services import run_reconciliation
from tests.audit import assert_audited
from tests.fakes.exchange_server import FakeOrder
from tradingstate.actors import Actor
from tradingstate.errors import Conflict
from tradingstate.models import AuditEntry, Fill, Order
from tradingstate.rules.orders import FILLED_QTY_OVER
from tradingstate.services import sync
from tradingstate.services.sync import SyncItem, orders_create_from_exchange

pytestmark = pytest.mark.django_db

SYMBOL = "BTC/USDT:USDT"
OVER = FILLED_QTY_OVER.format(new="0.02", qty="0.01")  # the order rules' own words


def _account(make_fake_account, name, **fields):
    return make_fake_account(
        "binance", "swap", name=name, save=True, stale_order_grace_seconds=0, **fields
    )


def _repair_audits(run) -> int:
    return AuditEntry.objects.filter(action="repair.apply", run_id=run.pk).count()


# --- D1: two venue orders, one client order id ----------------------------------------------
def test_two_open_venue_orders_sharing_a_client_id_are_both_tracked(
    fake_exchange, make_fake_account, caplog
):
    # given: the venue lists a buy 7001 and a sell 7002, both with clientOrderId "dupc"
    fake_exchange.binance.orders += [
        FakeOrder("7001", "BTCUSDT", "buy", "0.010", "50000", client_order_id="dupc"),
        FakeOrder("7002", "BTCUSDT", "sell", "0.020", "60000", client_order_id="dupc"),
    ]
    account = _account(make_fake_account, "dup-coid")
    # when
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account, "manual")
    # then: each venue order has its own local row; the second under its venue id
    assert run.status == ReconciliationRun.Status.COMPLETED, run.error
    rows = {o.client_order_id: o for o in Order.objects.filter(account=account).order_by("pk")}
    assert sorted(rows) == ["dupc", "ex-7002"]
    first, second = rows["dupc"], rows["ex-7002"]
    assert (first.exchange_order_id, first.side, first.quantity) == ("7001", "buy", D("0.01"))
    assert (second.exchange_order_id, second.side, second.quantity) == ("7002", "sell", D("0.02"))
    assert second.status == "submitted" and second.origin == "reconciliation"
    # two findings, two applied repairs, two audit entries: one per venue order
    found = dict(Discrepancy.objects.filter(run=run).values_list("key", "status"))
    assert found == {"dupc": "repaired", "ex-7002": "repaired"}
    assert run.repairs_applied == 2 and run.repairs_deferred == 0
    assert list(Repair.objects.filter(run=run).values_list("status", flat=True)) == [
        "applied",
        "applied",
    ]
    actor = Actor.system("reconciliation", run.pk)
    for order in (first, second):
        entry = assert_audited(order, action="repair.apply", actor=actor)
        assert entry.after["exchange_order_id"] == order.exchange_order_id
    assert _repair_audits(run) == run.repairs_applied
    # the runbook lines: the second names the venue's client id it could not take
    text = caplog.text
    assert (
        json.dumps(
            {"type": "missing_local_order", "client_order_id": "dupc", "exchange_status": "open"}
        )
        in text
    )
    assert (
        json.dumps(
            {
                "type": "missing_local_order",
                "client_order_id": "ex-7002",
                "exchange_status": "open",
                "venue_client_order_id": "dupc",
            }
        )
        in text
    )
    assert "Auto-repair applied: missing_local_order dupc none -> submitted" in text
    assert "Auto-repair applied: missing_local_order ex-7002 none -> submitted" in text
    # and the next pass is clean: both venue orders are matched
    again = run_reconciliation(account, "manual")
    assert again.status == "completed" and again.discrepancies_found == 0, list(
        Discrepancy.objects.filter(run=again).values_list("type", "key")
    )


def test_a_venue_order_reusing_a_tracked_orders_client_id_is_tracked_apart(
    fake_exchange, make_fake_account
):
    # given: pass 1 tracked 7001 as "dupc"; then the venue lists 7002 with "dupc" as well
    fake_exchange.binance.orders.append(
        FakeOrder("7001", "BTCUSDT", "buy", "0.010", "50000", client_order_id="dupc")
    )
    account = _account(make_fake_account, "dup-coid-later")
    run_reconciliation(account, "manual")
    tracked = Order.objects.get(account=account, client_order_id="dupc")
    fake_exchange.binance.orders.append(
        FakeOrder("7002", "BTCUSDT", "sell", "0.020", "60000", client_order_id="dupc")
    )
    # when
    run = run_reconciliation(account, "manual")
    # then: 7002 gets its own row; "dupc" (7001) is left as it was
    assert list(Discrepancy.objects.filter(run=run).values_list("type", "key", "status")) == [
        ("missing_local_order", "ex-7002", "repaired")
    ]
    second = Order.objects.get(account=account, exchange_order_id="7002")
    assert second.client_order_id == "ex-7002" and second.side == "sell"
    assert_audited(second, action="repair.apply", actor=Actor.system("reconciliation", run.pk))
    tracked.refresh_from_db()
    assert tracked.exchange_order_id == "7001" and tracked.version == 1
    assert run.repairs_applied == 1 == _repair_audits(run)


def test_the_create_service_gives_each_item_its_own_outcome(make_fake_account, system_actor):
    # given: two items of one batch naming the same client order id (and the same key)
    account = _account(make_fake_account, "dup-items")
    values = {
        "client_order_id": "dupc",
        "symbol": SYMBOL,
        "type": "limit",
        "price": "50000",
        "filled_qty": "0",
        "avg_fill_price": None,
        "status": "submitted",
    }
    buy = {**values, "exchange_order_id": "7001", "side": "buy", "quantity": "0.01"}
    sell = {**values, "exchange_order_id": "7002", "side": "sell", "quantity": "0.02"}
    items = [SyncItem("dupc", buy), SyncItem("dupc", sell)]
    # when
    first, second = orders_create_from_exchange(account=account, items=items, actor=system_actor)
    # then: the first is created; the second is refused, not reported as the first's success
    order = Order.objects.get(account=account)
    assert first.applied and first.target_id == order.pk and order.exchange_order_id == "7001"
    assert not second.applied and second.target_id is None
    assert second.error == sync.ORDER_IN_BATCH.format(client_order_id="dupc")
    assert_audited(order, action="repair.apply", actor=system_actor)
    assert AuditEntry.objects.filter(action="repair.apply").count() == 1


# --- D2: one venue order listed twice -------------------------------------------------------
def test_a_venue_order_listed_twice_is_one_finding_one_repair_one_audit(
    fake_exchange, make_fake_account, caplog
):
    # given: the venue's open-orders list repeats order 7001
    fake_exchange.binance.orders += [
        FakeOrder("7001", "BTCUSDT", "buy", "0.010", "50000", client_order_id="dup1"),
        FakeOrder("7001", "BTCUSDT", "buy", "0.010", "50000", client_order_id="dup1"),
    ]
    account = _account(make_fake_account, "dup-id")
    # when
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account, "manual")
    # then: one discrepancy, one repair, one audit entry, one order
    assert run.status == ReconciliationRun.Status.COMPLETED, run.error
    assert list(Discrepancy.objects.filter(run=run).values_list("type", "key", "status")) == [
        ("missing_local_order", "dup1", "repaired")
    ]
    assert run.discrepancies_found == 1 and run.repairs_applied == 1
    assert Repair.objects.filter(run=run).count() == 1
    order = Order.objects.get(account=account)
    assert (order.client_order_id, order.exchange_order_id) == ("dup1", "7001")
    assert_audited(order, action="repair.apply", actor=Actor.system("reconciliation", run.pk))
    assert _repair_audits(run) == run.repairs_applied == Order.objects.count()
    assert caplog.text.count("Auto-repair applied: missing_local_order dup1") == 1
    assert "Reconciliation found 1 discrepancies" in caplog.text
    # and the next pass is clean
    again = run_reconciliation(account, "manual")
    assert again.discrepancies_found == 0


# --- D3: a repair whose prerequisite the rules refuse ----------------------------------------
def test_an_inferred_fill_waits_for_the_order_creation_it_builds_on(
    fake_exchange, make_fake_account, caplog
):
    # given: a venue order unknown locally that reports filled 0.02 of 0.01 (no trades)
    fake_exchange.binance.orders.append(
        FakeOrder("7004", "BTCUSDT", "buy", "0.010", "50000", filled="0.020",
                  client_order_id="over1")
    )  # fmt: skip
    account = _account(make_fake_account, "over")
    # when
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account, "manual")
    # then: the creation is refused by the order rules, and the inferred fill with it
    assert not Order.objects.filter(account=account).exists()
    assert not Fill.objects.filter(account=account).exists()
    assert run.repairs_applied == 0 and run.repairs_deferred == 2
    repairs = dict(Repair.objects.filter(run=run).values_list("action", "error"))
    assert repairs["order_create"] == OVER
    assert repairs["fill_record"] == f"missing_local_order over1 was not applied: {OVER}"
    assert set(Repair.objects.filter(run=run).values_list("status", flat=True)) == {"deferred"}
    assert set(Discrepancy.objects.filter(run=run).values_list("status", flat=True)) == {"open"}
    assert _repair_audits(run) == 0
    inferred = Discrepancy.objects.get(run=run, type="missing_fill")
    assert inferred.proposed_repair["requires"] == [["missing_local_order", "over1"]]
    text = caplog.text
    assert f"Auto-repair deferred: missing_local_order over1: {OVER}" in text
    assert (
        "Auto-repair deferred: missing_fill inferred-7004-0.02: "
        f"missing_local_order over1 was not applied: {OVER}" in text
    )
    # and the next pass finds the same two, deferred for the same reason (nothing recorded)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        again = run_reconciliation(account, "manual")
    assert again.repairs_applied == 0 and again.repairs_deferred == 2
    assert not Fill.objects.filter(account=account).exists()
    assert "recorded meanwhile" not in caplog.text


def test_staff_cannot_apply_a_repair_before_the_one_it_builds_on(
    fake_exchange, make_fake_account, staff_actor
):
    # given: a dry run found an overfilled unknown venue order and its inferred fill
    fake_exchange.binance.orders.append(
        FakeOrder("7004", "BTCUSDT", "buy", "0.010", "50000", filled="0.020",
                  client_order_id="over1")
    )  # fmt: skip
    account = _account(make_fake_account, "over-staff")
    run = run_reconciliation(account, "manual", dry_run=True)
    inferred = Discrepancy.objects.get(run=run, type="missing_fill")
    # when: staff apply the fill first
    with pytest.raises(Conflict) as caught:
        repair_apply(discrepancy=inferred, actor=staff_actor, reason="looks right")
    # then: refused, naming the open prerequisite; nothing written
    error = "missing_local_order over1 was not applied: its discrepancy is open"
    assert caught.value.message == REPAIR_DEFERRED.format(error=error)
    assert not Fill.objects.filter(account=account).exists()
    assert not Repair.objects.filter(discrepancy=inferred).exists()
    assert not AuditEntry.objects.filter(action="repair.apply").exists()
    inferred.refresh_from_db()
    assert inferred.status == "open"


def test_staff_apply_a_creation_then_the_fill_that_builds_on_it(
    fake_exchange, make_fake_account, staff_actor
):
    # given: a dry run found an unknown venue order filled 0.004 of 0.01 (no trades listed)
    fake_exchange.binance.orders.append(
        FakeOrder("7010", "BTCUSDT", "buy", "0.010", "50000", filled="0.004",
                  average="50000", client_order_id="ok1")
    )  # fmt: skip
    account = _account(make_fake_account, "ok-staff")
    run = run_reconciliation(account, "manual", dry_run=True)
    create = Discrepancy.objects.get(run=run, type="missing_local_order", key="ok1")
    inferred = Discrepancy.objects.get(run=run, type="missing_fill")
    # when: the fill first (refused), then the creation, then the fill
    with pytest.raises(Conflict):
        repair_apply(discrepancy=inferred, actor=staff_actor, reason="fill first")
    repair_apply(discrepancy=create, actor=staff_actor, reason="venue UI shows it")
    repair = repair_apply(discrepancy=inferred, actor=staff_actor, reason="venue UI shows it")
    # then: the fill is the created order's, each write audited once by staff
    assert repair.status == "applied"
    order = Order.objects.get(account=account, client_order_id="ok1")
    fill = Fill.objects.get(account=account)
    assert fill.order_id == order.pk and fill.inferred and fill.quantity == D("0.004")
    order.refresh_from_db()
    assert order.filled_qty == D("0.004") == order.fills_qty
    assert_audited(order, action="repair.apply", actor=staff_actor, reason="venue UI shows it")
    assert_audited(fill, action="repair.apply", actor=staff_actor, reason="venue UI shows it")
