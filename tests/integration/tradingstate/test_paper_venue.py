"""The paper venue as a bot trades it: placement through the order transition services,
matching against the mark, fees, venue positions and balances, cancels, marks and the walk."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.audit import assert_audited
from tests.factories import AccountFactory, OrderFactory
from tradingstate.actors import Actor
from tradingstate.amounts import amount_str
from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.exchanges import adapter_for
from tradingstate.models import (
    AuditEntry,
    Order,
    PaperBalance,
    PaperMarkPrice,
    PaperOrder,
    PaperPosition,
    PaperTrade,
)
from tradingstate.services import (
    TransitionRequest,
    fill_record,
    order_bulk_transition,
    order_register,
    order_transition,
    paper_mark_set,
    paper_marks_walk,
)
from tradingstate.services.paper import venue_order_id

pytestmark = pytest.mark.django_db

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
def staff_mark(staff_actor):
    def set_mark(account, price, symbol=SYMBOL, reason="test mark", **kw):
        return paper_mark_set(
            account=account, symbol=symbol, price=price, actor=staff_actor, reason=reason, **kw
        )

    return set_mark


def register(account, actor, coid, *, side="buy", type="market", qty="0.1", price=None,
             symbol=SYMBOL):  # fmt: skip
    order, _ = order_register(
        account=account, client_order_id=coid, symbol=symbol, side=side, type=type,
        quantity=qty, price=price, actor=actor,
    )  # fmt: skip
    return order


def submit(account, actor, coid, **kw):
    return order_transition(
        account=account, client_order_id=coid, to_status="submitted", actor=actor,
        reason="bot submits", **kw,
    )  # fmt: skip


def venue_usdt(account):
    return PaperBalance.objects.get(account=account, currency="USDT")


# --- placement -----------------------------------------------------------------------------
def test_market_order_submitted_is_placed_filled_at_mark_with_fee(
    account, bot_actor, staff_mark, settings
):
    # given a mark of 60,000 and a venue wallet of 10,000 USDT
    staff_mark(account, "60000")
    PaperBalance.objects.create(account=account, currency="USDT", free=D(10000), total=D(10000))
    register(account, bot_actor, "m1")
    # when the bot moves its market buy of 0.1 to submitted
    order = submit(account, bot_actor, "m1")
    # then the venue placed it, assigned its id (the local order learned it) and filled it
    venue = PaperOrder.objects.get(account=account, client_order_id="m1")
    assert order.exchange_order_id == venue.exchange_order_id == venue_order_id(order)
    assert (venue.status, venue.filled, venue.average) == ("closed", D("0.1"), D("60000"))
    trade = PaperTrade.objects.get(account=account)
    fee = D("0.1") * D("60000") * settings.TRADINGSTATE.paper_fee_rate
    assert (trade.quantity, trade.price, trade.fee, trade.fee_currency, trade.liquidity) == (
        D("0.1"), D("60000"), fee, "USDT", "taker",
    )  # fmt: skip
    assert (trade.exchange_order_id, trade.client_order_id) == (venue.exchange_order_id, "m1")
    # the venue's position and balance moved; the local book did not (the bot posts fills)
    assert PaperPosition.objects.get(account=account, symbol=SYMBOL).qty == D("0.1")
    assert venue_usdt(account).total == D(10000) - fee
    assert order.status == "submitted" and order.filled_qty == 0
    # each step audited, by the bot, with its reason
    after = {"status": "submitted", "exchange_order_id": venue.exchange_order_id}
    assert_audited(order, action="order.transition", actor=bot_actor, after=after)
    assert_audited(venue, action="paper.order_place", actor=bot_actor, reason="bot submits")
    entry = assert_audited(trade, action="paper.trade", actor=bot_actor)
    assert entry.before["position"] is None and entry.after["position"]["qty"] == "0.1"
    assert entry.after["balances"]["USDT"]["total"] == amount_str(D(10000) - fee)


def test_limit_order_rests_until_the_mark_crosses_then_fills_at_its_price(
    account, bot_actor, staff_actor, staff_mark
):
    # given a buy limit at 59,000 placed while the mark is 60,000
    staff_mark(account, "60000")
    register(account, bot_actor, "l1", type="limit", price="59000")
    submit(account, bot_actor, "l1")
    assert PaperOrder.objects.get(client_order_id="l1").status == "open"
    assert not PaperTrade.objects.exists()
    # when staff move the mark to 59,000.5 nothing crosses; to 58,500 it does
    staff_mark(account, "59000.5")
    assert not PaperTrade.objects.exists()
    mark = staff_mark(account, "58500", reason="crash drill")
    # then it executed at its limit price as maker, caused by (and audited as) the staff edit
    trade = PaperTrade.objects.get()
    assert (trade.price, trade.liquidity) == (D("59000"), "maker")
    assert_audited(trade, action="paper.trade", actor=staff_actor, reason="crash drill")
    assert_audited(mark, action="paper.mark_set", actor=staff_actor, reason="crash drill",
                   before={"price": "59000.5"}, after={"price": "58500"}, count=3)  # fmt: skip


def test_marketable_limit_fills_on_arrival_at_the_mark(account, bot_actor, staff_mark):
    staff_mark(account, "60000")
    register(account, bot_actor, "l2", side="sell", type="limit", price="59000")
    submit(account, bot_actor, "l2")
    trade = PaperTrade.objects.get()
    assert (trade.side, trade.price, trade.liquidity) == ("sell", D("60000"), "taker")
    assert PaperPosition.objects.get(account=account).qty == D("-0.1")


def test_limit_order_without_a_mark_rests(account, bot_actor):
    register(account, bot_actor, "l3", type="limit", price="50000")
    order = submit(account, bot_actor, "l3")
    assert PaperOrder.objects.get().status == "open" and order.exchange_order_id


def test_market_order_without_a_mark_is_refused_and_changes_nothing(account, bot_actor):
    order = register(account, bot_actor, "m2")
    before = AuditEntry.objects.count()
    with pytest.raises(Conflict) as err:
        submit(account, bot_actor, "m2")
    assert "no mark price for BTC/USDT:USDT" in err.value.message
    order.refresh_from_db()
    assert (order.status, order.exchange_order_id, order.version) == ("pending", "", 1)
    assert not PaperOrder.objects.exists() and AuditEntry.objects.count() == before


def test_unsupported_type_is_refused_naming_the_field(account, bot_actor, staff_mark):
    staff_mark(account, "60000")
    register(account, bot_actor, "s1", type="stop", price="61000")
    with pytest.raises(ValidationFailed) as err:
        submit(account, bot_actor, "s1")
    assert list(err.value.fields) == ["type"]
    assert Order.objects.get(client_order_id="s1").status == "pending"
    assert not PaperOrder.objects.exists()


def test_a_given_exchange_id_becomes_the_venue_id_and_must_be_free(account, bot_actor):
    register(account, bot_actor, "g1", type="limit", price="1")
    register(account, bot_actor, "g2", type="limit", price="1")
    submit(account, bot_actor, "g1", exchange_order_id="BOT-7")
    assert PaperOrder.objects.get(client_order_id="g1").exchange_order_id == "BOT-7"
    with pytest.raises(Conflict) as err:
        submit(account, bot_actor, "g2", exchange_order_id="BOT-7")
    assert list(err.value.fields) == ["exchange_order_id"]
    assert Order.objects.get(client_order_id="g2").status == "pending"


def test_other_accounts_and_other_moves_do_not_touch_the_venue(bot_actor, staff_mark):
    live = AccountFactory(name="live-1", exchange="binance")
    OrderFactory(account=live, client_order_id="x", status="pending")
    order_transition(account=live, client_order_id="x", to_status="submitted", actor=bot_actor,
                     exchange_order_id="B-1")  # fmt: skip
    assert not PaperOrder.objects.exists()
    paper = AccountFactory(name="paper-x")
    OrderFactory(account=paper, client_order_id="p", status="pending")
    order_transition(account=paper, client_order_id="p", to_status="cancelled", actor=bot_actor)
    assert not PaperOrder.objects.exists()


# --- cancels -------------------------------------------------------------------------------
def test_cancel_of_a_resting_order_cancels_it_on_the_venue(account, bot_actor):
    register(account, bot_actor, "c1", type="limit", price="100")
    submit(account, bot_actor, "c1")
    order_transition(account=account, client_order_id="c1", to_status="cancelled",
                     actor=bot_actor, reason="changed my mind")  # fmt: skip
    venue = PaperOrder.objects.get()
    assert venue.status == "canceled"
    assert_audited(venue, action="paper.order_cancel", actor=bot_actor, reason="changed my mind",
                   before={"status": "open"}, after={"status": "canceled"})  # fmt: skip


def test_cancel_of_an_order_the_venue_filled_is_refused(account, bot_actor, staff_mark):
    staff_mark(account, "60000")
    register(account, bot_actor, "c2")
    submit(account, bot_actor, "c2")
    with pytest.raises(Conflict) as err:
        order_transition(account=account, client_order_id="c2", to_status="cancelled",
                         actor=bot_actor)  # fmt: skip
    assert "already filled" in err.value.message and "/paper/trades/?order=c2" in err.value.message
    assert Order.objects.get(client_order_id="c2").status == "submitted"


# --- the bulk path -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [3, 30])
def test_bulk_submit_places_and_fills_every_order(account, bot_actor, staff_mark, n):
    staff_mark(account, "60000")
    PaperBalance.objects.create(account=account, currency="USDT", total=D(0))
    for i in range(n):
        OrderFactory(account=account, client_order_id=f"b{i}", status="pending", type="market",
                     price=None, quantity=D("0.01"), symbol=SYMBOL)  # fmt: skip
    requests = [TransitionRequest(client_order_id=f"b{i}", status="submitted") for i in range(n)]
    requests.append(TransitionRequest(client_order_id="b0", status="cancelled"))  # 2nd move
    with CaptureQueriesContext(connection) as ctx:
        results = order_bulk_transition(account=account, requests=requests, actor=bot_actor)
    assert [r.ok for r in results] == [True] * n + [False]
    assert isinstance(results[-1].error, Conflict)  # one venue move per order per request
    assert PaperTrade.objects.count() == n
    assert PaperPosition.objects.get(account=account).qty == D("0.01") * n
    for order in Order.objects.filter(account=account):
        assert order.exchange_order_id == venue_order_id(order)
    assert AuditEntry.objects.filter(action="paper.trade").count() == n
    assert len(ctx.captured_queries) <= 16, [q["sql"][:60] for q in ctx.captured_queries]


def _bulk_count(account, actor, n, prefix):
    for i in range(n):
        OrderFactory(account=account, client_order_id=f"{prefix}{i}", status="pending",
                     type="market", price=None, quantity=D("0.01"), symbol=SYMBOL)  # fmt: skip
    requests = [
        TransitionRequest(client_order_id=f"{prefix}{i}", status="submitted") for i in range(n)
    ]
    with CaptureQueriesContext(connection) as ctx:
        order_bulk_transition(account=account, requests=requests, actor=actor)
    return len(ctx.captured_queries)


def test_bulk_statement_count_does_not_grow_with_orders(account, bot_actor, staff_mark):
    staff_mark(account, "60000")
    # (20: within SQLite's bound parameters per insert; PostgreSQL copies any number)
    assert _bulk_count(account, bot_actor, 2, "s") == _bulk_count(account, bot_actor, 20, "t")


# --- spot ----------------------------------------------------------------------------------
def test_spot_trade_moves_base_and_quote_balances_and_no_position(bot_actor, staff_mark):
    spot = AccountFactory(name="paper-spot", market_type="spot")
    staff_mark(spot, "50000", symbol="BTC/USDT")
    PaperBalance.objects.create(account=spot, currency="USDT", free=D(1000), total=D(1000))
    register(spot, bot_actor, "sp1", qty="0.01", symbol="BTC/USDT")
    submit(spot, bot_actor, "sp1")
    fee = D("0.01") * D("50000") * D("0.0005")
    assert PaperBalance.objects.get(account=spot, currency="BTC").total == D("0.01")
    assert PaperBalance.objects.get(account=spot, currency="USDT").total == D(500) - fee
    assert not PaperPosition.objects.filter(account=spot).exists()
    assert PaperTrade.objects.get().fee_currency == "USDT"


def test_a_spot_order_the_balances_cannot_pay_for_is_refused_by_the_venue(bot_actor, staff_mark):
    # an unfunded buy took USDT below zero: the local books cannot hold that, so every pass
    # found a balance_mismatch whose repair was deferred (a persistent desync)
    spot = AccountFactory(name="paper-spot", market_type="spot")
    staff_mark(spot, "50000", symbol="BTC/USDT")
    PaperBalance.objects.create(account=spot, currency="USDT", free=D(100), total=D(100))
    # when: a market buy needing 500 USDT and the fee arrives
    register(spot, bot_actor, "poor", qty="0.01", symbol="BTC/USDT")
    submit(spot, bot_actor, "poor")
    # then: rejected on the venue, nothing traded, no balance moved, the reason recorded
    venue = PaperOrder.objects.get(account=spot, client_order_id="poor")
    assert (venue.status, venue.filled) == ("rejected", 0)
    assert not PaperTrade.objects.filter(account=spot).exists()
    assert venue_usdt(spot).free == D(100)
    assert not PaperBalance.objects.filter(account=spot, currency="BTC").exists()
    entry = AuditEntry.objects.get(action="paper.order_cancel", target_id=str(venue.pk))
    assert entry.reason == (
        "insufficient funds on the paper venue: the trade needs 500.25 USDT, "
        "the free balance is 100"
    )
    # and: a resting sell of BTC the account does not hold is cancelled when it is crossed
    register(spot, bot_actor, "short", side="sell", type="limit", qty="0.01", price="51000",
             symbol="BTC/USDT")  # fmt: skip
    submit(spot, bot_actor, "short")
    assert PaperOrder.objects.get(client_order_id="short").status == "open"
    staff_mark(spot, "52000", symbol="BTC/USDT")
    assert PaperOrder.objects.get(client_order_id="short").status == "canceled"
    assert not PaperTrade.objects.filter(account=spot).exists()
    assert [b.free >= 0 for b in PaperBalance.objects.filter(account=spot)] == [True]


# --- the adapter reads what the venue did ---------------------------------------------------
def test_fetch_my_trades_and_marks_from_the_paper_tables(account, bot_actor, staff_mark):
    staff_mark(account, "60000")
    staff_mark(account, "3000", symbol="ETH/USDT:USDT")
    for coid, symbol in (("t1", SYMBOL), ("t2", "ETH/USDT:USDT"), ("t3", SYMBOL)):
        register(account, bot_actor, coid, symbol=symbol)
        submit(account, bot_actor, coid)
    other = AccountFactory(name="paper-other")
    staff_mark(other, "60000")
    register(other, bot_actor, "o1")
    submit(other, bot_actor, "o1")
    adapter = adapter_for(account)
    since = timezone.now() - timedelta(minutes=1)
    trades = adapter.fetch_my_trades(since)
    assert trades.complete and trades.covered_from == since
    assert [t.client_order_id for t in trades.items] == ["t1", "t2", "t3"]
    first = trades.items[0]
    venue = PaperTrade.objects.get(client_order_id="t1")
    assert (first.trade_id, first.exchange_order_id, first.quantity, first.price, first.fee,
            first.fee_currency, first.liquidity, first.executed_at) == (
        venue.trade_id, venue.exchange_order_id, D("0.1"), D("60000"), venue.fee, "USDT",
        "taker", venue.executed_at,
    )  # fmt: skip
    assert [t.client_order_id for t in adapter.fetch_my_trades(since, [SYMBOL]).items] == [
        "t1", "t3",
    ]  # fmt: skip
    assert adapter.fetch_my_trades(timezone.now() + timedelta(seconds=5)).items == []
    with pytest.raises(ValueError):
        adapter.fetch_my_trades(since.replace(tzinfo=None))
    marks = adapter.fetch_mark_prices([SYMBOL, "ETH/USDT:USDT"])
    assert marks.complete and [(m.symbol, m.price, m.source) for m in marks.items] == [
        (SYMBOL, D("60000"), "mark"), ("ETH/USDT:USDT", D("3000"), "mark"),
    ]  # fmt: skip
    missing = adapter.fetch_mark_prices([SYMBOL, "SOL/USDT:USDT"])
    assert not missing.complete and "SOL/USDT:USDT" in missing.note
    assert [m.symbol for m in missing.items] == [SYMBOL]
    assert adapter.trade_history_policy().max_lookback is None


# --- P&L: the pass prices paper positions at the venue's mark -------------------------------
def test_a_bot_trading_paper_sees_pnl_move_with_the_paper_mark(account, bot_actor, staff_mark):
    from reconciliation.models import Discrepancy
    from reconciliation.services import run_reconciliation
    from tradingstate.models import MarkPrice
    from tradingstate.selectors.pnl import pnl_report

    # given: a mark of 60,000; the bot's market buy of 0.1 filled by the venue, and the venue's
    # trade posted as its fill (what a bot reads from GET .../paper/trades/)
    staff_mark(account, "60000")
    register(account, bot_actor, "pnl1")
    submit(account, bot_actor, "pnl1")
    trade = PaperTrade.objects.get(account=account)
    fill_record(
        account=account, client_order_id="pnl1", trade_id=trade.trade_id,
        quantity=trade.quantity, price=trade.price, fee=trade.fee,
        fee_currency=trade.fee_currency, executed_at=trade.executed_at, actor=bot_actor,
    )  # fmt: skip
    # when a pass runs: the venue's mark is fetched and stored
    first = run_reconciliation(account)
    assert first.status == "completed"
    mark = MarkPrice.objects.get(account=account, symbol=SYMBOL)
    assert (mark.price, mark.source, mark.stale) == (D("60000"), "mark", False)
    line = pnl_report(account).positions[0]
    assert (line.symbol, line.qty, line.avg_entry_price) == (SYMBOL, D("0.1"), D("60000"))
    assert (line.mark_price, line.unrealized_pnl) == (D("60000"), D("0"))
    # when staff move the venue's mark to 61,000 and the next pass runs
    staff_mark(account, "61000")
    second = run_reconciliation(account)
    # then the P&L moved with the paper mark: 0.1 x (61,000 - 60,000)
    assert second.status == "completed"
    line = pnl_report(account).positions[0]
    assert (line.mark_price, line.unrealized_pnl) == (D("61000"), D("100"))
    # the venue's position (qty and entry price) agrees with the book the bot's fill built
    kinds = set(Discrepancy.objects.filter(account=account).values_list("type", flat=True))
    assert not kinds & {"position_mismatch", "entry_price_mismatch"}, kinds


# --- marks ---------------------------------------------------------------------------------
def test_mark_set_validates_and_refuses_non_paper_accounts(staff_actor):
    paper = AccountFactory(name="paper-m")
    for bad, field in (("0", "price"), ("-1", "price"), ("abc", "price")):
        with pytest.raises(ValidationFailed) as err:
            paper_mark_set(account=paper, symbol=SYMBOL, price=bad, actor=staff_actor)
        assert field in err.value.fields
    with pytest.raises(ValidationFailed) as err:
        paper_mark_set(account=paper, symbol=" BTC/USDT", price="1", actor=staff_actor)
    assert "symbol" in err.value.fields
    live = AccountFactory(name="live-m", exchange="bybit")
    with pytest.raises(ValidationFailed) as err:
        paper_mark_set(account=live, symbol=SYMBOL, price="1", actor=staff_actor)
    assert "account" in err.value.fields
    assert not PaperMarkPrice.objects.exists()


# --- the random walk -----------------------------------------------------------------------
def _walk_path(settings, seed, ticks):
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(update={"paper_walk_seed": seed})
    account = AccountFactory(name=f"walk-{seed}-{ticks[0]}")
    paper_mark_set(account=account, symbol=SYMBOL, price="60000", actor=Actor.system("t"))
    out = []
    for tick in ticks:
        paper_marks_walk(tick=tick)
        out.append(PaperMarkPrice.objects.get(account=account).price)
    return out


def test_walk_is_deterministic_idempotent_per_tick_and_audited(settings):
    path = _walk_path(settings, 5, [10, 11, 12])
    assert len(set(path)) == 3
    assert _walk_path(settings, 5, [20, 21, 22]) == path  # same seed: same path
    assert _walk_path(settings, 6, [10, 11, 12]) != path
    # a tick delivered twice moves nothing the second time
    repeat = _walk_path(settings, 5, [30, 30, 31, 31])
    assert repeat == [path[0], path[0], path[1], path[1]]
    mark = PaperMarkPrice.objects.filter(account__name="walk-5-30").get()
    assert mark.walk_steps == 2
    entries = AuditEntry.objects.filter(action="paper.mark_set", target_id=str(mark.pk))
    assert entries.count() == 3  # created, then two steps
    assert entries.filter(actor_name="system:paper-walk").count() == 2


def test_walk_skips_marks_turned_off_and_fills_resting_orders_it_crosses(
    account, bot_actor, staff_mark, settings
):
    staff_mark(account, "60000")
    staff_mark(account, "3000", symbol="ETH/USDT:USDT", walk=False)
    # a resting buy just below the mark: some step of the seeded walk crosses it
    register(account, bot_actor, "w1", type="limit", price="59990")
    submit(account, bot_actor, "w1")
    for tick in range(1, 200):
        paper_marks_walk(tick=tick)
        if PaperTrade.objects.exists():
            break
    trade = PaperTrade.objects.get()
    assert (trade.price, trade.liquidity) == (D("59990"), "maker")
    assert AuditEntry.objects.get(action="paper.trade").actor_name == "system:paper-walk"
    assert PaperMarkPrice.objects.get(symbol="ETH/USDT:USDT").price == D("3000")


def test_ticker_enqueues_one_walk_step_per_interval(settings):
    from reconciliation.ticker import Ticker

    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(
        update={"paper_walk_interval_seconds": 5}
    )
    now = [100.0]
    walked = []
    ticker = Ticker(enqueue=lambda *a, **k: None, enqueue_walk=walked.append,
                    wall_clock=lambda: now[0])  # fmt: skip
    for t in (100.0, 101.0, 104.9, 105.0, 109.0, 115.2):
        now[0] = t
        ticker.tick()
    assert walked == [20, 21, 23]
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(
        update={"paper_walk_interval_seconds": 0}
    )
    now[0] = 500.0
    ticker.tick()
    assert walked == [20, 21, 23]  # off
