"""The pure per-row rules (tradingstate.rules): no database, microseconds each."""

import subprocess
import sys
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingstate import transitions as t
from tradingstate.errors import Conflict, TransitionNotAllowed, ValidationFailed
from tradingstate.models import Order
from tradingstate.rules import Source
from tradingstate.rules import balances as br
from tradingstate.rules import orders as r
from tradingstate.rules import positions as pr

D = Decimal


def state(status="submitted", qty="1", filled="0", avg=None, exid="", version=1):
    return r.OrderState(
        status=status,
        quantity=D(qty),
        filled_qty=D(filled),
        avg_fill_price=None if avg is None else D(avg),
        exchange_order_id=exid,
        version=version,
    )


def test_rules_import_no_django():
    # pure: importable (and testable) without Django, its settings or the ORM
    code = (
        "import sys; import tradingstate.rules.orders, tradingstate.rules.positions, "
        "tradingstate.rules.balances; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_rule_vocabularies_match_the_model_choices():
    assert tuple(Order.Side.values) == r.SIDES
    assert tuple(Order.Type.values) == r.TYPES
    assert set(t.STATUSES) == set(Order.Status.values)


# --- the one named difference: source ---------------------------------------------------
def test_venue_may_skip_states_a_bot_may_not():
    # given a pending order
    pending = state("pending")
    # when the venue reports it filled, then it moves there (through submitted)
    moved = r.order_transition(pending, r.OrderChange("filled"), source=Source.VENUE)
    assert (moved.status, moved.filled_qty, moved.remaining_qty) == ("filled", D(1), D(0))
    assert moved.version == 2
    # but a bot must take one legal step at a time
    with pytest.raises(TransitionNotAllowed, match="cannot change from 'pending' to 'filled'"):
        r.order_transition(pending, r.OrderChange("filled"), source=Source.BOT)


def test_venue_may_report_the_same_state_with_more_filled_a_bot_may_not_restate_submitted():
    sub = state("submitted")
    same = r.order_transition(sub, r.OrderChange("submitted"), source=Source.VENUE)
    assert same.status == "submitted" and same.version == 2
    with pytest.raises(TransitionNotAllowed):
        r.order_transition(sub, r.OrderChange("submitted"), source=Source.BOT)


def test_neither_source_leaves_a_terminal_state():
    for source in Source:
        with pytest.raises(TransitionNotAllowed):
            r.order_transition(state("cancelled"), r.OrderChange("filled"), source=source)


@pytest.mark.parametrize("source", list(Source))
@pytest.mark.parametrize(
    ("status", "filled", "error"),
    [
        ("partially_filled", "1.5", r.FILLED_QTY_OVER.format(new=D("1.5"), qty=D(1))),
        ("partially_filled", "1", r.PARTIAL_NEEDS_RANGE.format(qty=D(1), new=D(1))),
        ("partially_filled", "0", r.PARTIAL_NEEDS_RANGE.format(qty=D(1), new=D(0))),
        ("filled", "0.5", r.FILLED_NEEDS_FULL.format(qty=D(1), new=D("0.5"))),
        ("filled", "2", r.FILLED_QTY_OVER.format(new=D(2), qty=D(1))),
        ("cancelled", "-1", "filled_qty: must not be negative"),
        # contradictory terminal states were accepted (a rejected order with fills, a
        # cancelled one with nothing left to cancel)
        ("rejected", "0.5", r.REJECTED_NEEDS_NONE.format(new=D("0.5"))),
        ("rejected", "1", r.REJECTED_NEEDS_NONE.format(new=D(1))),
        ("cancelled", "1", r.CLOSED_NEEDS_REST.format(status="cancelled", qty=D(1), new=D(1))),
        ("expired", "1", r.CLOSED_NEEDS_REST.format(status="expired", qty=D(1), new=D(1))),
    ],
)
def test_quantity_rules_are_the_same_for_both_sources(source, status, filled, error):
    with pytest.raises(ValidationFailed) as exc:
        r.order_transition(state(), r.OrderChange(status, filled_qty=filled), source=source)
    assert exc.value.message == error
    assert list(exc.value.fields) == ["filled_qty"]


@pytest.mark.parametrize("source", list(Source))
def test_filled_never_decreases(source):
    with pytest.raises(ValidationFailed, match="cannot decrease"):
        r.order_transition(
            state("partially_filled", filled="0.5"),
            r.OrderChange("cancelled", filled_qty="0.4"),
            source=source,
        )


@pytest.mark.parametrize("source", list(Source))
def test_exchange_order_id_is_written_once_and_bounded(source):
    assert (
        r.order_transition(
            state(), r.OrderChange("cancelled", exchange_order_id="X1"), source=source
        ).exchange_order_id
        == "X1"
    )
    with pytest.raises(Conflict, match="already 'A' and cannot change to 'B'"):
        r.order_transition(
            state(exid="A"), r.OrderChange("cancelled", exchange_order_id="B"), source=source
        )
    with pytest.raises(ValidationFailed, match="at most 128"):
        r.order_transition(
            state(), r.OrderChange("cancelled", exchange_order_id="x" * 129), source=source
        )


def test_unknown_status_is_refused_naming_the_field():
    for source in Source:
        with pytest.raises(ValidationFailed) as exc:
            r.order_transition(state(), r.OrderChange("done"), source=source)
        assert exc.value.fields == {"status": ["Unknown order status 'done'."]}


# --- creation ----------------------------------------------------------------------------
BASE = {
    "client_order_id": "c1",
    "symbol": "BTC/USDT",
    "side": "buy",
    "type": "limit",
    "quantity": "1",
    "price": "100",
}


def test_a_bot_order_starts_pending_and_needs_a_limit_price():
    new = r.order_new(source=Source.BOT, **BASE, strategy_id="s")
    assert (new.status, new.filled_qty, new.remaining_qty, new.strategy_id) == (
        "pending",
        D(0),
        D(1),
        "s",
    )
    with pytest.raises(ValidationFailed) as exc:
        r.order_new(source=Source.BOT, **{**BASE, "price": None})
    assert exc.value.fields == {"price": [r.LIMIT_NEEDS_PRICE]}


def test_a_venue_order_is_recorded_as_reported():
    new = r.order_new(
        source=Source.VENUE,
        **{**BASE, "price": None, "type": None},
        status="partially_filled",
        filled_qty="0.25",
        avg_fill_price="99.5",
        exchange_order_id="E1",
    )
    assert (new.status, new.filled_qty, new.remaining_qty) == (
        "partially_filled",
        D("0.25"),
        D("0.75"),
    )
    assert (new.type, new.price, new.avg_fill_price, new.exchange_order_id) == (
        "other",
        None,
        D("99.5"),
        "E1",
    )


def test_the_known_instrument_check_is_the_bots_only():
    def unknown(symbol):
        return False

    with pytest.raises(ValidationFailed, match="Unknown symbol 'BTC/USDT' for account 'a'"):
        r.order_new(source=Source.BOT, **BASE, known_symbol=unknown, account_name="a")
    assert r.order_new(source=Source.VENUE, **BASE, known_symbol=unknown).symbol == "BTC/USDT"


@pytest.mark.parametrize("source", list(Source))
@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"client_order_id": "has space"}, "client_order_id"),
        ({"symbol": ""}, "symbol"),
        ({"symbol": "X" * 65}, "symbol"),
        ({"side": "long"}, "side"),
        ({"side": ""}, "side"),
        ({"type": "iceberg"}, "type"),
        ({"quantity": "0"}, "quantity"),
        ({"price": "-1"}, "price"),
    ],
)
def test_creation_field_checks_are_shared(source, over, field):
    with pytest.raises(ValidationFailed) as exc:
        r.order_new(source=source, **{**BASE, **over})
    assert list(exc.value.fields) == [field]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"status": "open"}, "status"),
        ({"status": "partially_filled", "filled_qty": "0"}, "filled_qty"),
        ({"status": "submitted", "filled_qty": "2"}, "filled_qty"),
        ({"status": "filled", "filled_qty": "0.5"}, "filled_qty"),
        ({"status": "submitted", "exchange_order_id": "x" * 129}, "exchange_order_id"),
    ],
)
def test_a_venue_order_obeys_the_quantity_rules(extra, field):
    with pytest.raises(ValidationFailed) as exc:
        r.order_new(source=Source.VENUE, **BASE, **extra)
    assert list(exc.value.fields) == [field]


