"""A bot's fill on PostgreSQL reads the order and its position without locks and writes the
fill, both rows and the audit row back in one statement, only if the order and the
position still have the versions read (``fill_record``'s compare-and-set). A change that
lands between the read and the write must not be overwritten: the fill reads again and the
rules decide on the new state. After ``FILL_ATTEMPTS`` the locked path decides."""

import threading
from decimal import Decimal

import pytest
from django.db import connection

from tests.factories import AccountFactory
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.db import fills as db_fills
from tradingstate.models import AuditEntry, Fill, Order, Position
from tradingstate.rules.fills import Overfill
from tradingstate.services import fill_record, order_register, order_transition
from tradingstate.services import fills as fill_services

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]
BOT = Actor(type="bot", name="cas-bot")
OTHER = Actor(type="bot", name="other-bot")


def _order(account, coid="o-1", qty="1"):
    order_register(
        account=account,
        client_order_id=coid,
        symbol="BTC/USDT",
        side="buy",
        quantity=qty,
        price="100",
        actor=BOT,
    )
    order_transition(account=account, client_order_id=coid, to_status="submitted", actor=BOT)


def _fill(account, coid, trade_id, qty, actor=BOT, price="100"):
    return fill_record(
        account=account,
        client_order_id=coid,
        trade_id=trade_id,
        quantity=qty,
        price=price,
        actor=actor,
    )


@pytest.fixture
def account():
    account = AccountFactory(name="cas", exchange="binance")
    _order(account)
    _fill(account, "o-1", "T0", "0.1")  # the position exists: the compare-and-set path
    return account


def _interleave(monkeypatch, times, change):
    """After each of the first ``times`` unlocked reads, ``change()`` lands."""
    real = db_fills.fill_read
    state = {"left": times, "inside": False, "reads": []}

    def read_then_interleave(**kwargs):
        rows = real(**kwargs)
        state["reads"].append(kwargs.get("locked", True))
        if not kwargs.get("locked", True) and state["left"] and not state["inside"]:
            state["left"] -= 1
            state["inside"] = True
            try:
                change()
            finally:
                state["inside"] = False
        return rows

    monkeypatch.setattr(db_fills, "fill_read", read_then_interleave)
    return state


def test_the_usual_fill_takes_no_lock_and_no_transaction(account, monkeypatch):
    state = _interleave(monkeypatch, 0, lambda: None)
    fill, created = _fill(account, "o-1", "T1", "0.2")
    assert created and state["reads"] == [False]  # one unlocked read, no locked fallback
    assert Fill.objects.get(pk=fill.pk).quantity == Decimal("0.2")


def test_a_fill_between_read_and_write_is_not_overwritten(account, monkeypatch):
    _interleave(monkeypatch, 1, lambda: _fill(account, "o-1", "T-other", "0.3", actor=OTHER))
    _, created = _fill(account, "o-1", "T1", "0.2")
    assert created
    order = Order.objects.get(client_order_id="o-1")
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    # both fills count: 0.1 + 0.3 + 0.2, on the order and on the position
    assert order.filled_qty == order.fills_qty == Decimal("0.6")
    assert position.qty == Decimal("0.6") and position.fill_count == 3
    entries = AuditEntry.objects.filter(action="fill.record").order_by("id")
    assert [e.actor_name for e in entries] == ["cas-bot", "other-bot", "cas-bot"]
    # the bot's audit row shows the state it really applied to (after the other fill)
    assert entries.last().before["position"]["qty"] == "0.4"


def test_a_position_change_between_read_and_write_is_not_overwritten(account, monkeypatch):
    _order(account, "o-2")
    # another order's fill moves the same symbol's position after the bot read it
    _interleave(monkeypatch, 1, lambda: _fill(account, "o-2", "T-o2", "0.25", actor=OTHER))
    _fill(account, "o-1", "T1", "0.2")
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    assert position.qty == Decimal("0.55") and position.fill_count == 3
    assert Order.objects.get(client_order_id="o-1").filled_qty == Decimal("0.3")


def test_an_overfill_on_the_fresh_state_is_refused_and_writes_nothing(account, monkeypatch):
    _interleave(monkeypatch, 1, lambda: _fill(account, "o-1", "T-other", "0.8", actor=OTHER))
    with pytest.raises(Overfill):
        _fill(account, "o-1", "T1", "0.2")  # 0.1 + 0.8 + 0.2 > 1
    assert not Fill.objects.filter(trade_id="T1").exists()
    order = Order.objects.get(client_order_id="o-1")
    assert order.filled_qty == Decimal("0.9")
    assert Position.objects.get(account=account, symbol="BTC/USDT").qty == Decimal("0.9")


def test_the_same_trade_recorded_meanwhile_returns_the_recorded_fill(account, monkeypatch):
    _interleave(monkeypatch, 1, lambda: _fill(account, "o-1", "T1", "0.2", actor=OTHER))
    _, created = _fill(account, "o-1", "T1", "0.2")
    assert not created
    assert Fill.objects.filter(trade_id="T1").count() == 1
    assert Order.objects.get(client_order_id="o-1").filled_qty == Decimal("0.3")
    assert Position.objects.get(account=account, symbol="BTC/USDT").fill_count == 2


def test_endless_contention_falls_back_to_the_locked_path(account, monkeypatch):
    def bump():
        Order.objects.filter(client_order_id="o-1").update(
            version=Order.objects.get(client_order_id="o-1").version + 1
        )

    state = _interleave(monkeypatch, 1000, bump)
    before = Order.objects.get(client_order_id="o-1").version
    _, created = _fill(account, "o-1", "T1", "0.2")
    assert created
    # FILL_ATTEMPTS unlocked tries, each beaten, then one locked read that wins
    assert state["reads"] == [False] * fill_services.FILL_ATTEMPTS + [True]
    order = Order.objects.get(client_order_id="o-1")
    assert order.filled_qty == Decimal("0.3")
    assert order.version == before + fill_services.FILL_ATTEMPTS + 1
    assert Fill.objects.filter(trade_id="T1").count() == 1


def test_concurrent_fills_of_one_order_all_count(account):
    """Real threads, each its own connection: no fill is lost, none counted twice."""
    threads_n, per_thread = 6, 5
    errors = []
    start = threading.Barrier(threads_n)

    def run(t):
        try:
            start.wait()
            for k in range(per_thread):
                _fill(account, "o-1", f"T{t}-{k}", "0.01")
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(t,)) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    expected = Decimal("0.1") + Decimal("0.01") * threads_n * per_thread
    order = Order.objects.get(client_order_id="o-1")
    position = Position.objects.get(account=account, symbol="BTC/USDT")
    assert order.filled_qty == order.fills_qty == expected
    assert position.qty == expected and position.fill_count == 1 + threads_n * per_thread
    assert order.version == 3 + threads_n * per_thread  # one version per fill
    assert AuditEntry.objects.filter(action="fill.record").count() == 1 + threads_n * per_thread
