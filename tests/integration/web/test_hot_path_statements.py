"""The bots' hot path in SQL statements, auth included: registration, transition and fill
each at most 6 on PostgreSQL and SQLite (issue 17, point 1), with no savepoint.

Counted with CaptureQueriesContext around one API request, so the token check, the rate
limit (its counter row: the zero-setup store), the account, the guard, the writes and the
audit row are all in the count. The time is bench/api.py's; the guarantees (idempotency,
kill switch, recovery gate, instruments, audit) are asserted here on the same requests.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from killswitch.services import killswitch_activate
from tests.api_support import API, assert_error, make_bot
from tests.factories import AccountFactory
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Instrument, Order, RateCounter

# real transactions: the service's atomic block is the outermost one, as in a request
pytestmark = pytest.mark.django_db(transaction=True)

MAX_STATEMENTS = 6
STAFF = Actor.system("tests")


@pytest.fixture
def venue_account():
    # a venue account (the paper venue simulates placement on its own tables)
    return AccountFactory(name="hot", exchange="binance", market_type="spot")


@pytest.fixture
def bot(venue_account):
    client, _user = make_bot("hot-bot", venue_account)
    return client


def _count(fn):
    with CaptureQueriesContext(connection) as ctx:
        response = fn()
    sql = [q["sql"] for q in ctx.captured_queries]
    return response, sql


def _body(coid: str, **over) -> dict:
    body = {
        "client_order_id": coid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "1",
        "price": "100",
    }
    return {**body, **over}


def _register(bot, coid, **over):
    return bot.post(f"{API}/accounts/hot/orders/", _body(coid, **over), format="json")


TRANSACTION_CONTROL = ("BEGIN", "COMMIT")


def _assert_shape(sql: list[str]) -> None:
    """At most 6 statements. On PostgreSQL BEGIN and COMMIT count (each is a round trip
    to the server); SQLite is a library in the process, where they are function calls, and
    they are left out of its count."""
    counted = [
        s
        for s in sql
        if connection.vendor == "postgresql" or s.split()[0].upper() not in TRANSACTION_CONTROL
    ]
    assert len(counted) <= MAX_STATEMENTS, "\n".join(sql)
    assert not any("SAVEPOINT" in s.upper() for s in sql), "\n".join(sql)


def test_registration_is_at_most_six_statements(bot, venue_account):
    Instrument.objects.create(account=venue_account, symbol="BTC/USDT", base="BTC", quote="USDT")
    _register(bot, "warm-up")  # the first request of a process warms caches of SQL text
    response, sql = _count(lambda: _register(bot, "o-1"))
    assert response.status_code == 201, response.content
    _assert_shape(sql)
    order = Order.objects.get(account=venue_account, client_order_id="o-1")
    entry = AuditEntry.objects.get(action="order.register", target_id=str(order.pk))
    assert entry.actor_name == "hot-bot" and entry.after["client_order_id"] == "o-1"
    assert entry.account_id == venue_account.pk and entry.target_type == "order"
    # the rate limit counted the requests in its row (the zero-setup store)
    assert RateCounter.objects.get().current >= 2
    if connection.vendor == "postgresql":
        # token+account with the rate counter's upsert, then ONE statement: the kill
        # switch's rows share-locked, the symbol and recovery checks, the insert and its
        # audit row; no BEGIN/COMMIT (autocommit: the statement is its own transaction)
        assert len(sql) == 2, "\n".join(sql)
        assert "tradingstate_ratecounter" in sql[0] and "knox_authtoken" in sql[0]
        assert "FOR SHARE" in sql[1] and "INSERT" in sql[1]


def test_registration_keeps_its_guarantees_on_the_short_path(bot, venue_account):
    Instrument.objects.create(account=venue_account, symbol="BTC/USDT", base="BTC", quote="USDT")
    # idempotent: the same content again is 200 with the same order, other content 409
    first = _register(bot, "same")
    again = _register(bot, "same")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["client_order_id"] == again.json()["client_order_id"] == "same"
    assert_error(_register(bot, "same", quantity="2"), 409, "conflict", {"quantity"})
    assert AuditEntry.objects.filter(action="order.register").count() == 1
    # instruments: an unknown symbol is refused naming the field, nothing written
    assert_error(_register(bot, "eth", symbol="ETH/USDT"), 400, "validation_error", {"symbol"})
    # recovery gate: 503 while the account's first pass after `recover` has not ended
    venue_account.recovery_started_at = timezone.now()
    venue_account.save(update_fields=["recovery_started_at"])
    assert_error(_register(bot, "during-recovery"), 503, "reconciliation_in_progress")
    venue_account.recovery_started_at = None
    venue_account.save(update_fields=["recovery_started_at"])
    # kill switch: 423 for a new order; a retry of one registered before the halt gets it
    killswitch_activate(reason="venue down", actor=STAFF, account=venue_account)
    assert_error(_register(bot, "after-halt"), 423, "kill_switch_active")
    assert _register(bot, "same").status_code == 200
    assert set(Order.objects.values_list("client_order_id", flat=True)) == {"same"}
    assert AuditEntry.objects.filter(action="order.register").count() == 1


def test_transition_is_at_most_six_statements(bot, venue_account):
    for coid in ("t-0", "t-1"):
        assert _register(bot, coid).status_code == 201
    bot.post(f"{API}/accounts/hot/orders/t-0/transition/", {"status": "submitted"}, format="json")
    response, sql = _count(
        lambda: bot.post(
            f"{API}/accounts/hot/orders/t-1/transition/",
            {"status": "submitted", "exchange_order_id": "E1", "reason": "placed"},
            format="json",
        )
    )
    assert response.status_code == 200, response.content
    _assert_shape(sql)
    order = Order.objects.get(client_order_id="t-1")
    assert (order.status, order.exchange_order_id, order.version) == ("submitted", "E1", 2)
    entry = AuditEntry.objects.get(action="order.transition", target_id=str(order.pk))
    assert entry.before["status"] == "pending" and entry.after["status"] == "submitted"
    assert entry.reason == "placed" and entry.actor_name == "hot-bot"
    if connection.vendor == "postgresql":
        # token+account+rate counter, the order read, then its compare-and-set write with
        # the audit row: no lock, no BEGIN/COMMIT
        assert len(sql) == 3, "\n".join(sql)
        assert '"version" = %s' in sql[2] and "tradingstate_auditentry" in sql[2]
    # an illegal move still changes nothing
    response = bot.post(
        f"{API}/accounts/hot/orders/t-1/transition/", {"status": "pending"}, format="json"
    )
    assert response.status_code == 409
    assert Order.objects.get(client_order_id="t-1").version == 2


def _fill(bot, coid, trade_id, qty="0.4", price="101"):
    return bot.post(
        f"{API}/accounts/hot/fills/",
        {"client_order_id": coid, "trade_id": trade_id, "quantity": qty, "price": price},
        format="json",
    )


def test_fill_is_at_most_six_statements(bot, venue_account):
    Instrument.objects.create(account=venue_account, symbol="BTC/USDT", base="BTC", quote="USDT")
    assert _register(bot, "f-1").status_code == 201
    bot.post(f"{API}/accounts/hot/orders/f-1/transition/", {"status": "submitted"}, format="json")
    assert _fill(bot, "f-1", "T0").status_code == 201  # the first fill creates the position
    response, sql = _count(lambda: _fill(bot, "f-1", "T1", qty="0.5", price="103"))
    assert response.status_code == 201, response.content
    if connection.vendor == "postgresql":
        _assert_shape(sql)
        # token+account+rate counter, the unlocked read, then the compare-and-set write of
        # fill+order+position+audit: no BEGIN/COMMIT
        assert len(sql) == 3, "\n".join(sql)
        assert "FOR UPDATE" not in sql[1] and '"version" = %s' in sql[2]
    else:
        # SQLite has no writable CTE: the fill, order, position and audit writes are four
        # statements, so 7 in all (BEGIN/COMMIT left out, as in _assert_shape)
        assert len([s for s in sql if s.split()[0] not in TRANSACTION_CONTROL]) <= 7
        assert not any("SAVEPOINT" in s.upper() for s in sql), "\n".join(sql)
    body = response.json()
    assert body["order"]["filled_qty"] == "0.9" and body["order"]["status"] == "partially_filled"
    order = Order.objects.get(client_order_id="f-1")
    position = order.account.positions.get(symbol="BTC/USDT")
    assert (order.filled_qty, order.remaining_qty, order.version) == (
        Decimal("0.9"),
        Decimal("0.1"),
        4,
    )
    # the accounting rules moved the position: the average entry, the fill count
    assert position.qty == Decimal("0.9") and position.version == 2
    assert position.fill_count == 2
    assert position.entry_price == Decimal("102.111111111111111111")  # (0.4*101 + 0.5*103) / 0.9
    fill = order.fills.get(trade_id="T1")
    assert (fill.symbol, fill.origin, fill.quantity) == ("BTC/USDT", "bot", Decimal("0.5"))
    entry = AuditEntry.objects.filter(action="fill.record").order_by("-id").first()
    assert entry.after["fill"]["trade_id"] == "T1" and entry.before["position"]["qty"] == "0.4"
    assert entry.target_id == str(fill.pk) and entry.actor_name == "hot-bot"
    # the same trade again: no second effect; an overfill: refused, nothing written
    assert _fill(bot, "f-1", "T1", qty="0.5", price="103").status_code == 200
    assert_error(_fill(bot, "f-1", "T2", qty="5"), 409, "overfill")
    order = Order.objects.get(client_order_id="f-1")
    assert (order.filled_qty, order.version) == (Decimal("0.9"), 4)
    assert order.account.positions.get(symbol="BTC/USDT").qty == Decimal("0.9")
    assert AuditEntry.objects.filter(action="fill.record").count() == 2
    assert order.fills.count() == 2


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks: PostgreSQL")
def test_fill_of_a_trade_recorded_meanwhile_is_not_counted_twice(bot, venue_account):
    """The locking read waits for the position's lock while a pass records the same trade
    (with no order: it did not know it yet); the read's snapshot misses that fill, so the
    one-statement write inserts nothing (ON CONFLICT), writes nothing else, and the service
    attaches the pass's fill to the order as the same trade posted again."""
    import threading

    from django.db import close_old_connections, transaction

    from tradingstate.models import Fill, Position

    assert _register(bot, "m-1").status_code == 201
    bot.post(f"{API}/accounts/hot/orders/m-1/transition/", {"status": "submitted"}, format="json")
    assert _fill(bot, "m-1", "T0").status_code == 201
    locked, done = threading.Event(), threading.Event()

    def the_pass():
        try:
            with transaction.atomic():
                position = Position.objects.select_for_update().get(symbol="BTC/USDT")
                locked.set()
                done.wait(1)  # the bot's read is now waiting for this lock
                Fill.objects.create(
                    account=venue_account,
                    symbol="BTC/USDT",
                    trade_id="T1",
                    quantity=Decimal("0.5"),
                    price=Decimal(103),
                    origin=Fill.Origin.RECONCILIATION,
                    executed_at=timezone.now(),
                )
                position.qty += Decimal("0.5")
                position.fill_count += 1
                position.version += 1
                position.save()
        finally:
            close_old_connections()
            connection.close()

    thread = threading.Thread(target=the_pass)
    thread.start()
    assert locked.wait(10)
    response, sql = _count(lambda: _fill(bot, "m-1", "T1", qty="0.5", price="103"))
    thread.join(10)
    assert response.status_code == 200, response.content  # the same trade: already recorded
    assert any("ON CONFLICT" in s and "tradingstate_fill" in s for s in sql)
    fill = Fill.objects.get(trade_id="T1")
    order = Order.objects.get(client_order_id="m-1")
    assert fill.order_id == order.pk and fill.origin == "reconciliation"
    assert (order.filled_qty, order.status) == (Decimal("0.9"), "partially_filled")
    position = Position.objects.get(symbol="BTC/USDT")
    assert (position.qty, position.fill_count) == (Decimal("0.9"), 2)  # counted once
    assert Fill.objects.count() == 2
    assert AuditEntry.objects.filter(action="fill.record").count() == 2  # T0, the attach
