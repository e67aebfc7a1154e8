"""Issue 15 items 1 and 3 in the pass: mark prices fetched in one call and stored per
instrument (kept, marked stale, when a fetch fails: never zero), and entry_price_mismatch
with its repair (the venue's entry price adopted as an accounting adjustment, audited,
realized P&L untouched). Against the real ccxt client and the loopback fake exchange."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from reconciliation import diff as d
from reconciliation.models import Discrepancy, Repair
from reconciliation.services import repair_apply, run_reconciliation
from tests.audit import assert_audited
from tests.counting import compiles
from tests.fakes.exchange_server import FakeBalance, FakeTicker
from tests.fakes.memory import MemoryExchange
from tests.fakes.scenarios import seed_derivatives
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.exchanges import base as ex
from tradingstate.models import AuditEntry, MarkPrice, Position
from tradingstate.rules.marks import mark_is_stale
from tradingstate.selectors.pnl import pnl_report

pytestmark = pytest.mark.django_db

TICKER_PATHS = {"bybit": "/v5/market/tickers", "binance": "/fapi/v1/premiumIndex"}


def _now_ms() -> int:
    return int(timezone.now().timestamp() * 1000)


def _venue_with_prices(fake_exchange, exchange: str):
    venue = getattr(fake_exchange, exchange)
    seed_derivatives(venue)
    venue.tickers += [
        FakeTicker("BTCUSDT", last="50210.5", mark="50200.25", time_ms=_now_ms()),
        FakeTicker("ETHUSDT", last="3001.5", mark="3000.75", time_ms=_now_ms()),
    ]
    return venue


def _local_books_agreeing(account, **entry_over):
    """Local positions equal to seed_derivatives' (qty and entry), with accounting figures."""
    entries = {"BTC/USDT:USDT": D("50100.5"), "ETH/USDT:USDT": D("3100"), **entry_over}
    Position.objects.create(
        account=account,
        symbol="BTC/USDT:USDT",
        qty=D("0.08"),
        entry_price=entries["BTC/USDT:USDT"],
        realized_pnl=D("12.5"),
        fees=D("1.25"),
        fill_count=3,
    )
    Position.objects.create(
        account=account,
        symbol="ETH/USDT:USDT",
        qty=D("-1.25"),
        entry_price=entries["ETH/USDT:USDT"],
    )


@pytest.mark.parametrize("exchange", ["bybit", "binance"])
def test_the_pass_stores_every_positions_price_from_one_call(
    fake_exchange, make_fake_account, exchange
):
    # given: a derivative account whose positions agree with the venue's
    _venue_with_prices(fake_exchange, exchange)
    account = make_fake_account(exchange, "swap", name=f"{exchange}-marks", save=True)
    _local_books_agreeing(account)
    # when
    run = run_reconciliation(account)
    # then: one ticker call; one MarkPrice per instrument, the venue's mark with its time
    assert fake_exchange.paths().count(TICKER_PATHS[exchange]) == 1
    marks = {m.symbol: m for m in MarkPrice.objects.filter(account=account)}
    assert {s: (m.price, m.source, m.stale) for s, m in marks.items()} == {
        "BTC/USDT:USDT": (D("50200.25"), "mark", False),
        "ETH/USDT:USDT": (D("3000.75"), "mark", False),
    }
    assert abs(marks["BTC/USDT:USDT"].time - timezone.now()) < timedelta(minutes=1)
    assert run.status == "completed"
    assert not Discrepancy.objects.filter(run=run, type="entry_price_mismatch").exists()


def test_a_failed_price_fetch_keeps_the_previous_price_marked_stale_never_zero(
    fake_exchange, make_fake_account, caplog
):
    # given: a first pass stored the prices
    _venue_with_prices(fake_exchange, "bybit")
    account = make_fake_account("bybit", "swap", name="bybit-stale", save=True)
    _local_books_agreeing(account)
    run_reconciliation(account)
    before = {m.symbol: m.price for m in MarkPrice.objects.filter(account=account)}
    # when: the next pass cannot get prices (429)
    fake_exchange.fail(TICKER_PATHS["bybit"], "429", retry_after="3")
    with caplog.at_level(logging.WARNING, logger="reconciliation"):
        run = run_reconciliation(account)
    # then: the previous prices are kept, flagged stale with the reason; the pass itself
    # is complete (prices are not state of record) and the log says why
    marks = list(MarkPrice.objects.filter(account=account))
    assert {m.symbol: m.price for m in marks} == before
    assert all(m.stale and "RateLimited" in m.error for m in marks)
    assert run.status == "completed"
    assert any("Mark prices not refreshed" in r.getMessage() for r in caplog.records)
    # and every door shows them as stale, valued at the kept price (not zero)
    report = pnl_report(account)
    btc = next(p for p in report.positions if p.symbol == "BTC/USDT:USDT")
    assert btc.mark_stale and btc.mark_price == D("50200.25")
    assert btc.unrealized_pnl == (D("50200.25") - D("50100.5")) * D("0.08")
    assert report.totals.stale == ("BTC/USDT:USDT", "ETH/USDT:USDT")
    # when the venue answers again, the prices are fresh again
    fake_exchange.reset()
    run_reconciliation(account)
    assert not MarkPrice.objects.filter(account=account, stale=True).exists()


