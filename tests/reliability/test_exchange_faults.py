"""Exchange faults from the loopback fake Bybit, one per fetch, through the real ccxt client:
the pass is incomplete (network class) or failed (authentication), nothing is repaired on
the strength of a failed, truncated or outdated fetch, and retries are bounded and honour
Retry-After (the ticker's backoff)."""

from __future__ import annotations

import itertools
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from reconciliation.models import Discrepancy, Repair
from reconciliation.services import run_reconciliation
from reconciliation.ticker import Ticker
from tests.fakes.exchange_server import FakeExchangeServer, FakeOrder
from tests.fakes.fixtures import fake_account
from tests.fakes.scenarios import seed_derivatives
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.models import Balance, ExchangeAccount, Order, Position
from tradingstate.services import fill_record, order_register, order_transition

pytestmark = [requires_postgres]

ORDERS = "/v5/order/realtime"
POSITIONS = "/v5/position/list"
BALANCES = "/v5/account/wallet-balance"
BINANCE_BALANCES = "/fapi/v3/account"  # the 418 IP ban is Binance's
BINANCE_ORDER = "/fapi/v1/order"


def book() -> dict:
    """The local book, for 'nothing changed' comparisons."""
    return {
        "orders": sorted(
            Order.objects.values_list("client_order_id", "status", "filled_qty", "version")
        ),
        "positions": sorted(Position.objects.values_list("symbol", "qty", "version")),
        "balances": sorted(Balance.objects.values_list("currency", "total", "version")),
    }


def synced_account(server, exchange="bybit", **fields):
    """A Bybit swap account whose local book equals the venue (one clean pass made it so),
    with every local order past the grace window: a fetch read as 'empty' would cancel,
    zero and close things."""
    seed_derivatives(getattr(server, exchange))
    account = fake_account(server, exchange, "swap", name=f"{exchange}-faults", save=True, **fields)
    first = run_reconciliation(account, "manual")
    assert first.status == "completed", first.error
    Order.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    again = run_reconciliation(account, "manual")
    assert again.status == "completed" and again.discrepancies_found == 0, again.error
    assert Order.objects.filter(status__in=Order.ACTIVE_STATUSES).count() == 2
    assert Position.objects.exclude(qty=0).count() == 2 and Balance.objects.exists()
    return account


# (fault, path, fault options, expected run status, expected retry_after, error needle)
FAULTS = [
    ("timeout", ORDERS, {"sleep": 1.5}, "incomplete", None, "RequestTimeout"),
    ("429", POSITIONS, {"retry_after": "7"}, "incomplete", 7, "RateLimited"),
    ("418", BINANCE_BALANCES, {"retry_after": "120"}, "incomplete", 120, "RateLimited"),
    ("503_html", ORDERS, {}, "incomplete", None, "ExchangeUnavailable"),
    ("auth", POSITIONS, {}, "failed", None, "authentication failed"),
    ("html", BALANCES, {}, "incomplete", None, "BadExchangeResponse"),
    ("null", POSITIONS, {}, "incomplete", None, "BadExchangeResponse"),
    ("missing_keys", ORDERS, {}, "incomplete", None, "BadExchangeResponse"),
    ("endless_cursor", ORDERS, {}, "incomplete", None, "pages"),
]


