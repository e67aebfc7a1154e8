"""A statement that carries a list (an array parameter: ``field__any``) is planned with its
values: it runs with them written into its text, and is never prepared.

The defect (issue 17, register-under-passes): bound as parameters, the lists got
PostgreSQL's generic plan. psycopg prepares a statement it has run five times, and where it
does, every session is set to ``plan_cache_mode = force_generic_plan``, which applies to
every bound statement, prepared or not. In that plan a list is a parameter of unknown
length and the account is unknown. For a pass's read of the orders the venue lists but the
account does not hold as active, it expected an account to have a few orders, read all of a
long-history account's and compared each with every element of both lists (an array
parameter is never hashed): 2.8 s against 100,000 orders of history and 10,000 ids, every
pass, on a CPU the bots' registrations needed.

Each plan is read from ``auto_explain`` (loaded in the test's own session, its output
sent to the client as notices).
"""

from __future__ import annotations

from contextlib import contextmanager
from decimal import Decimal as D

import pytest
from django.db import connection

from reconciliation import selectors as rsel
from tests.factories import AccountFactory
from tests.pg import requires_postgres
from tradingstate import db
from tradingstate.exchanges.base import ExchangeOrder
from tradingstate.models import Order

pytestmark = [pytest.mark.django_db(transaction=True), requires_postgres]

HISTORY = 3000
OTHERS = 300
RUNS = 8  # past psycopg's prepare_threshold (5)


def _history(account) -> None:
    """``HISTORY`` closed orders of ``account`` among ``OTHERS`` accounts of two orders
    each: to a plan that knows no account, an account has few orders (a host of many
    accounts, one with a long history: the bench's generic plan expected 63, read 97,607)."""
    others = [AccountFactory() for _ in range(OTHERS)]

    def order(owner, i, exid):
        return Order(
            account=owner, client_order_id=f"old-{i}", exchange_order_id=exid,
            symbol="BTC/USDT", side="buy", type="limit", quantity=D("1"), price=D("10"),
            filled_qty=D("0"), remaining_qty=D("0"), status="cancelled",
        )  # fmt: skip

    Order.objects.bulk_create(order(o, i, f"y-{o.pk}-{i}") for o in others for i in range(2))
    Order.objects.bulk_create(order(account, i, f"x-{i}") for i in range(HISTORY))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tradingstate_order")


def _prepared() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@contextmanager
def _plans():
    """The query texts and plans of the statements run meanwhile on this connection."""
    raw = connection.connection
    seen: list[str] = []

    def keep(diag):
        seen.append(diag.message_primary or "")

    with raw.cursor() as cursor:
        cursor.execute("LOAD 'auto_explain'")
        cursor.execute("SET auto_explain.log_min_duration = 0")
        cursor.execute("SET auto_explain.log_level = notice")
    raw.add_notice_handler(keep)
    try:
        yield seen
    finally:
        raw.remove_notice_handler(keep)
        with raw.cursor() as cursor:
            cursor.execute("SET auto_explain.log_min_duration = -1")


def test_a_statement_with_a_list_is_planned_with_its_values():
    # given: the session as the shipped config leaves it (statements prepared: generic plans)
    db.fetch_all("SELECT 1")
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
    # when: a statement with a list, and one without
    with _plans() as plans:
        rows = db.fetch_all(
            "SELECT count(*) FROM tradingstate_order WHERE client_order_id = ANY(%s) AND id > %s",
            [["it's", "b"], 0],
        )
        db.fetch_all("SELECT count(*) FROM tradingstate_order WHERE id > %s", [0])
    # then: the first was planned with its values (quoted), the second with a parameter
    assert rows == [(0,)]
    with_list = [p for p in plans if "client_order_id" in p]
    without = [p for p in plans if "client_order_id" not in p and "id >" in p]
    assert with_list and all("$1" not in p and "it''s" in p for p in with_list), with_list
    assert without and all("$1" in p for p in without), without


def test_the_connection_prepares_statements_without_lists():
    # the threshold is on in the shipped config: a plain statement is prepared after 5 runs
    for _ in range(RUNS):
        db.fetch_all("SELECT count(*) FROM tradingstate_order WHERE id > %s", [0])
    assert any("tradingstate_order WHERE id > $1" in s for s in _prepared())


def test_a_statement_with_a_list_is_never_prepared():
    for _ in range(RUNS):
        rows = db.fetch_all(
            "SELECT count(*) FROM tradingstate_order WHERE client_order_id = ANY(%s)", [["a"]]
        )
        named = db.fetch_all(
            "SELECT count(*) FROM tradingstate_order WHERE client_order_id = ANY(%(ids)s)",
            {"ids": ["a", "b"]},
        )
    assert rows == [(0,)] and named == [(0,)]
    assert not [s for s in _prepared() if "ANY" in s]


def test_a_pass_reads_the_venues_unknown_orders_planned_with_their_values(monkeypatch):
    # given: an account with a long history among many, and a venue listing 50 orders it
    # does not know and one it holds closed
    account = AccountFactory()
    _history(account)
    venue = [
        ExchangeOrder(symbol="BTC/USDT", side="buy", type="limit", amount=D("1"), filled=D("0"),
                      status="open", exchange_order_id=f"v-{i}", client_order_id=f"new-{i}")
        for i in range(50)
    ] + [
        ExchangeOrder(symbol="BTC/USDT", side="buy", type="limit", amount=D("1"), filled=D("0"),
                      status="open", exchange_order_id="x-7", client_order_id="")
    ]  # fmt: skip
    seen: list[tuple[str, list]] = []
    fetch_all = db.fetch_all

    def recording(sql, params=(), **kwargs):
        seen.append((sql, list(params)))
        return fetch_all(sql, params, **kwargs)

    monkeypatch.setattr(db, "fetch_all", recording)
    # when: the pass's local read, pass after pass (past the prepare threshold)
    with _plans() as plans:
        for _ in range(RUNS):
            local = rsel.local_snapshot(account=account, exchange_orders=venue, books=([], []))
    # then: the closed order the venue lists by its id is read ...
    assert [o.client_order_id for o in local.orders] == ["old-7"]
    # ... by a statement with the lists, never prepared
    named = {sql for sql, _ in seen if "exchange_order_id" in sql.split("WHERE", 1)[-1]}
    assert len(named) == 1
    assert not [s for s in _prepared() if "ANY" in s]
    read = [p for p in plans if "exchange_order_id" in p.split("WHERE", 1)[-1]]
    assert len(read) == RUNS and all("$1" not in p and "new-7," in p for p in read)


@pytest.mark.parametrize(
    "hostile", ["it's", 'a,b"{c}\\', "x'); DROP TABLE tradingstate_order; --", "ü €"]
)
def test_values_written_into_the_text_are_quoted(hostile):
    # a venue's ids are not ours to trust: written in, each is still one value
    account = AccountFactory()
    Order.objects.create(
        account=account, client_order_id=hostile, symbol="BTC/USDT", side="buy", type="limit",
        quantity=D("1"), price=D("10"), filled_qty=D("0"), remaining_qty=D("1"),
    )  # fmt: skip
    rows = db.fetch_all(
        "SELECT client_order_id FROM tradingstate_order WHERE account_id = %s "
        "AND client_order_id = ANY(%s)",
        [account.pk, [hostile, "other"]],
    )
    assert rows == [(hostile,)]
    assert Order.objects.filter(account=account).count() == 1