def test_a_symbol_the_venue_does_not_price_keeps_its_old_price_stale(
    fake_exchange, make_fake_account
):
    venue = _venue_with_prices(fake_exchange, "bybit")
    account = make_fake_account("bybit", "swap", name="bybit-partial", save=True)
    _local_books_agreeing(account)
    run_reconciliation(account)
    venue.tickers.pop()  # ETH's price is gone
    run_reconciliation(account)
    marks = {m.symbol: m for m in MarkPrice.objects.filter(account=account)}
    assert not marks["BTC/USDT:USDT"].stale
    assert marks["ETH/USDT:USDT"].stale and marks["ETH/USDT:USDT"].price == D("3000.75")


def test_an_old_price_is_stale_by_age(settings):
    now = timezone.now()
    limit = settings.TRADINGSTATE.mark_price_max_age_seconds
    assert not mark_is_stale(stale=False, time=now, now=now, max_age_seconds=limit)
    old = now - timedelta(seconds=limit + 1)
    assert mark_is_stale(stale=False, time=old, now=now, max_age_seconds=limit)
    assert mark_is_stale(stale=True, time=now, now=now, max_age_seconds=limit)


# --- entry_price_mismatch ---------------------------------------------------------------------
def test_entry_price_mismatch_found_and_repaired_through_the_accounting_rules(
    fake_exchange, make_fake_account, caplog
):
    # given: quantities agree, our BTC entry is 50000 where the venue says 50100.5
    _venue_with_prices(fake_exchange, "bybit")
    account = make_fake_account("bybit", "swap", name="bybit-entry", save=True)
    _local_books_agreeing(account, **{"BTC/USDT:USDT": D("50000")})
    position = Position.objects.get(account=account, symbol="BTC/USDT:USDT")
    # when
    with caplog.at_level(logging.INFO, logger="reconciliation"):
        run = run_reconciliation(account)
    # then: one entry_price_mismatch, repaired: the venue's entry price adopted; quantity,
    # realized P&L and fees untouched; audited as an accounting adjustment
    found = Discrepancy.objects.get(run=run, type="entry_price_mismatch")
    assert found.key == "BTC/USDT:USDT" and found.status == "repaired"
    assert found.detail["local_entry_price"] == "50000"
    assert found.detail["exchange_entry_price"] == "50100.5"
    assert run.position_discrepancies == 1  # (orders and balances of the seed differ too)
    position.refresh_from_db()
    assert position.entry_price == D("50100.5")
    assert (position.qty, position.realized_pnl, position.fees) == (D("0.08"), D("12.5"), D("1.25"))
    assert position.version == 2
    entry = assert_audited(
        position,
        action="repair.apply",
        actor=Actor.system("reconciliation", run.pk),
        before={"entry_price": "50000", "realized_pnl": "12.5"},
        after={"entry_price": "50100.5", "realized_pnl": "12.5", "qty": "0.08"},
    )
    assert entry.after["adjustment"] == {"entry_price": "50100.5"}
    assert entry.discrepancy_id == found.pk
    assert Repair.objects.get(discrepancy=found).action == "position_entry_price"
    lines = [r.getMessage() for r in caplog.records]
    assert any(json.loads(x).get("type") == "entry_price_mismatch" for x in lines if x[:1] == "{")
    assert "Auto-repair applied: entry_price_mismatch BTC/USDT:USDT entry 50000 -> 50100.5" in lines
    # and the next pass is clean
    assert not Discrepancy.objects.filter(
        run=run_reconciliation(account), type="entry_price_mismatch"
    ).exists()


def test_entry_price_within_the_tolerance_is_no_discrepancy(fake_exchange, make_fake_account):
    _venue_with_prices(fake_exchange, "bybit")
    account = make_fake_account("bybit", "swap", name="bybit-close", save=True)
    # 50100.5 * 0.0001 = 5.01: 50096 is within, so no finding
    _local_books_agreeing(account, **{"BTC/USDT:USDT": D("50096")})
    run = run_reconciliation(account)
    assert not Discrepancy.objects.filter(run=run, type="entry_price_mismatch").exists()


def _entry_cfg(tolerance="0.0001"):
    return d.DiffConfig(now=timezone.now(), entry_price_tolerance=D(tolerance))


def test_diff_entry_price_rules():
    local = d.LocalSnapshot(positions=[d.LocalPosition(7, "BTC/USDT:USDT", D("1"), D("100"), 4)])

    def findings(venue_entry, qty="1", tolerance="0.0001"):
        venue = d.ExchangeSnapshot(
            positions=[ex.ExchangePosition("BTC/USDT:USDT", D(qty), venue_entry)]
        )
        return d.diff_positions(local, venue, _entry_cfg(tolerance))

    assert findings(D("100.01")) == []  # exactly at the tolerance: not beyond it
    [f] = findings(D("100.02"))
    assert f.type == d.ENTRY_PRICE_MISMATCH and f.repair.kind == "position_entry_price"
    assert (f.repair.target_id, f.repair.expected_version) == (7, 4)
    assert f.repair.values == {"symbol": "BTC/USDT:USDT", "entry_price": "100.02"}
    assert findings(None) == []  # the venue gives no entry price: no verdict
    assert findings(D("101"), tolerance="0.05") == []
    # a quantity mismatch is the position_mismatch (its repair sets the entry too), not both
    assert [f.type for f in findings(D("120"), qty="2")] == [d.POSITION_MISMATCH]


