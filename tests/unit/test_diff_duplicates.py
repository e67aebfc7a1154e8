"""The pure diff on venue lists that repeat an identity: one client order id on two venue
orders, one venue order listed twice, and the repairs that build on another repair of the
same pass (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from reconciliation import diff as d
from tradingstate.exchanges import base as ex
from tradingstate.sync_kinds import RepairKind

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=1)
SYMBOL = "BTC/USDT:USDT"


def lo(coid, *, exid="", status="submitted", qty="0.010", filled="0", side="buy", id_=1):
    return d.LocalOrder(
        id=id_,
        client_order_id=coid,
        exchange_order_id=exid,
        symbol=SYMBOL,
        side=side,
        type="limit",
        quantity=D(qty),
        price=D("50000"),
        filled_qty=D(filled),
        avg_fill_price=None,
        status=status,
        updated_at=OLD,
        version=2,
        fills_qty=D(filled),
        created_at=OLD,
    )


def xo(exid, coid, *, side="buy", amount="0.010", filled="0", average=None, status=ex.OPEN):
    return ex.ExchangeOrder(
        symbol=SYMBOL,
        side=side,
        type="limit",
        amount=D(amount),
        filled=D(filled),
        status=status,
        exchange_order_id=exid,
        client_order_id=coid,
        price=D("50000"),
        average=D(average) if average else None,
        timestamp=OLD,
    )


def trade(tid, exid, qty, *, coid=""):
    return ex.ExchangeTrade(
        trade_id=tid,
        exchange_order_id=exid,
        client_order_id=coid,
        symbol=SYMBOL,
        side="buy",
        quantity=D(qty),
        price=D("50000"),
        fee=D("0"),
        fee_currency="USDT",
        executed_at=OLD,
    )


def cfg(**kw):
    return d.DiffConfig(now=NOW, grace_seconds=10, **kw)


def venue(*orders, trades=None):
    return d.ExchangeSnapshot(
        orders=list(orders), positions=[], balances=[], trades=trades, trades_supported=True
    )


def creations(findings):
    return {
        f.key: f.repair.values
        for f in findings
        if f.repair is not None and f.repair.kind == RepairKind.ORDER_CREATE
    }


# --- one client order id, two venue orders (D1) ------------------------------------------------
def test_two_venue_orders_with_one_client_id_are_both_tracked_the_second_under_its_venue_id():
    # given: nothing local; the venue lists two open orders sharing client id "dupc"
    exchange = venue(
        xo("7001", "dupc", side="buy", amount="0.010"),
        xo("7002", "dupc", side="sell", amount="0.020"),
    )
    # when
    findings = d.diff(d.LocalSnapshot(), exchange, cfg())
    # then: two creations under distinct local ids, each the venue order it names
    created = creations(findings)
    assert sorted(created) == ["dupc", "ex-7002"]
    assert (created["dupc"]["exchange_order_id"], created["dupc"]["side"]) == ("7001", "buy")
    assert created["ex-7002"]["exchange_order_id"] == "7002"
    assert (created["ex-7002"]["side"], created["ex-7002"]["quantity"]) == ("sell", "0.02")
    second = next(f for f in findings if f.key == "ex-7002")
    assert second.detail == {
        "type": "missing_local_order",
        "client_order_id": "ex-7002",
        "exchange_status": "open",
        "venue_client_order_id": "dupc",
    }
    assert "dupc" in second.note and "7001" in second.note
    first = next(f for f in findings if f.key == "dupc")
    assert "venue_client_order_id" not in first.detail  # the runbook's line, unchanged


def test_a_client_id_match_with_another_exchange_id_is_not_the_same_order():
    # given: the bot's "dupc" is venue order 7001; the venue also lists 7002 as "dupc"
    local = d.LocalSnapshot(orders=[lo("dupc", exid="7001")])
    exchange = venue(xo("7001", "dupc"), xo("7002", "dupc", side="sell", amount="0.020"))
    # when
    findings = d.diff(local, exchange, cfg())
    # then: 7001 agrees; 7002 is missing locally and tracked under its venue id
    assert [(f.type, f.key) for f in findings] == [("missing_local_order", "ex-7002")]
    assert findings[0].repair.values["exchange_order_id"] == "7002"


def test_a_local_order_without_exchange_id_is_claimed_by_one_venue_order_only():
    # given: the bot registered "dupc" before the venue acknowledged it (no exchange id yet)
    local = d.LocalSnapshot(orders=[lo("dupc", exid="", filled="0")])
    exchange = venue(
        xo("7001", "dupc", filled="0"),
        xo("7002", "dupc", side="sell", amount="0.020", filled="0.005", average="50000"),
    )
    # when
    findings = d.diff(local, exchange, cfg())
    # then: the first listed is the bot's order (in step: no finding); the second is new
    assert [(f.type, f.key) for f in findings] == [("missing_local_order", "ex-7002")]
    assert findings[0].repair.values["filled_qty"] == "0.005"


def test_a_reused_client_id_of_a_finished_order_tracks_the_new_venue_order():
    # given: "dupc" filled locally as 7001; the venue reuses "dupc" for open order 7002
    local = d.LocalSnapshot(orders=[lo("dupc", exid="7001", status="filled", filled="0.010")])
    exchange = venue(xo("7002", "dupc", side="sell", amount="0.020"))
    # when
    findings = d.diff(local, exchange, cfg())
    # then: not a "terminal but open" mismatch on 7001's row: 7002 is created apart
    assert [(f.type, f.key) for f in findings] == [("missing_local_order", "ex-7002")]


def test_a_local_order_whose_client_id_another_venue_order_uses_can_still_be_stale():
    # given: "dupc" (7001) is active locally, but only 7002 "dupc" is open on the venue
    mine = lo("dupc", exid="7001")
    local = d.LocalSnapshot(orders=[mine])
    exchange = venue(xo("7002", "dupc", side="sell", amount="0.020"))
    # when
    stale = d.stale_candidates(local, exchange, cfg())
    findings = d.diff(local, exchange, cfg(), {"dupc": d.NOT_FOUND}, stale)
    # then: 7001 is asked about (not hidden by 7002's client id), and 7002 is created
    assert stale == [mine]
    assert sorted((f.type, f.key) for f in findings) == [
        ("missing_local_order", "ex-7002"),
        ("stale_local_order", "dupc"),
    ]


def test_a_local_order_without_exchange_id_named_by_an_open_order_is_not_stale():
    local = d.LocalSnapshot(orders=[lo("dupc", exid="")])
    exchange = venue(xo("7001", "dupc"))
    assert d.stale_candidates(local, exchange, cfg()) == []


# --- one venue order listed twice (D2) ----------------------------------------------------------
def test_a_venue_order_listed_twice_is_one_finding_and_one_repair():
    # given: the venue's open list repeats order 7001
    exchange = venue(xo("7001", "dup1"), xo("7001", "dup1"))
    # when
    findings = d.diff(d.LocalSnapshot(), exchange, cfg())
    # then
    assert [(f.type, f.key) for f in findings] == [("missing_local_order", "dup1")]


def test_a_venue_order_listed_twice_with_different_progress_keeps_the_furthest():
    # given: the same order on two pages, filled more on the later one
    exchange = venue(
        xo("7001", "dup1", filled="0.002", average="50000"),
        xo("7001", "dup1", filled="0.004", average="50000"),
    )
    # when
    findings = d.diff(d.LocalSnapshot(), exchange, cfg())
    # then: one creation, at the filled quantity never to go back from
    (f,) = findings
    assert f.repair.values["filled_qty"] == "0.004"


def test_a_venue_order_listed_twice_matches_its_local_order_once():
    local = d.LocalSnapshot(orders=[lo("dup1", exid="7001", filled="0")])
    exchange = venue(
        xo("7001", "dup1", filled="0.004", average="50000"), xo("7001", "dup1", filled="0.004")
    )
    findings = d.diff(local, exchange, cfg())
    assert [(f.type, f.key) for f in findings] == [("order_state_mismatch", "dup1")]


def test_a_trade_listed_twice_is_one_missing_fill():
    local = d.LocalSnapshot(
        orders=[lo("o1", exid="7001", filled="0.004", status="partially_filled")]
    )
    exchange = venue(
        xo("7001", "o1", filled="0.004", average="50000"),
        trades=[trade("501", "7001", "0.004"), trade("501", "7001", "0.004")],
    )
    findings = d.diff(local, exchange, cfg(fills=True))
    assert [(f.type, f.key) for f in findings] == [("missing_fill", f"{SYMBOL}:501")]


# --- repairs that build on another repair of the pass (D3) ---------------------------------------
def test_fills_of_an_order_the_pass_creates_require_its_creation():
    # given: a venue order unknown locally, filled 0.004 with one listed trade of 0.003
    exchange = venue(
        xo("7004", "over1", filled="0.004", average="50000"),
        trades=[trade("601", "7004", "0.003")],
    )
    # when
    findings = d.diff(d.LocalSnapshot(), exchange, cfg(fills=True))
    # then: the recorded trade and the inferred rest both name the creation they build on
    fills = [f for f in findings if f.type == d.MISSING_FILL]
    assert sorted(f.detail["trade_id"] for f in fills) == ["601", "inferred-7004-0.004"]
    for f in fills:
        assert f.repair.values["order_created"] is True
        assert f.repair.requires == (("missing_local_order", "over1"),)
        assert f.repair.as_json()["requires"] == [["missing_local_order", "over1"]]
    (create,) = [f for f in findings if f.type == d.MISSING_LOCAL_ORDER]
    assert create.repair.requires == () and "requires" not in create.repair.as_json()


def test_an_inferred_fill_of_an_order_the_pass_moves_requires_that_move():
    # given: a stale local order the venue says closed filled, with no trades listed
    local = d.LocalSnapshot(orders=[lo("o1", exid="7001")])
    closed = xo("7001", "o1", filled="0.010", average="50000", status=ex.CLOSED)
    exchange = venue(trades=[])
    # when
    findings = d.diff(local, exchange, cfg(fills=True), {"o1": closed})
    # then: the inferred fill's quantity is the one the stale repair sets: it requires it
    (inferred,) = [f for f in findings if f.type == d.MISSING_FILL]
    assert inferred.detail["inferred"] is True
    assert inferred.repair.requires == (("stale_local_order", "o1"),)


def test_a_trade_of_an_order_already_tracked_requires_nothing():
    local = d.LocalSnapshot(
        orders=[lo("o1", exid="7001", filled="0.004", status="partially_filled")]
    )
    exchange = venue(
        xo("7001", "o1", filled="0.004", average="50000"), trades=[trade("501", "7001", "0.004")]
    )
    (f,) = d.diff(local, exchange, cfg(fills=True))
    assert f.repair.requires == ()
