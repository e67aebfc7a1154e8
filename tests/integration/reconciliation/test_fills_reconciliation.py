"""Fills are state too (issue 14): a pass reads the venue's trades through the real ccxt
client (against the loopback fake Binance/Bybit) and reconciles them with the local fills.

Runs on whichever database DATABASE_URL names (PostgreSQL) or SQLite by default; the
Done-when scenario is run on both.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.services import run_reconciliation
from tests.audit import assert_audited
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.exchange_server import FakeBalance, FakeOrder, FakePosition, FakeTrade
from tradingstate.actors import Actor
from tradingstate.errors import Conflict
from tradingstate.models import AuditEntry, ExchangeAccount, Fill, Order, Position
from tradingstate.services import fill_record

pytestmark = pytest.mark.django_db

TRADE_PATHS = {"binance": "/fapi/v1/userTrades", "bybit": "/v5/execution/list"}
SYMBOL = "BTC/USDT:USDT"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ago(**kw) -> datetime:
    return datetime.now(tz=UTC) - timedelta(**kw)


def assert_fills_invariant(account: ExchangeAccount) -> None:
    """After a completed pass: every order's filled quantity is the sum of its fills."""
    sums: dict[int, D] = {}
    for order_id, qty in Fill.objects.filter(account=account, order__isnull=False).values_list(
        "order_id", "quantity"
    ):
        sums[order_id] = sums.get(order_id, D(0)) + qty
    for order in Order.objects.filter(account=account):
        assert order.filled_qty == sums.get(order.pk, D(0)), (order.client_order_id, order)
        assert order.fills_qty == order.filled_qty, order.client_order_id


def _venue(fake, exchange, *, trades=(), position="0.020", order_status="closed"):
    venue = getattr(fake, exchange)
    venue.orders.append(
        FakeOrder("2001", "BTCUSDT", "buy", "0.020", "49100", filled="0.020", average="49000",
                  status=order_status, client_order_id="done1",
                  timestamp=_ms(_ago(minutes=6)))
    )  # fmt: skip
    if position is not None:
        venue.positions.append(FakePosition("BTCUSDT", position, "49000"))
    venue.futures_balances.append(FakeBalance("USDT", "1000"))
    venue.balances.append(FakeBalance("USDT", "1000"))
    venue.trades += list(trades)
    return venue


def _done_when_trades(when: datetime) -> list[FakeTrade]:
    return [
        FakeTrade("501", "2001", "BTCUSDT", "buy", "0.012", "48990", _ms(when),
                  fee="0.235152", fee_currency="USDT", client_order_id="done1"),
        FakeTrade("502", "2001", "BTCUSDT", "buy", "0.008", "49015",
                  _ms(when + timedelta(seconds=1)), fee="0.156848", fee_currency="USDT",
                  client_order_id="done1", maker=True),
    ]  # fmt: skip


def _stale_local_order(account, coid="done1", exid="2001", qty="0.020"):
    order = OrderFactory(account=account, client_order_id=coid, exchange_order_id=exid,
                         symbol=SYMBOL, side="buy", quantity=D(qty), price=D("49100"),
                         status="submitted")  # fmt: skip
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    return order


def _account(make_fake_account, exchange, name):
    account = make_fake_account(exchange, "swap", name=name, save=True)
    BalanceFactory(account=account, currency="USDT", free=D("1000"), total=D("1000"))
    return account