def test_a_bot_update_during_the_fetch_defers_the_entry_repair(account, bot_actor):
    # given: the venue's entry differs, and a bot moves the position while the pass fetches
    account.market_type = "swap"
    account.save()
    Position.objects.create(account=account, symbol="BTC/USDT", qty=D("1"), entry_price=D("100"))
    venue = MemoryExchange()
    venue.set_position("BTC/USDT", "1", "110")
    original = venue.fetch_positions

    def fetch_positions():
        Position.objects.filter(account=account).update(version=9)  # a bot's write
        return original()

    venue.fetch_positions = fetch_positions
    # when
    run = run_reconciliation(account, adapter=venue)
    # then: deferred, never overwritten
    found = Discrepancy.objects.get(run=run, type="entry_price_mismatch")
    assert found.status == "open"
    assert Position.objects.get(account=account).entry_price == D("100")
    assert Repair.objects.get(discrepancy=found).status == "deferred"


def test_staff_apply_the_entry_repair_when_auto_repair_is_off(account, staff_user):
    account.market_type, account.auto_repair = "swap", False
    account.save()
    Position.objects.create(account=account, symbol="BTC/USDT", qty=D("-2"), entry_price=None)
    venue = MemoryExchange()
    venue.set_position("BTC/USDT", "-2", "95.5")
    run = run_reconciliation(account, adapter=venue)
    found = Discrepancy.objects.get(run=run, type="entry_price_mismatch")
    assert found.status == "open"
    actor = Actor.for_user(staff_user, correlation_id="req-9")
    repair_apply(discrepancy=found, actor=actor, reason="adopt the venue's entry")
    position = Position.objects.get(account=account)
    # a position held without an entry price gets the venue's (an adjustment that opens it)
    assert (position.qty, position.entry_price, position.realized_pnl) == (D("-2"), D("95.5"), 0)
    assert_audited(
        position,
        action="repair.apply",
        actor=actor,
        reason="adopt the venue's entry",
        after={"entry_price": "95.5", "qty": "-2"},
    )
    assert AuditEntry.objects.filter(action="repair.apply", discrepancy_id=found.pk).count() == 1


def test_spot_accounts_price_their_non_quote_balances(fake_exchange, make_fake_account):
    venue = fake_exchange.bybit
    venue.balances += [FakeBalance("BTC", "0.5")]
    venue.tickers += [FakeTicker("BTCUSDT", last="50000", kind="spot", time_ms=_now_ms())]
    account = make_fake_account("bybit", "spot", name="bybit-spot", save=True)
    run_reconciliation(account)  # the balance is repaired in, and priced in the same pass
    mark = MarkPrice.objects.get(account=account)
    assert (mark.symbol, mark.price, mark.source) == ("BTC/USDT", D("50000"), "last")


def test_venue_without_prices_changes_nothing(account):
    # given: an adapter with no fetch_mark_prices (the memory venue), and a stored price
    account.market_type = "swap"
    account.save()
    Position.objects.create(account=account, symbol="BTC/USDT", qty=D("1"), entry_price=D("1"))
    now = timezone.now()
    MarkPrice.objects.create(
        account=account, symbol="BTC/USDT", price=D("2"), time=now, source="mark", fetched_at=now
    )
    venue = MemoryExchange()
    venue.set_position("BTC/USDT", "1", "1")
    run = run_reconciliation(account, adapter=venue)
    assert run.status == "completed"
    mark = MarkPrice.objects.get(account=account)
    assert (mark.price, mark.stale) == (D("2"), False)


@requires_postgres
def test_a_steady_pass_refreshes_its_prices_without_compiling_their_read(
    fake_exchange, make_fake_account, monkeypatch
):
    # given: a pass stored the prices; the venue's marks then move
    venue = _venue_with_prices(fake_exchange, "binance")
    account = make_fake_account("binance", "swap", name="binance-marks-steady", save=True)
    _local_books_agreeing(account)
    run_reconciliation(account)
    venue.tickers[0] = FakeTicker("BTCUSDT", last="50300", mark="50301.5", time_ms=_now_ms())
    compiled = compiles(monkeypatch)
    # when: the next pass
    run = run_reconciliation(account)
    during = list(compiled)
    # then: the new price is stored, the other refreshed, and their rows' read reused its
    # compiled statement (each pass runs it)
    assert run.status == "completed"
    marks = {m.symbol: (m.price, m.stale) for m in MarkPrice.objects.filter(account=account)}
    assert marks == {"BTC/USDT:USDT": (D("50301.5"), False), "ETH/USDT:USDT": (D("3000.75"), False)}
    assert "MarkPrice" not in during, during