@pytest.mark.django_db
@pytest.mark.bound(60)
@pytest.mark.parametrize(
    ("fault", "path", "options", "status", "retry_after", "needle"),
    FAULTS,
    ids=[f"{f}-{p.rsplit('/', 1)[-1]}" for f, p, *_ in FAULTS],
)
def test_one_fault_per_fetch_repairs_nothing(
    fake_exchange, fake_credentials, figure, fault, path, options, status, retry_after, needle
):
    # given
    account = synced_account(fake_exchange, "binance" if path.startswith("/fapi") else "bybit")
    account.ccxt_options["timeout"] = 1000
    account.save()
    before = book()
    repairs_before = Repair.objects.count()
    fake_exchange.requests.clear()
    fake_exchange.fail(path, fault, **options)
    # when
    run = run_reconciliation(account, "schedule")
    # then
    assert run.status == status, (run.status, run.error)
    assert needle in run.error, run.error
    assert run.retry_after_seconds == retry_after
    assert run.repairs_applied == 0 and Repair.objects.count() == repairs_before
    assert book() == before
    hits = sum(1 for _, p, _ in fake_exchange.requests if p == path)
    limit = 20 if fault == "endless_cursor" else 1  # the page cap; no silent retries
    assert 1 <= hits <= limit, hits
    account.refresh_from_db()
    if status == "failed":
        assert not account.enabled and "authentication" in account.disabled_reason
    else:
        assert account.enabled
        assert Discrepancy.objects.filter(run=run, type="fetch_error").exists()
        fake_exchange.reset()
        after = run_reconciliation(account, "schedule")
        assert after.status == "completed" and after.discrepancies_found == 0
    figure(ops=1, fault=fault, status=run.status, requests=hits, repairs=0, lost=0, duplicates=0)


@pytest.mark.django_db
@pytest.mark.bound(60)
def test_not_found_inside_the_grace_window_leaves_the_order_alone(
    fake_exchange, fake_credentials, figure
):
    # given: a bot's order submitted a moment ago, not yet in the venue's open list, and
    # the venue answers "order does not exist" to single-order queries
    account = synced_account(fake_exchange, "binance")
    actor = Actor.system("bot")
    order_register(account=account, client_order_id="fresh1", symbol="BTC/USDT:USDT",
                   side="buy", quantity="0.01", price="50000", actor=actor)  # fmt: skip
    order_transition(account=account, client_order_id="fresh1", to_status="submitted",
                     exchange_order_id="999", actor=actor)  # fmt: skip
    fake_exchange.fail(BINANCE_ORDER, "not_found")
    before = book()
    # when
    run = run_reconciliation(account, "schedule")
    # then: not looked up, not declared stale
    assert run.status == "completed" and run.repairs_applied == 0, run.error
    assert book() == before
    assert Order.objects.get(client_order_id="fresh1").status == "submitted"
    assert BINANCE_ORDER not in fake_exchange.paths()
    # past the grace window the single-order query decides: not found -> cancelled, but
    # only after stale_not_found_passes (3) such passes a grace window apart (issue 14;
    # grace 0 here so the passes may follow each other at once)
    Order.objects.filter(client_order_id="fresh1").update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    ExchangeAccount.objects.filter(pk=account.pk).update(stale_order_grace_seconds=0)
    for n in range(1, 4):
        later = run_reconciliation(account, "schedule")
        assert BINANCE_ORDER in fake_exchange.paths()
        status = Order.objects.get(client_order_id="fresh1").status
        assert status == ("cancelled" if n == 3 else "submitted"), (n, later.error)
    figure(ops=4, repairs=later.repairs_applied, lost=0, duplicates=0)


class HookedServer(FakeExchangeServer):
    """Runs ``hook`` once, right after answering ``hook_path`` (the exchange's snapshot is
    then taken; the local book changes before the pass reads it)."""

    hook_path = ""
    hook = None

    def handle(self, method, path, query, headers):
        answer = super().handle(method, path, query, headers)
        if path == self.hook_path and self.hook is not None:
            hook, self.hook = self.hook, None
            done = threading.Event()

            def run():
                try:
                    hook()
                finally:
                    connection.close()
                    done.set()

            threading.Thread(target=run).start()
            done.wait(20)
        return answer


