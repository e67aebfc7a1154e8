"""The paper venue's matching rules (tradingstate.rules.paper): given book + mark -> trades."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.rules import paper as rules
from tradingstate.rules.paper import BookOrder, Execution, VenueBalance, VenuePosition

RATE = D("0.0005")


def order(side="buy", type="limit", amount="0.1", price="60000", arriving=False, oid="1"):
    return BookOrder(
        order_id=oid,
        symbol="BTC/USDT:USDT",
        side=side,
        type=type,
        amount=D(amount),
        price=None if price is None else D(price),
        arriving=arriving,
    )


def match(orders, mark):
    return rules.match(
        orders, None if mark is None else D(mark), fee_rate=RATE, fee_currency="USDT"
    )


# --- market orders -------------------------------------------------------------------------
def test_market_order_fills_in_full_at_the_mark_as_taker():
    # given a market buy of 0.1 and a mark of 60,250
    # when it is matched
    [ex] = match([order(type="market", price=None, arriving=True)], "60250")
    # then it executes 0.1 at 60,250, taker, fee = 0.1 * 60250 * 0.0005
    assert ex == Execution("1", "BTC/USDT:USDT", "buy", D("0.1"), D("60250"), D("3.0125"),
                           "USDT", "taker")  # fmt: skip


def test_nothing_executes_without_a_mark():
    assert match([order(type="market", price=None), order()], None) == []


def test_market_order_without_a_mark_is_refused_naming_the_symbol():
    with pytest.raises(Conflict) as err:
        rules.check_market_priced(symbol="SOL/USDT", type="market", mark=None)
    assert "no mark price for SOL/USDT" in err.value.message
    assert list(err.value.fields) == ["symbol"]
    rules.check_market_priced(symbol="SOL/USDT", type="limit", mark=None)  # a limit rests


@pytest.mark.parametrize("type_", ["stop", "stop_limit", "take_profit", "trailing_stop", "other"])
def test_only_market_and_limit_orders_are_placeable(type_):
    with pytest.raises(ValidationFailed) as err:
        rules.check_placeable(type=type_, price=D(1))
    assert list(err.value.fields) == ["type"] and type_ in err.value.message


def test_limit_needs_a_price():
    with pytest.raises(ValidationFailed) as err:
        rules.check_placeable(type="limit", price=None)
    assert list(err.value.fields) == ["price"]


# --- limit orders --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "limit", "mark", "crosses"),
    [
        ("buy", "60000", "60000.1", False),
        ("buy", "60000", "60000", True),  # a buy limit fills when mark <= limit
        ("buy", "60000", "59000", True),
        ("sell", "65000", "64999.9", False),
        ("sell", "65000", "65000", True),  # a sell limit fills when mark >= limit
        ("sell", "65000", "66000", True),
    ],
)
def test_limit_fills_when_the_mark_crosses(side, limit, mark, crosses):
    assert bool(match([order(side=side, price=limit)], mark)) is crosses


def test_resting_limit_fills_at_its_limit_price_as_maker():
    # given a buy limit at 60,000 resting on the book; when the mark drops to 59,000
    [ex] = match([order(price="60000")], "59000")
    # then it executes at its own price, maker
    assert (ex.price, ex.liquidity, ex.fee) == (D("60000"), "maker", D("3.0000"))


def test_arriving_marketable_limit_takes_the_mark_as_taker():
    # given a buy limit at 60,000 placed while the mark is 59,000
    [ex] = match([order(price="60000", arriving=True)], "59000")
    # then it executes at the mark (the better price), taker
    assert (ex.price, ex.liquidity) == (D("59000"), "taker")


def test_match_keeps_the_book_order_and_executes_each_crossed_order_once():
    book = [
        order(oid="a", price="60000"),
        order(oid="b", price="61000", side="sell"),
        order(oid="c", price="59000"),
        order(oid="d", type="market", price=None),
    ]
    assert [e.order_id for e in match(book, "59500")] == ["a", "d"]


def test_fee_is_rounded_to_18_places_half_even():
    assert rules.fee_for(D("0.000000000000000001"), D("1"), D("0.5")) == D("0")
    assert rules.fee_for(D("0.000000000000000003"), D("1"), D("0.5")) == D("2E-18")


@given(
    side=st.sampled_from(["buy", "sell"]),
    limit=st.decimals(min_value=1, max_value=10**6, places=2),
    mark=st.decimals(min_value=1, max_value=10**6, places=2),
    arriving=st.booleans(),
)
def test_a_fill_is_never_worse_than_the_limit(side, limit, mark, arriving):
    executions = match([order(side=side, price=str(limit), arriving=arriving)], str(mark))
    for ex in executions:
        assert ex.price <= limit if side == "buy" else ex.price >= limit
        assert ex.quantity == D("0.1") and ex.fee >= 0


# --- positions and balances ----------------------------------------------------------------
def ex(side, qty, price, fee="0"):
    return Execution("1", "BTC/USDT:USDT", side, D(qty), D(price), D(fee), "USDT", "taker")


def test_position_opens_adds_at_average_and_reduces_realizing_pnl():
    pos, realized = rules.position_after(VenuePosition(), ex("buy", "0.1", "60000"))
    assert (pos, realized) == (VenuePosition(D("0.1"), D("60000")), 0)
    pos, realized = rules.position_after(pos, ex("buy", "0.1", "62000"))
    assert (pos, realized) == (VenuePosition(D("0.2"), D("61000")), 0)
    pos, realized = rules.position_after(pos, ex("sell", "0.05", "63000"))
    assert (pos, realized) == (VenuePosition(D("0.15"), D("61000")), D("100"))


def test_position_flips_through_zero_at_the_fill_price():
    pos, realized = rules.position_after(
        VenuePosition(D("0.08"), D("60250")), ex("sell", "0.1", "61000")
    )
    assert pos == VenuePosition(D("-0.02"), D("61000"))
    assert realized == D("60.00")  # (61000 - 60250) * 0.08


def test_position_staged_without_entry_price_is_valued_at_the_fill():
    pos, realized = rules.position_after(VenuePosition(D("1"), None), ex("sell", "1", "100"))
    assert pos == VenuePosition(D("0"), None) and realized == 0


def test_derivative_balance_moves_by_realized_pnl_minus_fee():
    balances = {"USDT": VenueBalance("USDT", D("9000"), D("1000"), D("10000"))}
    out = rules.balances_after(
        balances, ex("sell", "0.08", "61000", fee="2.44"), derivative=True, base="BTC",
        quote="USDT", realized_pnl=D("60"),
    )  # fmt: skip
    assert out == {"USDT": VenueBalance("USDT", D("9057.56"), D("1000"), D("10057.56"))}


def test_spot_buy_and_sell_move_base_and_quote():
    start = {"USDT": VenueBalance("USDT", D("1000"), D("0"), D("1000"))}
    out = rules.balances_after(
        start, ex("buy", "0.01", "60000", fee="0.3"), derivative=False, base="BTC", quote="USDT"
    )
    assert out == {
        "BTC": VenueBalance("BTC", D("0.01"), D("0"), D("0.01")),
        "USDT": VenueBalance("USDT", D("399.7"), D("0"), D("399.7")),
    }
    back = rules.balances_after(
        out, ex("sell", "0.01", "61000", fee="0.305"), derivative=False, base="BTC", quote="USDT"
    )
    assert back["BTC"].total == 0 and back["USDT"].total == D("1009.395")


# --- the random walk -----------------------------------------------------------------------
def walk(seed, n, price="60000", symbol="BTC/USDT", step="0.001", price_step="0.1"):
    out, px = [], D(price)
    for i in range(1, n + 1):
        px = rules.walk_step(px, seed=seed, symbol=symbol, n=i, max_step=D(step),
                             price_step=D(price_step))  # fmt: skip
        out.append(px)
    return out


def test_walk_is_deterministic_for_a_seed_and_differs_between_seeds():
    assert walk(7, 50) == walk(7, 50)
    assert walk(7, 50) != walk(8, 50)
    assert walk(7, 50, symbol="ETH/USDT") != walk(7, 50)


def test_walk_is_the_same_in_another_process():
    # a string seed: no dependence on PYTHONHASHSEED or the process
    code = (
        "from decimal import Decimal as D; from tradingstate.rules.paper import walk_step;"
        "print(walk_step(D('60000'), seed=7, symbol='BTC/USDT', n=3, max_step=D('0.001'),"
        " price_step=D('0.1')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123"})  # fmt: skip
    assert D(out.stdout.strip()) == rules.walk_step(
        D("60000"), seed=7, symbol="BTC/USDT", n=3, max_step=D("0.001"), price_step=D("0.1")
    )


@given(seed=st.integers(0, 2**32), n=st.integers(1, 10**6))
def test_walk_step_is_bounded_on_the_tick_and_positive(seed, n):
    px = rules.walk_step(D("60000"), seed=seed, symbol="BTC/USDT", n=n, max_step=D("0.001"),
                         price_step=D("0.1"))  # fmt: skip
    assert D("59940") <= px <= D("60060")
    assert px % D("0.1") == 0 and px > 0


def test_walk_never_reaches_zero():
    assert rules.walk_step(D("0.1"), seed=1, symbol="X/Y", n=1, max_step=D("0.1"),
                           price_step=D("1")) == D("1")  # fmt: skip