# --- positions and balances ---------------------------------------------------------------
def test_position_set_drops_the_entry_when_flat_and_counts_versions():
    new = pr.position_set(None, symbol="BTC/USDT", qty="0.5", entry_price="100")
    assert (new.qty, new.entry_price, new.version) == (D("0.5"), D(100), 1)
    flat = pr.position_set(new, symbol="BTC/USDT", qty="0", entry_price="100")
    assert (flat.qty, flat.entry_price, flat.version) == (D(0), None, 2)
    with pytest.raises(ValidationFailed, match="entry_price: must not be negative"):
        pr.position_set(None, symbol="BTC/USDT", qty="0", entry_price="-1")


def test_balance_set_defaults_and_checks():
    assert br.balance_set(None, currency="USDT", free="10", used="2").total == D(12)
    assert br.balance_set(None, currency="USDT", total="10", used="2").free == D(8)
    with pytest.raises(ValidationFailed) as exc:
        br.balance_set(None, currency="USDT")
    assert exc.value.fields == {"total": [br.NEEDS_AN_AMOUNT]}
    with pytest.raises(ValidationFailed) as exc:
        br.balance_set(None, currency="US DT", total="1")
    assert list(exc.value.fields) == ["currency"]


# --- property: what a bot may do, the venue may do, with the same result -------------------
amounts = st.sampled_from(["0", "0.3", "0.5", "1", "1.5", "-1", "x", None])
changes = st.builds(
    r.OrderChange,
    status=st.sampled_from([*t.STATUSES, "open"]),
    filled_qty=amounts,
    avg_fill_price=st.sampled_from([None, "100", "-1"]),
    exchange_order_id=st.sampled_from([None, "", "A", "B"]),
)
states = st.builds(
    state,
    status=st.sampled_from(t.STATUSES),
    filled=st.sampled_from(["0", "0.3", "1"]),
    exid=st.sampled_from(["", "A"]),
)