# --- Done when -------------------------------------------------------------------------------
@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_done_when_a_stale_order_ends_filled_with_its_two_venue_trades(
    fake_exchange, make_fake_account, exchange, caplog
):
    # given: a stale local order; the venue filled it in two trades with USDT commission
    _venue(fake_exchange, exchange, trades=_done_when_trades(_ago(minutes=4)))
    account = _account(make_fake_account, exchange, f"{exchange}-done")
    _stale_local_order(account)
    # when
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account, "manual")
    # then: filled, with those two Fill rows, their fees, and filled_qty 0.020
    assert run.status == ReconciliationRun.Status.COMPLETED, run.error
    order = Order.objects.get(account=account, client_order_id="done1")
    assert order.status == "filled" and order.filled_qty == D("0.020")
    fills = list(Fill.objects.filter(order=order).order_by("trade_id"))
    got = [(f.trade_id, f.quantity, f.price, f.fee, f.fee_currency) for f in fills]
    assert got == [
        ("501", D("0.012"), D("48990"), D("0.235152"), "USDT"),
        ("502", D("0.008"), D("49015"), D("0.156848"), "USDT"),
    ]
    assert all(f.origin == "reconciliation" and not f.inferred for f in fills)
    assert [f.is_maker for f in fills] == [False, True]
    assert {f.symbol for f in fills} == {SYMBOL} and {f.side for f in fills} == {"buy"}
    assert_fills_invariant(account)
    # the position moved once per fill, through the accounting rules (fees in USDT apart)
    position = Position.objects.get(account=account, symbol=SYMBOL)
    assert position.qty == D("0.020") and position.entry_price == D("49000")
    assert position.fees == D("0.392") and position.fill_count == 2
    # each fill audited as a repair, with the order and position it moved
    for fill in fills:
        actor = Actor.system("reconciliation", run.pk)
        entry = assert_audited(fill, action="repair.apply", actor=actor)
        assert entry.after["fill"]["trade_id"] == fill.trade_id
        assert entry.run_id == run.pk
    types = sorted(Discrepancy.objects.filter(run=run).values_list("type", flat=True))
    assert types.count("missing_fill") == 2 and "stale_local_order" in types
    # the runbook-style lines
    text = caplog.text
    line = json.dumps({"type": "missing_fill", "trade_id": "501", "client_order_id": "done1",
                       "symbol": SYMBOL, "qty": "0.012", "price": "48990"})  # fmt: skip
    assert line in text
    assert "Auto-repair applied: missing_fill 501 recorded" in text
    assert "Auto-repair applied: missing_fill 502 recorded" in text
    # and the next pass is clean
    again = run_reconciliation(account, "manual")
    assert again.status == "completed" and again.discrepancies_found == 0, list(
        Discrepancy.objects.filter(run=again).values_list("type", "key")
    )
    assert Fill.objects.filter(account=account).count() == 2


# --- missing fills ---------------------------------------------------------------------------
def test_a_bot_posting_a_trade_the_pass_recorded_gets_the_existing_fill(
    fake_exchange, make_fake_account
):
    # given: the pass recorded the venue's trades of the bot's order
    _venue(fake_exchange, "binance", trades=_done_when_trades(_ago(minutes=4)))
    account = _account(make_fake_account, "binance", "binance-idem")
    _stale_local_order(account)
    run_reconciliation(account, "manual")
    audits = AuditEntry.objects.count()
    # when: the bot posts the same trade late
    fill, created = fill_record(
        account=account, client_order_id="done1", trade_id="501", quantity="0.012",
        price="48990", actor=Actor.system("bot"),
    )  # fmt: skip
    # then: the existing fill, nothing moved, nothing audited
    assert not created and fill.origin == "reconciliation"
    assert Fill.objects.filter(account=account).count() == 2
    assert Order.objects.get(client_order_id="done1").filled_qty == D("0.020")
    assert Position.objects.get(account=account).qty == D("0.020")
    assert AuditEntry.objects.count() == audits


def test_an_external_trade_is_recorded_against_no_order_and_counts_in_the_position(
    fake_exchange, make_fake_account
):
    # given: a trade on the venue no local order matches (placed by hand in the venue's UI)
    venue = fake_exchange.bybit
    venue.positions.append(FakePosition("BTCUSDT", "0.005", "50000"))
    venue.futures_balances.append(FakeBalance("USDT", "1000"))
    venue.balances.append(FakeBalance("USDT", "1000"))
    venue.trades.append(
        FakeTrade("x-1", "777", "BTCUSDT", "buy", "0.005", "50000", _ms(_ago(minutes=3)),
                  fee="0.1", client_order_id="manual")
    )  # fmt: skip
    account = _account(make_fake_account, "bybit", "bybit-external")
    # when
    run = run_reconciliation(account, "manual")
    # then: recorded with no order, flagged external; the position counts it
    assert run.status == "completed", run.error
    fill = Fill.objects.get(account=account, trade_id="x-1")
    assert (
        fill.order is None and fill.client_order_id == "manual" and fill.exchange_order_id == "777"
    )
    row = Discrepancy.objects.get(run=run, type="missing_fill")
    assert row.detail["external"] is True and row.status == "repaired"
    assert Position.objects.get(account=account, symbol=SYMBOL).qty == D("0.005")
    assert run_reconciliation(account, "manual").discrepancies_found == 0


