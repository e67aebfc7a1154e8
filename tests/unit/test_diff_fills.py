"""The pure fills diff and the stale-order rules of issue 14 (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from reconciliation import diff as d
from tradingstate.exchanges import base as ex
from tradingstate.sync_kinds import RepairKind

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
OLD = NOW - timedelta(hours=1)


def lo(coid, *, filled="0", fills=None, qty="0.020", exid="E1", status="submitted", created=OLD):
    return d.LocalOrder(
        id=abs(hash(coid)) % 10_000,
        client_order_id=coid,
        exchange_order_id=exid,
        symbol="BTC/USDT:USDT",
        side="buy",
        type="limit",
        quantity=D(qty),
        price=D("49100"),
        filled_qty=D(filled),
        avg_fill_price=None,
        status=status,
        updated_at=OLD,
        version=3,
        fills_qty=D(fills if fills is not None else filled),
        created_at=created,
    )


def trade(tid, qty, price, *, exid="E1", at=OLD, fee="0.1", symbol="BTC/USDT:USDT"):
    return ex.ExchangeTrade(
        trade_id=tid,
        exchange_order_id=exid,
        symbol=symbol,
        side="buy",
        quantity=D(qty),
        price=D(price),
        fee=D(fee),
        fee_currency="USDT",
        executed_at=at,
    )


def cfg(**kw):
    kw.setdefault("fills", True)
    kw.setdefault("check_positions", False)
    return d.DiffConfig(now=NOW, **kw)


def snapshot(trades=None, **kw):
    return d.ExchangeSnapshot(
        orders=[], positions=[], balances=[], trades=trades, trades_supported=True, **kw
    )


def by_type(findings):
    out = {}
    for f in findings:
        out.setdefault(f.type, []).append(f)
    return out


# --- missing_fill / fill_mismatch / inferred -------------------------------------------------
def test_unknown_trade_is_a_missing_fill_of_its_order_with_the_runbook_fields():
    local = d.LocalSnapshot(orders=[lo("o1", filled="0.012", fills="0")])
    found = d.diff(local, snapshot([trade("501", "0.012", "48990")]), cfg())
    (f,) = by_type(found)[d.MISSING_FILL]
    assert f.detail == {
        "type": "missing_fill",
        "trade_id": "501",
        "client_order_id": "o1",
        "symbol": "BTC/USDT:USDT",
        "qty": "0.012",
        "price": "48990",
    }
    assert f.repair.kind == RepairKind.FILL_RECORD
    assert f.repair.values["order"] == "o1" and f.repair.values["fee"] == "0.1"
    assert f.repair.values["order_version"] == 3


def test_a_trade_no_order_matches_is_external():
    found = d.diff(d.LocalSnapshot(), snapshot([trade("9", "1", "10", exid="X")]), cfg())
    (f,) = found
    assert f.type == d.MISSING_FILL and f.detail["external"] is True
    assert f.repair.values["order"] == ""


def test_a_young_trade_is_left_for_the_bot_and_an_old_one_is_never_missing():
    young = trade("1", "0.01", "1", at=NOW - timedelta(seconds=2))
    ancient = trade("2", "0.01", "1", at=NOW - timedelta(days=30))
    snap = snapshot([young, ancient], trades_from=NOW - timedelta(days=7))
    local = d.LocalSnapshot(orders=[lo("o1")])
    assert d.diff(local, snap, cfg()) == []


def test_same_trade_other_price_and_fee_is_a_fill_mismatch():
    known = d.LocalFill(7, "BTC/USDT:USDT", "501", 1, D("0.012"), D("48000"), D("0"), "")
    local = d.LocalSnapshot(
        orders=[lo("o1", filled="0.012")], fills={("BTC/USDT:USDT", "501"): known}
    )
    found = d.diff(local, snapshot([trade("501", "0.012", "48990")]), cfg())
    (f,) = found
    assert f.type == d.FILL_MISMATCH and f.detail["fields"] == ["price", "fee"]
    assert f.repair.kind == RepairKind.FILL_CORRECT and f.repair.target_id == 7
    assert f.repair.values["seen"]["price"] == "48000"


def test_filled_without_trades_gets_one_inferred_fill_at_the_venue_average():
    # the venue says o1 filled at 49000 but lists no trade (history expired)
    local = d.LocalSnapshot(orders=[lo("o1")])
    snap = snapshot([])
    lookups = {
        "o1": ex.ExchangeOrder(
            symbol="BTC/USDT:USDT",
            side="buy",
            type="limit",
            amount=D("0.020"),
            filled=D("0.020"),
            status=ex.CLOSED,
            exchange_order_id="E1",
            client_order_id="o1",
            average=D("49000"),
        )
    }
    found = by_type(d.diff(local, snap, cfg(), lookups))
    (f,) = found[d.MISSING_FILL]
    assert f.detail["inferred"] is True and f.detail["qty"] == "0.02"
    assert f.repair.values["price"] == "49000" and f.repair.values["inferred"] is True


def test_no_trade_list_no_inference_and_no_missing_fill():
    # a failed trade fetch (trades None) is never "no trades"
    local = d.LocalSnapshot(orders=[lo("o1", filled="0.020", fills="0")])
    snap = snapshot(None, errors={"fills": "RateLimited: 429"})
    found = d.diff(local, snap, cfg())
    assert [f.type for f in found] == [d.FETCH_ERROR]


# --- stale orders: end states the venue can prove --------------------------------------------
def test_one_not_found_does_not_cancel_it_waits_for_the_passes():
    # regression (issue 14): one "not found" from fetch_order used to cancel the order
    local = d.LocalSnapshot(orders=[lo("o1")])
    found = d.diff(local, snapshot([]), cfg(stale_not_found_passes=3), {"o1": d.NOT_FOUND})
    (f,) = found
    assert f.type == d.STALE_LOCAL_ORDER and f.repair is None
    assert f.exchange["not_found_passes"] == 1 and "1 of 3" in f.note
    assert f.detail == {
        "type": "stale_local_order",
        "client_order_id": "o1",
        "local_status": "submitted",
    }


def test_not_found_passes_count_only_when_the_grace_window_apart():
    at = NOW - timedelta(seconds=5)
    local = d.LocalSnapshot(orders=[lo("o1")], not_found={"o1": (2, at)})
    rules = cfg(stale_not_found_passes=3, grace_seconds=10)
    (f,) = d.diff(local, snapshot([]), rules, {"o1": d.NOT_FOUND})
    assert f.repair is None and f.exchange["not_found_passes"] == 2  # too soon: not counted
    local.not_found = {"o1": (2, NOW - timedelta(seconds=11))}
    (f,) = d.diff(local, snapshot([]), rules, {"o1": d.NOT_FOUND})
    assert f.exchange["not_found_passes"] == 3
    assert f.repair.values["status"] == "cancelled"


def test_not_found_but_its_trades_sum_to_the_quantity_means_filled():
    local = d.LocalSnapshot(orders=[lo("o1")])
    trades = [trade("501", "0.012", "48990"), trade("502", "0.008", "49015")]
    found = by_type(
        d.diff(local, snapshot(trades), cfg(stale_not_found_passes=3), {"o1": d.NOT_FOUND})
    )
    (stale,) = found[d.STALE_LOCAL_ORDER]
    assert stale.repair.values["status"] == "filled"
    assert stale.repair.values["filled_qty"] == "0.02"
    assert stale.repair.values["avg_fill_price"] == "49000"
    assert len(found[d.MISSING_FILL]) == 2  # recorded in the same pass, none inferred
    assert not any(f.detail.get("inferred") for f in found[d.MISSING_FILL])


def test_older_than_the_venues_retention_the_venue_cannot_say():
    retention = ex.OrderRetention(max_age=timedelta(days=7), source="Bybit: 7 days")
    local = d.LocalSnapshot(orders=[lo("o1", created=NOW - timedelta(days=8))])
    rules = cfg(order_retention=retention)
    # no lookup is needed (nor asked: run.py filters with venue_can_tell)
    assert not d.venue_can_tell(local.orders[0], rules)
    (f,) = d.diff(local, snapshot([]), rules, {})
    assert f.type == d.STALE_LOCAL_ORDER and f.repair is None
    assert f.exchange["venue_cannot_say"] is True and "venue cannot say" in f.note
    # its trades decide it when they sum to its quantity
    trades = [trade("501", "0.012", "48990"), trade("502", "0.008", "49015")]
    found = by_type(d.diff(local, snapshot(trades), rules, {}))
    assert found[d.STALE_LOCAL_ORDER][0].repair.values["status"] == "filled"


# --- positions and fills (derivatives) -------------------------------------------------------
def test_fill_repairs_carry_the_venues_position_so_it_is_not_counted_twice():
    local = d.LocalSnapshot(
        orders=[lo("o1", filled="0.012", fills="0")],
        positions=[d.LocalPosition(1, "BTC/USDT:USDT", D("0.012"), D("48990"), 4)],
    )
    snap = snapshot([trade("501", "0.012", "48990")])
    snap.positions = [ex.ExchangePosition("BTC/USDT:USDT", D("0.012"), D("48990"))]
    found = d.diff(local, snap, cfg(check_positions=True))
    # the local position already agreed: no position_mismatch; the fill lands on 0.012
    (f,) = found
    assert f.type == d.MISSING_FILL and f.repair.values["position_qty"] == "0.012"