def _outcome(s, change, source):
    try:
        return r.order_transition(s, change, source=source)
    except (ValidationFailed, Conflict, TransitionNotAllowed) as exc:
        return type(exc), exc.message


@settings(max_examples=400, deadline=None)
@given(states, changes)
def test_venue_rules_extend_the_bots(s, change):
    bot = _outcome(s, change, Source.BOT)
    venue = _outcome(s, change, Source.VENUE)
    if isinstance(bot, r.OrderState):
        assert venue == bot  # every move a bot may make, the venue makes identically
    elif isinstance(venue, r.OrderState):
        # the venue accepted what a bot may not: only ever because it skips states
        assert bot[0] is TransitionNotAllowed
        assert t.transition_path(s.status, change.status) is not None
        assert not t.can_transition(s.status, change.status)
    else:
        assert venue[0] is bot[0] or bot[0] is TransitionNotAllowed


def test_a_position_books_quantity_is_exact_on_38_digits():
    # an accounted quantity and an unpriced one: their sum has 38 digits, which Python's
    # default context (28) rounds
    from tradingstate.rules import accounting
    from tradingstate.rules.positions import PositionBook

    book = PositionBook(
        symbol="BTC/USDT",
        accounting=accounting.PositionState(
            qty=Decimal("12345678901234567890.123456789012345678"),
            avg_entry_price=Decimal("1"),
        ),
        version=1,
        unpriced_qty=Decimal("0.000000000000000001"),
    )
    assert book.qty == Decimal("12345678901234567890.123456789012345679")


@pytest.mark.parametrize(
    ("recorded", "expected"),
    [
        ({}, []),
        ({"side": "sell"}, ["side"]),
        ({"client_order_id": "someone-elses"}, ["client_order_id"]),
        ({"client_order_id": ""}, []),  # the venue named no client id
        ({"exchange_order_id": "556"}, ["exchange_order_id"]),
        ({"exchange_order_id": ""}, []),
    ],
)
def test_a_trade_recorded_with_no_order_is_attached_only_to_an_order_it_can_be(recorded, expected):
    from types import SimpleNamespace

    from tradingstate.rules.fills import attach_differences

    order = SimpleNamespace(side="buy", client_order_id="late", exchange_order_id="555")
    fill = SimpleNamespace(
        **{"side": "buy", "client_order_id": "late", "exchange_order_id": "555", **recorded}
    )
    assert attach_differences(fill, order) == expected