def test_a_bot_fill_for_a_trade_recorded_as_external_attaches_it_to_the_order(
    fake_exchange, make_fake_account
):
    # given: the pass recorded a trade before the bot's order was known
    venue = fake_exchange.binance
    venue.futures_balances.append(FakeBalance("USDT", "1000"))
    venue.positions.append(FakePosition("BTCUSDT", "0.005", "50000"))
    venue.trades.append(FakeTrade("900", "555", "BTCUSDT", "buy", "0.005", "50000",
                                  _ms(_ago(minutes=3))))  # fmt: skip
    account = _account(make_fake_account, "binance", "binance-attach")
    run_reconciliation(account, "manual")
    assert Fill.objects.get(trade_id="900").order is None
    OrderFactory(account=account, client_order_id="late", exchange_order_id="555", symbol=SYMBOL,
                 quantity=D("0.005"), status="submitted")  # fmt: skip
    # when: the bot posts the fill
    fill, created = fill_record(
        account=account, client_order_id="late", trade_id="900", quantity="0.005",
        price="50000", actor=Actor.system("bot"),
    )  # fmt: skip
    # then: the same row, now the order's; the position did not count it twice
    assert not created and fill.order.client_order_id == "late"
    order = Order.objects.get(client_order_id="late")
    assert order.status == "filled" and order.filled_qty == order.fills_qty == D("0.005")
    assert Position.objects.get(account=account).qty == D("0.005")
    assert_audited(fill, action="fill.record", actor=Actor.system("bot"))


@pytest.mark.parametrize(
    ("order_side", "order_coid", "order_exid", "field"),
    [
        ("sell", "late", "555", "side"),  # the venue's trade was a buy
        ("buy", "late", "556", "exchange_order_id"),  # another order's trade at the venue
    ],
)
def test_a_bot_fill_cannot_claim_a_recorded_trade_that_is_not_its_orders(
    fake_exchange, make_fake_account, order_side, order_coid, order_exid, field
):
    # given: the pass recorded a buy of order 555 before any local order was known
    venue = fake_exchange.binance
    venue.futures_balances.append(FakeBalance("USDT", "1000"))
    venue.positions.append(FakePosition("BTCUSDT", "0.005", "50000"))
    venue.trades.append(FakeTrade("900", "555", "BTCUSDT", "buy", "0.005", "50000",
                                  _ms(_ago(minutes=3))))  # fmt: skip
    account = _account(make_fake_account, "binance", f"binance-claim-{field}")
    run_reconciliation(account, "manual")
    OrderFactory(account=account, client_order_id=order_coid, exchange_order_id=order_exid,
                 symbol=SYMBOL, side=order_side, quantity=D("0.005"),
                 status="submitted")  # fmt: skip
    audit_rows = AuditEntry.objects.count()
    # when: a bot posts the trade as its order's fill, same quantity and price
    with pytest.raises(Conflict) as refused:
        fill_record(
            account=account, client_order_id=order_coid, trade_id="900", quantity="0.005",
            price="50000", actor=Actor.system("bot"),
        )  # fmt: skip
    # then: 409 naming the field; the trade stays unattributed, the order and position as were
    assert field in refused.value.fields
    fill = Fill.objects.get(account=account, trade_id="900")
    assert fill.order is None and fill.exchange_order_id == "555"
    order = Order.objects.get(account=account, client_order_id=order_coid)
    assert order.status == "submitted" and order.filled_qty == 0
    assert Position.objects.get(account=account).qty == D("0.005")
    assert AuditEntry.objects.count() == audit_rows