@pytest.mark.django_db(transaction=True)
@pytest.mark.bound(60)
def test_a_snapshot_older_than_a_later_fill_never_overwrites_it(fake_credentials, figure):
    # given: a synced account and a bot order on the venue
    server = HookedServer().start()
    try:
        account = synced_account(server)
        actor = Actor(type="bot", name="bot", correlation_id="r1")
        order_register(account=account, client_order_id="late1", symbol="BTC/USDT:USDT",
                       side="buy", quantity="0.01", price="50000", actor=actor)  # fmt: skip
        order_transition(account=account, client_order_id="late1", to_status="submitted",
                         exchange_order_id="1999", actor=actor)  # fmt: skip
        server.bybit.orders.append(
            FakeOrder("1999", "BTCUSDT", "buy", "0.010", "50000", client_order_id="late1")
        )
        position = Position.objects.get(symbol="BTC/USDT:USDT")

        # when: the venue's positions are read (0.080), then the bot's fill lands locally
        def fill():
            fill_record(account=account, client_order_id="late1", trade_id="T-late",
                        quantity="0.01", price="50000", actor=actor)  # fmt: skip

        server.hook_path, server.hook = POSITIONS, fill
        run = run_reconciliation(account, "schedule")

        # then: the fill's position survives; the outdated snapshot repaired nothing of it
        assert run.status == "completed", run.error
        after = Position.objects.get(symbol="BTC/USDT:USDT")
        assert after.qty == position.qty + Decimal("0.01"), (position.qty, after.qty)
        assert not Repair.objects.filter(run=run, status="applied").exists()
        # the venue catches up (its position includes the fill): the next pass is clean
        for p in server.bybit.positions:
            if p.symbol == "BTCUSDT" and p.kind == "linear":
                # a venue re-averages its entry price over the added fill, as ours does
                qty = Decimal(p.qty) + Decimal("0.01")
                cost = Decimal(p.qty) * Decimal(p.entry_price) + Decimal("0.01") * 50000
                p.qty, p.entry_price = str(qty), str((cost / qty).quantize(Decimal("0.1")))
        server.bybit.orders[-1].filled, server.bybit.orders[-1].status = "0.010", "closed"
        settled = run_reconciliation(account, "schedule")
        assert settled.discrepancies_found == 0, list(settled.discrepancies.values("type", "key"))
    finally:
        server.stop()
    figure(ops=2, repairs=0, lost=0, duplicates=0)


@pytest.mark.django_db
@pytest.mark.bound(90)
def test_ticker_backs_off_honouring_retry_after_and_recovers(
    fake_exchange, fake_credentials, figure
):
    # given: positions answer 429 Retry-After 40 on every call; a 5 s cadence
    account = synced_account(fake_exchange, reconciliation_interval_seconds=5)
    fake_exchange.fail(POSITIONS, "429", retry_after="40")
    now = [0.0]
    passes: list[tuple[float, str]] = []

    def enqueue(account_id, trigger, run_id=None):
        run = run_reconciliation(account_id, trigger, run_id=run_id)
        passes.append((now[0], run.status))

    ticker = Ticker(enqueue=enqueue, clock=lambda: now[0], accounts=[account.name])
    # when: 200 simulated seconds of faults, then 30 of normal service
    while now[0] < 200:
        ticker.tick()
        now[0] += 1
    faulty = list(passes)
    fake_exchange.reset()
    while now[0] < 260:
        ticker.tick()
        now[0] += 1
    # then: bounded attempts, spaced by at least Retry-After
    times = [t for t, _ in faulty]
    assert all(s == "incomplete" for _, s in faulty)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g >= 40 for g in gaps), gaps
    assert len(faulty) <= 200 // 40 + 1
    # recovered: the cadence is 5 s again
    healthy = [t for t, s in passes[len(faulty) :] if s == "completed"]
    assert len(healthy) >= 5, passes
    assert [b - a for a, b in itertools.pairwise(healthy[1:])] == [5.0] * (len(healthy) - 2)
    assert not Repair.objects.filter(run__status="incomplete", status="applied").exists()
    figure(ops=len(passes), attempts_during_fault=len(faulty), gaps=gaps, repairs=0, lost=0,
           duplicates=0)  # fmt: skip
