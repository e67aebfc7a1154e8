"""Many accounts per host (issue 17 point 5): a pass's venue calls at once, through the real
ccxt client against the fake exchange server; trades read after the order snapshot; one
request spacing per venue and key across concurrent passes."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.conf import settings

from reconciliation.diff import LocalSnapshot
from reconciliation.models import ReconciliationRun
from reconciliation.passes import fetch as f
from reconciliation.passes import run as run_module
from reconciliation.services import run_reconciliation
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.exchange_server import (
    FakeBalance,
    FakeMarket,
    FakeOrder,
    FakePosition,
    FakeTicker,
    FakeTrade,
)
from tradingstate.exchanges import adapter_for, pool
from tradingstate.models import ExchangeAccount

pytestmark = pytest.mark.django_db

# open orders; positions; balances (ccxt's binance reads them from the account endpoint)
SNAPSHOT_PATHS = ("/fapi/v1/openOrders", "/fapi/v3/positionRisk", "/fapi/v3/account")
TRADES_PATH = "/fapi/v1/userTrades"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _drifted_venue(fake) -> None:
    """Orders, positions, balances and trades on 2 symbols, some differing from local."""
    now = datetime.now(tz=UTC)

    def ago(minutes):
        return now - timedelta(minutes=minutes)

    venue = fake.binance
    venue.orders += [
        FakeOrder("1001", "BTCUSDT", "buy", "0.010", "49000", client_order_id="a1"),
        FakeOrder("1002", "ETHUSDT", "sell", "0.5", "3100", client_order_id="a2"),
        FakeOrder("1003", "ETHUSDT", "buy", "0.3", "2900", client_order_id="unknown"),
    ]
    venue.positions += [FakePosition("BTCUSDT", "0.020", "49000")]
    venue.futures_balances += [FakeBalance("USDT", "1000"), FakeBalance("BNB", "2")]
    venue.trades += [
        FakeTrade("501", "2001", "BTCUSDT", "buy", "0.020", "49000", _ms(ago(3))),
        FakeTrade("601", "2002", "ETHUSDT", "sell", "0.1", "3000", _ms(ago(2))),
    ]  # fmt: skip


def _account(make_fake_account, name="conc"):
    account = make_fake_account("binance", "swap", name=name, save=True)
    OrderFactory(account=account, client_order_id="a1", exchange_order_id="1001",
                 symbol="BTC/USDT:USDT", side="buy", quantity=D("0.010"), price=D("49000"),
                 status="submitted")  # fmt: skip
    PositionFactory(account=account, symbol="BTC/USDT:USDT", qty=D("0.030"))
    BalanceFactory(account=account, currency="USDT", free=D("900"), total=D("900"))
    return account


def _snapshot_fields(snapshot):
    return (
        snapshot.orders, snapshot.positions, snapshot.balances, snapshot.errors,
        [(t.symbol, t.trade_id) for t in snapshot.trades or []],
    )  # fmt: skip


def test_concurrent_fetch_reads_the_same_snapshot_as_sequential(fake_exchange, make_fake_account):
    # given: one account, its venue state on two symbols
    _drifted_venue(fake_exchange)
    account = _account(make_fake_account)
    cfg = settings.TRADINGSTATE
    got = []
    for sessions in (1, 3):
        adapter = adapter_for(account)
        group = f.Sessions(adapter, sessions)
        try:
            # when: the snapshot, then the trades (per symbol) and the marks
            snapshot, _retry, auth = f.fetch_snapshot(account, group)
            _, trades_auth, marks = f.fetch_trades(
                account, group, snapshot, LocalSnapshot(), {}, cfg, marks=["BTC/USDT:USDT"]
            )
        finally:
            group.close()
            adapter.close()
        assert len(group) == sessions and auth is None and trades_auth is None
        got.append((_snapshot_fields(snapshot), [p.symbol for p in marks.prices]))
    # then: the same orders, positions, balances, trades and marks either way
    assert got[0] == got[1]
    assert got[1][0][4] == [("BTC/USDT:USDT", "501"), ("ETH/USDT:USDT", "601")]


def test_concurrent_pass_finds_what_a_sequential_pass_finds(
    fake_exchange, make_fake_account, monkeypatch
):
    # given: two accounts with the same local state against the same venue state
    _drifted_venue(fake_exchange)
    findings = []
    for sessions, name in ((1, "seq"), (3, "conc")):
        account = _account(make_fake_account, name)
        monkeypatch.setattr(run_module, "PASS_SESSIONS", sessions)
        # when: a dry-run pass each, one call at a time / at once
        run = run_reconciliation(account, "manual", dry_run=True)
        assert run.status == ReconciliationRun.Status.COMPLETED, run.error
        findings.append(
            sorted(run.discrepancies.values_list("type", "key", "local_value", "exchange_value"))
        )
    # then: the same discrepancies
    assert findings[0] == findings[1] and findings[0]


def test_trades_are_read_after_the_order_snapshot(fake_exchange, make_fake_account):
    # given: a venue slow enough that concurrent calls overlap
    _drifted_venue(fake_exchange)
    account = _account(make_fake_account)
    fake_exchange.latency = 0.05
    # when
    run = run_reconciliation(account, "manual")
    # then: every trades request arrived after every snapshot request
    assert run.status == ReconciliationRun.Status.COMPLETED, run.error
    paths = fake_exchange.paths()
    snapshot = [i for i, p in enumerate(paths) if p in SNAPSHOT_PATHS]
    trades = [i for i, p in enumerate(paths) if p == TRADES_PATH]
    assert len(snapshot) == 3 and len(trades) == 52  # 26 windows of 7 days per symbol
    assert max(snapshot) < min(trades)


def test_concurrent_passes_on_one_key_share_its_request_spacing(fake_exchange, make_fake_account):
    # given: two Bybit accounts (no burst) on the same API key, 60 ms per request
    fake_exchange.bybit.balances.append(FakeBalance("USDT", "1000"))
    accounts = [make_fake_account("bybit", "swap", name=f"key-{i}", save=True) for i in range(2)]
    for account in accounts:
        ExchangeAccount.objects.filter(pk=account.pk).update(
            ccxt_options={**account.ccxt_options, "rateLimit": 60}
        )
    pool.reset()
    adapters = [adapter_for(ExchangeAccount.objects.get(pk=a.pk)) for a in accounts]
    for a in adapters:
        a.fetch_balances()  # markets loaded: only the calls below are timed
    stamps: list[float] = []
    lock = threading.Lock()

    def work(adapter):
        for _ in range(4):
            adapter.fetch_balances()
            with lock:
                stamps.append(time.monotonic())

    # when: both passes read at once, 4 calls each
    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(a,)) for a in adapters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a in adapters:
        a.close()
    # then: 8 calls on one key took at least 7 slots of 60 ms (not 3 per thread)
    assert time.monotonic() - started >= 7 * 0.06 * 0.95


class _Recording(f.Sessions):
    """The pass's own Sessions, keeping what each step handed ``run``."""

    def __init__(self, adapter, n):
        super().__init__(adapter, n)
        self.steps: list[list[int]] = []
        self.ran_on: dict[int, int] = {}  # the last step's call index -> its adapter's id

    def run(self, calls, weights=None):
        self.steps.append(list(weights or [1] * len(calls)))
        self.ran_on = {}

        def recorded(i, call):
            def run_one(adapter):
                self.ran_on[i] = id(adapter)
                return call(adapter)

            return run_one

        return super().run([recorded(i, c) for i, c in enumerate(calls)], weights)


