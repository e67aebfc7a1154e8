"""Each hand-written hot-path statement in ``tradingstate.db`` gives the same rows as the
ORM expression it replaces (issue 19 point 6). Run on PostgreSQL (the statements the
bench measures) and on SQLite (their portable forms)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.forms.models import model_to_dict
from django.utils import timezone
from knox.models import AuthToken

from tests.api_support import make_bot
from tests.factories import AccountFactory, StaffFactory
from tradingstate.actors import Actor
from tradingstate.db import auth as db_auth
from tradingstate.db import orders as db_orders
from tradingstate.models import AuditEntry, Instrument, Order
from tradingstate.services import events
from tradingstate.services.orders import TRANSITION_FIELDS

pytestmark = pytest.mark.django_db

BOT = Actor(type="bot", name="eq-bot", correlation_id="req-1")
VOLATILE = {"id", "created_at", "updated_at", "target_id"}


def _row(obj) -> dict:
    obj.refresh_from_db()
    return {k: v for k, v in model_to_dict(obj).items() if k not in VOLATILE}


def _new_order(account, coid, symbol="BTC/USDT") -> Order:
    return Order(
        account=account,
        client_order_id=coid,
        symbol=symbol,
        side="buy",
        type="limit",
        quantity=Decimal("1.5"),
        price=Decimal(100),
        filled_qty=Decimal(0),
        remaining_qty=Decimal("1.5"),
        status="pending",
        origin="bot",
    )


def _register(fn, account, coid, *, symbol="BTC/USDT", gate=False):
    order = _new_order(account, coid, symbol)
    entry = events.order_registered_entry(order=order, actor=BOT, reason="why")
    return fn(order, entry, recovery_gate=gate), order, entry


def test_token_read_equals_the_orm():
    a, _b = AccountFactory(name="eq-a"), AccountFactory(name="eq-b")
    _client, user = make_bot("eq", a)
    _, token = AuthToken.objects.create(user)
    _, staff_token = AuthToken.objects.create(StaffFactory(username="eq-staff"))
    for key in (token[:15], staff_token[:15], "nope-nope-nope-"):
        for name in (None, "eq-a", "eq-b", "missing"):
            raw = db_auth.token_rows(key, name)
            orm = db_auth.token_rows_orm(key, name)
            assert [model_to_dict(t) for t in raw] == [model_to_dict(t) for t in orm]
            assert [model_to_dict(t.user) for t in raw] == [model_to_dict(t.user) for t in orm]
            assert [getattr(t.user, "bot", None) for t in raw] == [
                getattr(t.user, "bot", None) for t in orm
            ]
            got = [getattr(t.visible_account, "pk", None) for t in raw]
            assert got == [getattr(t.visible_account, "pk", None) for t in orm], (key, name)
    assert db_auth.token_rows(token[:15], "eq-a")[0].visible_account == a
    assert db_auth.token_rows(token[:15], "eq-b")[0].visible_account is None


def test_token_read_gives_the_account_as_the_orm_types_it():
    """The account read with the token carries every field as the ORM gives it: JSON as
    Python objects, amounts as Decimals, times aware (it was raw text on SQLite, and JSON
    text on PostgreSQL)."""
    a = AccountFactory(
        name="eq-typed",
        ccxt_options={"options": {"defaultType": "swap"}},
        balance_tolerance=Decimal("0.25"),
        balance_tolerances={"BTC": "0.001"},
    )
    _client, _user = make_bot("eq-typed", a)
    _, token = AuthToken.objects.create(_user)
    (raw,) = db_auth.token_rows(token[:15], "eq-typed")
    (orm,) = db_auth.token_rows_orm(token[:15], "eq-typed")
    got, want = model_to_dict(raw.visible_account), model_to_dict(orm.visible_account)
    assert got == want
    assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in want.items()}
    assert raw.visible_account.ccxt_options == {"options": {"defaultType": "swap"}}
    assert raw.visible_account.balance_tolerance == Decimal("0.25")


def test_registration_insert_equals_the_orm():
    sql_acct, orm_acct = AccountFactory(name="eq-s"), AccountFactory(name="eq-o")
    for acct in (sql_acct, orm_acct):
        Instrument.objects.create(account=acct, symbol="BTC/USDT", base="BTC", quote="USDT")
    cases = [
        ("new", {}),
        ("new", {}),  # the same client_order_id again: nothing inserted
        ("eth", {"symbol": "ETH/USDT"}),  # not an instrument of the account
    ]
    for coid, over in cases:
        got_sql, order_sql, entry_sql = _register(db_orders.order_insert, sql_acct, coid, **over)
        got_orm, order_orm, entry_orm = _register(
            db_orders.order_insert_orm, orm_acct, coid, **over
        )
        assert got_sql == got_orm, (coid, over)
        if got_sql.inserted:
            assert _row(order_sql) | {"account": 0} == _row(order_orm) | {"account": 0}
            assert entry_sql.target_id == str(order_sql.pk)
            assert entry_orm.target_id == str(order_orm.pk)
            a = AuditEntry.objects.get(target_id=str(order_sql.pk), account=sql_acct)
            b = AuditEntry.objects.get(target_id=str(order_orm.pk), account=orm_acct)
            assert _row(a) | {"account": 0} == _row(b) | {"account": 0}
    # the recovery gate, read in the same statement
    for acct in (sql_acct, orm_acct):
        acct.recovery_started_at = timezone.now() - timedelta(seconds=1)
        acct.save(update_fields=["recovery_started_at"])
    got_sql, *_ = _register(db_orders.order_insert, sql_acct, "rec", gate=True)
    got_orm, *_ = _register(db_orders.order_insert_orm, orm_acct, "rec", gate=True)
    assert got_sql == got_orm == db_orders.Inserted(False, True, True)
    assert Order.objects.filter(client_order_id="rec").count() == 0


def test_transition_update_equals_the_orm():
    account = AccountFactory(name="eq-t")
    orders = []
    for coid in ("u-sql", "u-orm"):
        order = _new_order(account, coid)
        order.save()
        orders.append(order)
    for order, fn in zip(orders, (db_orders.order_update, db_orders.order_update_orm), strict=True):
        before = events.order_snapshot(order)
        order.status, order.exchange_order_id, order.version = "submitted", "E9", 2
        order.filled_qty, order.remaining_qty = Decimal("0.5"), Decimal(1)
        entry = events.order_transition_entry(
            order=order, account=account, before=before, actor=BOT, reason="r"
        )
        fn(order, TRANSITION_FIELDS, entry)
    a, b = (_row(o) for o in orders)
    assert a | {"client_order_id": ""} == b | {"client_order_id": ""}
    entries = [AuditEntry.objects.get(target_id=str(o.pk)) for o in orders]
    a, b = (_row(e) for e in entries)
    strip = {"target_repr": "", "before": None, "after": None}
    assert a | strip == b | strip
    assert entries[0].after["status"] == "submitted" and entries[0].after["version"] == 2


def test_order_read_equals_the_orm():
    from tradingstate.db import orders as db_orders

    account, other = AccountFactory(name="eq-r"), AccountFactory(name="eq-r2")
    order = _new_order(account, "r-1", symbol="R/USDT")
    order.status, order.filled_qty, order.avg_fill_price = "partially_filled", Decimal("0.3"), 7
    order.save()
    _new_order(other, "r-1", symbol="X/USDT").save()  # the same id on another account
    for coid in ("r-1", "absent"):
        got = db_orders.order_read(account_id=account.pk, client_order_id=coid)
        ref = db_orders.order_read_orm(account_id=account.pk, client_order_id=coid)
        assert (got is None) == (ref is None)
        if got is not None:  # every column as the ORM reads it, types included
            for f in Order._meta.concrete_fields:
                a, b = getattr(got, f.attname), getattr(ref, f.attname)
                assert (a, type(a)) == (b, type(b)), f.name
    got = db_orders.order_read(account_id=account.pk, client_order_id="r-1")
    assert got.symbol == "R/USDT" and got.created_at.tzinfo is not None
    assert got.filled_qty == Decimal("0.3") and isinstance(got.avg_fill_price, Decimal)
    assert got._state.adding is False


def test_fill_read_and_write_equal_the_orm():
    from tradingstate.db import fills as db_fills
    from tradingstate.models import Fill, Position

    account = AccountFactory(name="eq-f")
    coids = ("f-sql", "f-orm")
    for coid in coids:
        order = _new_order(account, coid, symbol=f"{coid}/USDT")
        order.status = "submitted"
        order.save()
        Position.objects.create(account=account, symbol=order.symbol, qty=Decimal(2))
        Instrument.objects.create(account=account, symbol=order.symbol, base=coid, quote="USDT")
        Fill.objects.create(
            account=account,
            order=order,
            symbol=order.symbol,
            side=order.side,
            trade_id="old",
            quantity=Decimal("0.1"),
            price=Decimal(1),
            executed_at=timezone.now(),
        )
    # the same trade id on another symbol is another trade
    other = _new_order(account, "f-other", symbol="OTHER/USDT")
    other.save()
    Fill.objects.create(
        account=account,
        order=other,
        symbol=other.symbol,
        trade_id="elsewhere",
        quantity=Decimal(1),
        price=Decimal(1),
        executed_at=timezone.now(),
    )

    def dicts(objs):
        return [None if o is None else model_to_dict(o) for o in objs]

    for coid, read, write in (
        ("f-sql", db_fills.fill_read, db_fills.fill_write),
        ("f-orm", db_fills.fill_read_orm, db_fills.fill_write_orm),
    ):
        # the read: the order, the known trade (or none), the position, the instrument
        for trade in ("old", "unknown", "elsewhere"):
            got = read(account=account, client_order_id=coid, trade_id=trade)
            ref = db_fills.fill_read_orm(account=account, client_order_id=coid, trade_id=trade)
            assert dicts(got) == dicts(ref), trade
        assert read(account=account, client_order_id="nope", trade_id="x") == (None,) * 4
        # an order whose symbol has no position nor instrument yet
        got = read(account=account, client_order_id="f-other", trade_id="none")
        assert got[0].client_order_id == "f-other" and got[1:] == (None, None, None)
        # the write
        order, _, position, _ = read(account=account, client_order_id=coid, trade_id="new")
        order_before = events.order_snapshot(order)
        position_before = events.position_snapshot(position)
        order.filled_qty, order.fills_qty = Decimal("0.6"), Decimal("0.6")
        order.remaining_qty, order.status = Decimal("0.9"), "partially_filled"
        order.avg_fill_price = Decimal("2.5")
        order.version += 1
        position.qty, position.entry_price = Decimal("2.5"), Decimal(3)
        position.fees_other, position.fill_count = {"BNB": "0.1"}, 1
        position.version += 1
        fill = Fill(
            account=account,
            order=order,
            symbol=order.symbol,
            side=order.side,
            trade_id="new",
            client_order_id=coid,
            quantity=Decimal("0.5"),
            price=Decimal(3),
            fee=Decimal("0.1"),
            fee_currency="BNB",
            origin=Fill.Origin.BOT,
            executed_at=timezone.now(),
            realized_pnl=Decimal("0.25"),
        )
        entry = events.fill_recorded_entry(
            fill=fill,
            order=order,
            position=position,
            order_before=order_before,
            position_before=position_before,
            actor=BOT,
        )
        assert write(fill=fill, order=order, position=position, audit=entry) is True
        assert entry.target_id == str(fill.pk)
        # a recorded trade writes nothing
        again = Fill(
            account=account,
            order=order,
            symbol=order.symbol,
            trade_id="new",
            quantity=Decimal(1),
            price=Decimal(1),
            executed_at=timezone.now(),
        )
        order.version += 1
        position.version += 1
        assert write(fill=again, order=order, position=position, audit=entry) is False
    rows = {}
    for coid in coids:
        order = Order.objects.get(client_order_id=coid)
        fill = Fill.objects.get(order=order, trade_id="new")
        rows[coid] = (
            _row(order) | {"client_order_id": "", "symbol": ""},
            model_to_dict(Position.objects.get(symbol=order.symbol), exclude=["id", "symbol"]),
            _row(fill) | {"order": 0, "symbol": "", "client_order_id": "", "executed_at": None},
            _row(AuditEntry.objects.get(action="fill.record", target_id=str(fill.pk)))
            | {"target_repr": "", "before": None, "after": None},
        )
    assert rows["f-sql"] == rows["f-orm"]
    assert Order.objects.get(client_order_id="f-sql").version == 2
    assert Position.objects.get(symbol="f-sql/USDT").version == 2
    assert Fill.objects.filter(trade_id="new").count() == 2
