"""The bots' hot path in SQL statements, auth included: registration, transition and fill
each at most 6 on PostgreSQL and SQLite (issue 17, point 1), with no savepoint.

Counted with CaptureQueriesContext around one API request, so the token check, the rate
limit (its counter row: the zero-setup store), the account, the guard, the writes and the
audit row are all in the count. The time is bench/api.py's; the guarantees (idempotency,
kill switch, recovery gate, instruments, audit) are asserted here on the same requests.
"""

from __future__ import annotations

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
        # token+account, rate counter, BEGIN, guard, insert+audit, COMMIT
        assert len(sql) == 6, "\n".join(sql)


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
        # token+account, rate counter, BEGIN, locking read, update+audit, COMMIT
        assert len(sql) == 6, "\n".join(sql)
    # an illegal move still changes nothing
    response = bot.post(
        f"{API}/accounts/hot/orders/t-1/transition/", {"status": "pending"}, format="json"
    )
    assert response.status_code == 409
    assert Order.objects.get(client_order_id="t-1").version == 2