def test_trades_and_marks_take_as_few_round_trips_as_the_sessions_allow(
    fake_exchange, make_fake_account
):
    # given: a Binance USD-M account (trades listed per symbol) with positions on 5 symbols,
    # read since its watermark (one request per symbol), 3 sessions, 1 mark wanted
    symbols = ["BTC", "ETH", "SOL", "XRP", "ADA"]
    fake_exchange.binance.markets += [
        FakeMarket(s, "USDT", "linear", amount_step="1", price_step="0.001") for s in symbols[2:]
    ]
    fake_exchange.binance.positions += [FakePosition(f"{s}USDT", "1", "10") for s in symbols]
    fake_exchange.binance.tickers.append(FakeTicker("BTCUSDT", "50000", mark="50010"))
    account = _account(make_fake_account, "five")
    ExchangeAccount.objects.filter(pk=account.pk).update(
        fills_watermark_at=datetime.now(tz=UTC) - timedelta(minutes=5)
    )
    account = ExchangeAccount.objects.get(pk=account.pk)
    adapter = adapter_for(account)
    group = _Recording(adapter, 3)
    try:
        snapshot, _retry, auth = f.fetch_snapshot(account, group)
        before = len(fake_exchange.paths())
        # when: the trades step with the marks
        _, trades_auth, marks = f.fetch_trades(
            account, group, snapshot, LocalSnapshot(), {}, settings.TRADINGSTATE,
            marks=["BTC/USDT:USDT"],
        )  # fmt: skip
    finally:
        group.close()
        adapter.close()
    assert auth is None and trades_auth is None and not marks.error, snapshot.errors
    assert not snapshot.errors, snapshot.errors
    assert [(p.symbol, p.price) for p in marks.prices] == [("BTC/USDT:USDT", D("50010"))]
    # then: the step's requests per call are known (2 + 2 + 1 symbols, then the marks) ...
    weights = group.steps[-1]
    assert weights == [2, 2, 1, 1]
    assert fake_exchange.paths()[before:].count(TRADES_PATH) == 5
    # ... and no session makes more than 2 of the 6 in a row (the marks join the share
    # of one symbol, not one of two: 3 round trips where 2 suffice)
    loads = {id(a): 0 for a in group.adapters}
    for i, adapter_id in group.ran_on.items():
        loads[adapter_id] += weights[i]
    assert sorted(loads.values()) == [2, 2, 2]


@pytest.mark.parametrize(
    ("weights", "sessions", "shares"),
    [
        ([1, 1, 1, 1], 3, [[0, 3], [1], [2]]),  # equal calls: round robin
        ([2, 2, 1, 1], 3, [[0], [1], [2, 3]]),  # the light call joins the lightest share
        ([3, 1, 1, 1], 2, [[0], [1, 2, 3]]),
        ([1, 1], 1, [[0, 1]]),  # one session: everything in order on it
        ([0, 0, 0], 2, [[0, 2], [1]]),  # a call counts as one request at least
    ],
)
def test_sessions_hand_each_call_to_the_least_loaded_session(
    fake_exchange, make_fake_account, weights, sessions, shares
):
    account = _account(make_fake_account, "shares")
    adapter = adapter_for(account)
    group = f.Sessions(adapter, sessions)
    try:
        assert group.shares(weights) == shares
        # every call still runs exactly once, its result in its own place
        results = group.run([lambda a, i=i: i for i in range(len(weights))], weights)
    finally:
        group.close()
        adapter.close()
    assert results == [(i, None) for i in range(len(weights))]