def test_fill_mismatch_is_corrected_to_the_venues_values_with_before_and_after(
    fake_exchange, make_fake_account
):
    # given: the bot recorded trade 501 with a wrong price and no fee
    trades = _done_when_trades(_ago(minutes=4))
    _venue(fake_exchange, "binance", trades=trades, order_status="closed")
    account = _account(make_fake_account, "binance", "binance-mismatch")
    _stale_local_order(account)
    fill_record(account=account, client_order_id="done1", trade_id="501", quantity="0.012",
                price="48000", actor=Actor.system("bot"))  # fmt: skip
    # when
    run = run_reconciliation(account, "manual")
    # then
    row = Discrepancy.objects.get(run=run, type="fill_mismatch")
    assert row.detail["fields"] == ["price", "fee"] and row.status == "repaired"
    fill = Fill.objects.get(account=account, trade_id="501")
    assert (fill.price, fill.fee, fill.fee_currency) == (D("48990"), D("0.235152"), "USDT")
    repair = Repair.objects.get(discrepancy=row)
    assert repair.before["fill"]["price"] == "48000" and repair.after["fill"]["price"] == "48990"
    assert_fills_invariant(account)
    assert run_reconciliation(account, "manual").discrepancies_found == 0


def test_a_failed_trade_fetch_is_a_fetch_error_and_no_fill_is_repaired(
    fake_exchange, make_fake_account
):
    # given: the venue's trade list answers 429 (mid-pagination or not: never "no trades")
    _venue(fake_exchange, "binance", trades=_done_when_trades(_ago(minutes=4)))
    account = _account(make_fake_account, "binance", "binance-429")
    _stale_local_order(account)
    fake_exchange.fail(TRADE_PATHS["binance"], "429", retry_after="7")
    # when
    run = run_reconciliation(account, "manual")
    # then: incomplete, a fills fetch_error, no fill recorded or inferred, no watermark
    assert run.status == "incomplete" and run.retry_after_seconds == 7
    row = Discrepancy.objects.get(run=run, type="fetch_error", key="fills")
    assert "RateLimited" in row.detail["error"]
    assert not Fill.objects.filter(account=account).exists()
    assert ExchangeAccount.objects.get(pk=account.pk).fills_watermark_at is None
    # the next pass reads the trades and records them: filled_qty = sum of fills
    fake_exchange.reset()
    _venue(fake_exchange, "binance", trades=_done_when_trades(_ago(minutes=4)))
    again = run_reconciliation(account, "manual")
    assert again.status == "completed", again.error
    assert Fill.objects.filter(account=account).count() == 2
    assert not Fill.objects.filter(account=account, inferred=True).exists()
    assert_fills_invariant(account)


def test_an_order_whose_trades_the_venue_no_longer_lists_gets_one_inferred_fill(
    fake_exchange, make_fake_account
):
    # given: the venue says the order filled (average 49000) but lists no trade for it
    _venue(fake_exchange, "bybit", trades=())
    account = _account(make_fake_account, "bybit", "bybit-inferred")
    _stale_local_order(account)
    # when
    run = run_reconciliation(account, "manual")
    # then: one fill flagged inferred at the venue's average price
    assert run.status == "completed", run.error
    fill = Fill.objects.get(account=account)
    assert fill.inferred and fill.origin == "reconciliation"
    assert (fill.quantity, fill.price) == (D("0.020"), D("49000"))
    row = Discrepancy.objects.get(run=run, type="missing_fill")
    assert row.detail["inferred"] is True
    assert Position.objects.get(account=account).inferred_fills == 1
    assert_fills_invariant(account)
    assert run_reconciliation(account, "manual").discrepancies_found == 0


# --- the watermark -----------------------------------------------------------------------
def test_each_pass_reads_trades_from_the_watermark_less_the_overlap(
    fake_exchange, make_fake_account, settings
):
    _venue(fake_exchange, "bybit", trades=_done_when_trades(_ago(minutes=4)))
    account = _account(make_fake_account, "bybit", "bybit-watermark")
    _stale_local_order(account)
    # first pass: the venue's maximum look-back (Bybit: 730 days, 7 days per query)
    run_reconciliation(account, "manual")
    first = [q for _m, p, q in fake_exchange.requests if p == TRADE_PATHS["bybit"]]
    starts = sorted(int(q["startTime"]) for q in first)
    assert starts[0] <= _ms(_ago(days=729))
    account.refresh_from_db()
    watermark = account.fills_watermark_at
    assert watermark is not None and watermark >= _ago(minutes=4)
    # second pass: from the watermark less fill_overlap_seconds, in one window
    fake_exchange.requests.clear()
    run_reconciliation(account, "manual")
    second = [q for _m, p, q in fake_exchange.requests if p == TRADE_PATHS["bybit"]]
    overlap = settings.TRADINGSTATE.fill_overlap_seconds
    assert {int(q["startTime"]) for q in second} == {_ms(watermark) - overlap * 1000}


