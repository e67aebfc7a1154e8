"""The sync client against a live server: orders, fills, positions, balances."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from tradingstate_client import (
    Client,
    Conflict,
    NotFound,
    Order,
    TransitionNotAllowed,
    TransitionUpdate,
    ValidationError,
    VersionConflict,
)

ACCOUNT = "paper-demo"
SPARE = "client-spare"


@pytest.fixture
def ts(live):
    with Client(live.base_url, live.token) as client:
        yield client


def test_register_generates_an_id_and_types_the_answer(ts):
    # when
    order = ts.register_order(
        ACCOUNT, symbol="BTC/USDT", side="buy", type="limit",
        quantity=Decimal("0.010"), price=60000, strategy_id="s1",
    )  # fmt: skip
    # then
    assert isinstance(order, Order)
    assert order.client_order_id.startswith("ts-") and len(order.client_order_id) == 35
    assert order.status == "pending" and order.is_active
    assert order.quantity == Decimal("0.01") and isinstance(order.quantity, Decimal)
    assert order.price == Decimal("60000") and order.filled_qty == 0
    assert order.created_at.tzinfo is not None
    assert order.account == ACCOUNT and order.strategy_id == "s1"


def test_register_twice_with_the_same_id_returns_the_order_and_a_change_is_a_conflict(ts):
    # given
    fields = dict(symbol="BTC/USDT", side="sell", type="limit", quantity="0.02", price="61000")
    first = ts.register_order(ACCOUNT, client_order_id="cl-same-1", **fields)
    # when: the same content again (a retry)
    again = ts.register_order(ACCOUNT, client_order_id="cl-same-1", **fields)
    # then
    assert again == first
    # when: other content under the same id
    with pytest.raises(Conflict) as err:
        ts.register_order(ACCOUNT, client_order_id="cl-same-1", **{**fields, "quantity": "0.03"})
    # then: the API's error body, field by field
    assert err.value.status == 409 and err.value.error == "conflict"
    assert "quantity" in err.value.fields
    assert ts.order(ACCOUNT, "cl-same-1").quantity == Decimal("0.02")


def test_bad_input_is_a_validation_error_naming_the_field(ts):
    with pytest.raises(ValidationError) as err:
        ts.register_order(ACCOUNT, symbol="BTC/USDT", side="sideways", quantity="1")
    assert err.value.status == 400 and err.value.error == "validation_error"
    assert list(err.value.fields) == ["side"]


def test_floats_and_naive_times_are_refused_before_sending(ts):
    with pytest.raises(TypeError, match="quantity"):
        ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", quantity=0.1)
    with pytest.raises(ValueError, match="executed_at"):
        ts.post_fill(ACCOUNT, client_order_id="x", trade_id="t", quantity="1", price="1",
                     executed_at=datetime(2026, 1, 1))  # fmt: skip


def test_transition_fill_and_the_order_detail(ts):
    # given
    order = ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", type="limit",
                              quantity="0.01", price="60000")  # fmt: skip
    coid = order.client_order_id
    # when
    submitted = ts.transition(ACCOUNT, coid, "submitted", exchange_order_id="X-" + coid[-8:])
    fill = ts.post_fill(ACCOUNT, client_order_id=coid, trade_id="T-" + coid, quantity="0.004",
                        price="60010", fee="0.01", fee_currency="USDT",
                        executed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # fmt: skip
    again = ts.post_fill(ACCOUNT, client_order_id=coid, trade_id="T-" + coid, quantity="0.004",
                         price="60010", fee="0.01", fee_currency="USDT",
                         executed_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # fmt: skip
    # then
    assert submitted.status == "submitted" and submitted.version == order.version + 1
    assert fill.trade_id == "T-" + coid and fill.quantity == Decimal("0.004")
    assert fill.order is not None and fill.order.status == "partially_filled"
    assert fill.executed_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert again.trade_id == fill.trade_id and again.order.filled_qty == Decimal("0.004")
    detail = ts.order(ACCOUNT, coid)
    assert detail.filled_qty == Decimal("0.004") and detail.remaining_qty == Decimal("0.006")
    # an illegal move is its own Conflict subclass
    with pytest.raises(TransitionNotAllowed) as err:
        ts.transition(ACCOUNT, coid, "pending")
    assert isinstance(err.value, Conflict) and err.value.error == "transition_not_allowed"
    # a stale version
    with pytest.raises(VersionConflict):
        ts.transition(ACCOUNT, coid, "cancelled", expected_version=1)


def test_bulk_transition_reports_each_item(ts):
    # given
    a = ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", quantity="0.01", price="1")
    b = ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", quantity="0.01", price="1")
    # when
    result = ts.bulk_transition(
        ACCOUNT,
        [
            TransitionUpdate(a.client_order_id, "submitted"),
            {"client_order_id": b.client_order_id, "status": "filled"},  # illegal from pending
            TransitionUpdate("no-such-order", "submitted"),
        ],
    )
    # then
    assert (result.applied, result.failed) == (1, 2)
    ok, illegal, missing = result.results
    assert ok.ok and ok.status == "submitted" and ok.version == a.version + 1
    assert not illegal.ok and illegal.error.error == "transition_not_allowed"
    assert not missing.ok and missing.error.error == "not_found"


def test_unknown_order_and_invisible_account_are_not_found(ts):
    with pytest.raises(NotFound) as err:
        ts.order(ACCOUNT, "never-registered")
    assert err.value.status == 404 and "never-registered" in err.value.detail
    with pytest.raises(NotFound):
        ts.orders("other")  # exists, but not granted to this bot


def test_orders_pages_and_iteration_see_every_order(ts):
    # given: five orders on a symbol no other test uses (client-spare has no instrument list)
    made = [
        ts.register_order(SPARE, symbol="ETH/USDT", side="buy", quantity="1", price="2000")
        for _ in range(5)
    ]
    # when
    first = ts.orders(SPARE, symbol="ETH/USDT", page_size=2)
    every = list(ts.iter_orders(SPARE, symbol="ETH/USDT", page_size=2))
    # then: newest first, each exactly once
    assert len(first) == 2 and first.next_cursor
    assert [o.client_order_id for o in every] == [o.client_order_id for o in reversed(made)]
    second = ts.orders(SPARE, symbol="ETH/USDT", page_size=2, cursor=first.next_cursor)
    assert [o.client_order_id for o in second] == [o.client_order_id for o in every[2:4]]
    assert {o.client_order_id for o in ts.iter_orders(SPARE, active=True, page_size=3)} >= {
        o.client_order_id for o in made
    }


def test_positions_and_balances_set_and_read(ts):
    # when: a symbol with a slash travels URL-encoded
    pos = ts.set_position(SPARE, "SOL/USDT", Decimal("-1.5"), entry_price="150",
                          reason="client test")  # fmt: skip
    bal = ts.set_balance(SPARE, "USDT", total="1000.25", reason="client test")
    # then
    assert pos.symbol == "SOL/USDT" and pos.qty == Decimal("-1.5")
    assert bal.total == Decimal("1000.25") and bal.free == Decimal("1000.25")
    assert [p.symbol for p in ts.positions(SPARE)] == ["SOL/USDT"]
    assert {b.currency: b.total for b in ts.balances(SPARE)} == {"USDT": Decimal("1000.25")}
    with pytest.raises(VersionConflict):
        ts.set_position(SPARE, "SOL/USDT", "2", expected_version=pos.version - 1)
    assert ts.set_position(SPARE, "SOL/USDT", "2", expected_version=pos.version).qty == 2