def test_trades_older_than_the_venue_returns_are_never_missing(fake_exchange, make_fake_account):
    # given: a trade 200 days old on Binance USD-M (which returns 6 months at most)
    venue = fake_exchange.binance
    venue.futures_balances.append(FakeBalance("USDT", "1000"))
    venue.trades.append(FakeTrade("1", "1", "BTCUSDT", "buy", "0.001", "30000",
                                  _ms(_ago(days=200))))  # fmt: skip
    account = _account(make_fake_account, "binance", "binance-old")
    PositionFactory(account=account, symbol=SYMBOL, qty=D("0"))
    # when
    run = run_reconciliation(account, "manual")
    # then: never asked for, never missing
    assert run.status == "completed", run.error
    assert not Discrepancy.objects.filter(run=run, type="missing_fill").exists()
    queries = [q for _m, p, q in fake_exchange.requests if p == TRADE_PATHS["binance"]]
    assert min(int(q["startTime"]) for q in queries) >= _ms(_ago(days=181))


# --- spot ----------------------------------------------------------------------------------
def test_spot_fee_in_the_base_currency_reduces_the_held_amount(fake_exchange, make_fake_account):
    # given: a spot buy of 0.01 BTC whose 0.00001 BTC commission the venue took in BTC
    venue = fake_exchange.binance
    venue.balances += [FakeBalance("USDT", "500"), FakeBalance("BTC", "0.00999")]
    venue.orders.append(FakeOrder("3001", "BTCUSDT", "buy", "0.01", "50000", filled="0.01",
                                  average="50000", status="closed", client_order_id="spot1",
                                  kind="spot"))  # fmt: skip
    venue.trades.append(FakeTrade("11", "3001", "BTCUSDT", "buy", "0.01", "50000",
                                  _ms(_ago(minutes=3)), fee="0.00001", fee_currency="BTC",
                                  kind="spot"))  # fmt: skip
    account = make_fake_account("binance", "spot", name="binance-spot-fee", save=True)
    BalanceFactory(account=account, currency="USDT", free=D("500"), total=D("500"))
    BalanceFactory(account=account, currency="BTC", free=D("0.00999"), total=D("0.00999"))
    order = OrderFactory(account=account, client_order_id="spot1", exchange_order_id="3001",
                         symbol="BTC/USDT", quantity=D("0.01"), status="submitted")  # fmt: skip
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    # when
    run = run_reconciliation(account, "manual")
    # then: the fill recorded; the amount held is what the wallet holds, not 0.01
    assert run.status == "completed", run.error
    fill = Fill.objects.get(account=account)
    assert (fill.fee, fill.fee_currency) == (D("0.00001"), "BTC")
    assert Position.objects.get(account=account, symbol="BTC/USDT").qty == D("0.00999")
    assert_fills_invariant(account)


def test_a_truncated_trade_list_is_a_fetch_error_never_no_trades():
    # given: an order the venue says filled, and a trade list cut off (pages missing)
    from tests.factories import AccountFactory
    from tests.fakes.memory import TradingMemoryExchange
    from tradingstate.exchanges import base as ex

    account = AccountFactory(name="truncated", market_type="swap")
    _stale_local_order(account)
    venue = TradingMemoryExchange(incomplete={"trades"})
    venue.add_order(
        symbol=SYMBOL, amount=D("0.020"), filled=D("0.020"), status=ex.CLOSED,
        average=D("49000"), exchange_order_id="2001", client_order_id="done1",
    )  # fmt: skip
    # when
    run = run_reconciliation(account, "manual", adapter=venue)
    # then: incomplete; no fill recorded, none inferred from the "empty" list
    assert run.status == "incomplete"
    assert Discrepancy.objects.filter(run=run, type="fetch_error", key="fills").exists()
    assert not Fill.objects.filter(account=account).exists()
    assert not Discrepancy.objects.filter(run=run, type="missing_fill").exists()
