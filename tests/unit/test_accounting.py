"""Average-cost accounting: exact worked examples (issue 15 item 2), numbers worked by hand."""

from decimal import Decimal as D

import pytest

from tradingstate.rules import accounting as acc
from tradingstate.rules import money
from tradingstate.rules.accounting import Adjustment, Fill, Mark, PositionState, Terms
from tradingstate.rules.valuation import pnl_totals, valuation

BTC = Terms(base="BTC", quote="USDT")
ETH = Terms(base="ETH", quote="USDT")


def buy(qty, price, fee="0", ccy="", inferred=False):
    return Fill("buy", D(qty), D(price), D(fee), ccy, inferred)


def sell(qty, price, fee="0", ccy="", inferred=False):
    return Fill("sell", D(qty), D(price), D(fee), ccy, inferred)


def test_build_moves_the_average_quantity_weighted():
    # given a flat position
    # when buying 1 @ 100 then 3 @ 200
    state = acc.replay([buy("1", "100"), buy("3", "200")], BTC)
    # then avg = (1*100 + 3*200) / 4 = 700 / 4 = 175, nothing realized
    assert state.qty == D("4")
    assert state.avg_entry_price == D("175")
    assert state.realized_pnl == 0
    assert state.fills == 2


def test_reduce_realizes_at_the_average_and_keeps_it():
    # given 4 @ 175
    state = PositionState(qty=D("4"), avg_entry_price=D("175"))
    # when selling 1 @ 195
    after, effect = acc.step(state, sell("1", "195"), BTC)
    # then realized = (195 - 175) * 1 * (+1) * 1 = 20; 3 left, still @ 175
    assert after.realized_pnl == D("20")
    assert (after.qty, after.avg_entry_price) == (D("3"), D("175"))
    assert (effect.realized_pnl, effect.closed_qty, effect.opened_qty) == (D("20"), D("1"), 0)


def test_flip_closes_at_the_average_then_opens_the_rest_at_the_fill_price():
    # given 3 @ 175, 20 realized
    state = PositionState(qty=D("3"), avg_entry_price=D("175"), realized_pnl=D("20"))
    # when selling 5 @ 150
    after, effect = acc.step(state, sell("5", "150"), BTC)
    # then 3 close: (150 - 175) * 3 * (+1) = -75, realized 20 - 75 = -55; short 2 @ 150
    assert after.realized_pnl == D("-55")
    assert (after.qty, after.avg_entry_price) == (D("-2"), D("150"))
    assert (effect.closed_qty, effect.opened_qty, effect.qty_delta) == (D("3"), D("2"), D("-5"))


def test_close_a_short_realizes_with_the_short_sign_and_empties_the_average():
    # given short 2 @ 150, -55 realized
    state = PositionState(qty=D("-2"), avg_entry_price=D("150"), realized_pnl=D("-55"))
    # when buying 2 @ 130
    after = acc.apply_fill(state, buy("2", "130"), BTC)
    # then (130 - 150) * 2 * (-1) = +40, realized -15; flat, no average
    assert after.realized_pnl == D("-15")
    assert after.qty == 0
    assert after.avg_entry_price is None
    assert after.is_flat


def test_short_build_and_unrealized():
    # given sells 2 @ 100 and 2 @ 110: short 4 @ (200 + 220) / 4 = 105
    state = acc.replay([sell("2", "100"), sell("2", "110")], BTC)
    assert (state.qty, state.avg_entry_price) == (D("-4"), D("105"))
    # when marked at 100: unrealized = (100 - 105) * (-4) * 1 = +20
    value = valuation(state, Mark(D("100")), D("1"))
    assert value.unrealized_pnl == D("20")
    # and buying 1 back @ 90 realizes (90 - 105) * 1 * (-1) = +15
    assert acc.apply_fill(state, buy("1", "90"), BTC).realized_pnl == D("15")


def test_fees_in_quote_are_kept_apart_from_realized():
    # given buy 2 @ 100 (fee 0.2 USDT), sell 2 @ 110 (fee 0.22 USDT)
    state = acc.replay([buy("2", "100", "0.2", "USDT"), sell("2", "110", "0.22", "usdt")], BTC)
    # then realized is gross: (110 - 100) * 2 = 20; fees 0.2 + 0.22 = 0.42; net 19.58
    assert state.realized_pnl == D("20")
    assert state.fees_quote == D("0.42")
    value = valuation(state, None, D("1"))
    assert (value.fees, value.net_pnl) == (D("0.42"), D("19.58"))
    # a flat position needs no mark: unrealized is 0, not unknown
    assert value.unrealized_pnl == 0
    assert value.mark_missing


def test_fee_in_base_on_a_buy_reduces_the_quantity_and_is_valued_at_the_fill_price():
    # given buy 1 BTC @ 20000 with a 0.001 BTC fee: 0.999 BTC arrive
    state = acc.apply_fill(acc.FLAT, buy("1", "20000", "0.001", "BTC"), BTC)
    # then qty 0.999 @ 20000; fee 0.001 * 20000 = 20 USDT
    assert (state.qty, state.avg_entry_price) == (D("0.999"), D("20000"))
    assert state.fees_quote == D("20")
    assert state.realized_pnl == 0
    # when marked at 21000: unrealized (21000 - 20000) * 0.999 = 999, net 999 - 20 = 979
    value = valuation(state, Mark(D("21000")), D("1"))
    assert (value.unrealized_pnl, value.net_pnl) == (D("999"), D("979"))
    # which is the cash view: paid 20000, hold 0.999 * 21000 = 20979, +979


def test_fee_in_base_on_a_sell_leaves_with_the_sold_quantity():
    # given 2 ETH @ 100
    state = PositionState(qty=D("2"), avg_entry_price=D("100"))
    # when selling 1 @ 150 with a 0.01 ETH fee: 1.01 ETH leave
    after = acc.apply_fill(state, sell("1", "150", "0.01", "ETH"), ETH)
    # then realized (150 - 100) * 1.01 = 50.5; fee 0.01 * 150 = 1.5; 0.99 left @ 100
    assert (after.qty, after.avg_entry_price) == (D("0.99"), D("100"))
    assert (after.realized_pnl, after.fees_quote) == (D("50.5"), D("1.5"))
    # marked at 150: unrealized (150 - 100) * 0.99 = 49.5; net 50.5 + 49.5 - 1.5 = 98.5
    # cash view: -200 + 150 + 0.99 * 150 = 98.5
    assert valuation(after, Mark(D("150")), D("1")).net_pnl == D("98.5")


def test_fees_in_a_third_currency_are_kept_per_currency_and_converted_at_its_mark():
    # given buy 1 @ 30000 and sell 1 @ 30500, each with a 0.05 BNB fee
    fills = [buy("1", "30000", "0.05", "BNB"), sell("1", "30500", "0.05", "bnb")]
    state = acc.replay(fills, BTC)
    # then realized 500, no quote fees, 0.1 BNB kept as BNB
    assert state.realized_pnl == D("500")
    assert state.fees_quote == 0
    assert state.fees_other == (("BNB", D("0.1")),)
    # shown with BNB at 600 (stale): fees 0.1 * 600 = 60, net 500 - 60 = 440, flagged stale
    value = valuation(state, Mark(D("30500")), D("1"), {"BNB": Mark(D("600"), stale=True)})
    assert (value.fees, value.net_pnl) == (D("60"), D("440"))
    assert value.stale_fee_currencies == ("BNB",)
    assert value.stale
    # without a BNB mark the fees are unknown (never converted at zero), and so is net
    value = valuation(state, Mark(D("30500")), D("1"), {})
    assert value.fees is None
    assert value.net_pnl is None
    assert value.fees_unconverted == (("BNB", D("0.1")),)
    assert value.fees_known == 0


def test_contract_size_scales_pnl_and_base_quantity():
    # given an OKX-style contract of 0.01 BTC
    swap = Terms(base="BTC", quote="USDT", contract_size=D("0.01"), settle="USDT")
    # when buying 10 contracts @ 60000 and 30 @ 62000
    state = acc.replay([buy("10", "60000"), buy("30", "62000")], swap)
    # then avg = (10*60000 + 30*62000) / 40 = 2460000 / 40 = 61500 (prices are per BTC)
    assert (state.qty, state.avg_entry_price) == (D("40"), D("61500"))
    # when selling 20 @ 63000: (63000 - 61500) * 20 * (+1) * 0.01 = 300
    state = acc.apply_fill(state, sell("20", "63000"), swap)
    assert state.realized_pnl == D("300")
    # 20 contracts hold 0.2 BTC; at 61000 unrealized (61000 - 61500) * 20 * 0.01 = -100
    assert state.base_qty(swap.contract_size) == D("0.2")
    assert valuation(state, Mark(D("61000")), swap.contract_size).unrealized_pnl == D("-100")


def test_contract_size_above_one_with_a_base_fee_in_contracts():
    # given a contract of 100 DOGE; buy 5 contracts @ 0.2 with a 1 DOGE fee
    doge = Terms(base="DOGE", quote="USDT", contract_size=D("100"))
    state = acc.apply_fill(acc.FLAT, buy("5", "0.2", "1", "DOGE"), doge)
    # then 1 DOGE = 0.01 contract: 4.99 contracts (499 DOGE) @ 0.2; fee 1 * 0.2 = 0.2 USDT
    assert (state.qty, state.avg_entry_price, state.fees_quote) == (D("4.99"), D("0.2"), D("0.2"))
    # at 0.25: unrealized (0.25 - 0.2) * 4.99 * 100 = 24.95; net 24.95 - 0.2 = 24.75
    # cash view: paid 5 * 100 * 0.2 = 100, hold 499 * 0.25 = 124.75, +24.75
    assert valuation(state, Mark(D("0.25")), D("100")).net_pnl == D("24.75")


def test_inferred_fills_count_and_are_flagged():
    # given the issue 14 scenario: 0.012 @ 48990 from the venue and 0.008 @ 49015 inferred
    state = acc.replay([buy("0.012", "48990"), buy("0.008", "49015", inferred=True)], BTC)
    # then both count: avg (0.012*48990 + 0.008*49015) / 0.02 = (587.88 + 392.12) / 0.02 = 49000
    assert (state.qty, state.avg_entry_price) == (D("0.020"), D("49000"))
    assert (state.fills, state.inferred_fills) == (2, 1)
    assert state.rests_on_inferred
    # and every figure shown on them is flagged, down to the totals
    value = valuation(state, Mark(D("50000")), D("1"))
    assert value.unrealized_pnl == D("20")  # (50000 - 49000) * 0.02
    assert value.rests_on_inferred
    assert pnl_totals({"BTC/USDT": value}).rests_on_inferred == ("BTC/USDT",)


def test_the_average_is_rounded_half_even_to_18_places_within_the_declared_bound():
    # given buy 1 @ 1 and 2 @ 2: avg 5/3 = 1.666...67 (18 places, half-even)
    state = acc.replay([buy("1", "1"), buy("2", "2")], BTC)
    assert state.avg_entry_price == D("1.666666666666666667")
    # when selling 3 @ 2: (2 - 1.666666666666666667) * 3 = 0.999999999999999999
    state = acc.apply_fill(state, sell("3", "2"), BTC)
    # exact arithmetic says 1; the error is within 1/2e-18 * |qty| * contract_size = 1.5e-18
    assert state.realized_pnl == D("0.999999999999999999")
    assert abs(state.realized_pnl - 1) <= D("1.5e-18")


def test_realized_pnl_rounds_to_18_places():
    # given avg 1.666666666666666667 on a 0.001 contract
    micro = Terms(base="BTC", quote="USDT", contract_size=D("0.001"))
    state = PositionState(qty=D("3"), avg_entry_price=D("1.666666666666666667"))
    # when selling 1 @ 2: (2 - 1.666666666666666667) * 1 * 0.001
    #   = 0.000333333333333333333 (21 places)
    after = acc.apply_fill(state, sell("1", "2"), micro)
    # then stored with 18 places, half even
    assert after.realized_pnl == D("0.000333333333333333")


def test_missing_mark_leaves_unrealized_unknown_never_zero():
    state = PositionState(qty=D("1"), avg_entry_price=D("100"), realized_pnl=D("5"))
    for mark in (None, Mark(D("0")), Mark(D("-1")), (D("NaN"), False)):
        value = valuation(state, mark, D("1"))
        assert value.unrealized_pnl is None
        assert value.net_pnl is None
        assert value.mark_missing
        assert value.realized_pnl == D("5")
    # a stale mark is used and flagged
    value = valuation(state, (D("110"), True), D("1"))
    assert (value.unrealized_pnl, value.mark_stale) == (D("10"), True)


def test_quote_rate_converts_every_figure_into_the_valuation_currency():
    # given a USDC-quoted position: realized 10 USDC, fees 1 USDC, long 1 @ 100
    state = PositionState(
        qty=D("1"), avg_entry_price=D("100"), realized_pnl=D("10"), fees_quote=D("1")
    )
    # when USDC is worth 0.999 USDT and the mark is 102 USDC
    value = valuation(state, Mark(D("102")), D("1"), quote_rate=Mark(D("0.999")))
    # then realized 9.99, unrealized 2 * 0.999 = 1.998, fees 0.999, net 9.99 + 1.998 - 0.999
    assert (value.realized_pnl, value.unrealized_pnl, value.fees) == (
        D("9.99"),
        D("1.998"),
        D("0.999"),
    )
    assert value.net_pnl == D("10.989")
    # with no quote rate given, the quote is the valuation currency: figures as accounted
    assert valuation(state, Mark(D("102")), D("1")).realized_pnl == D("10")
    # a quote rate that is missing leaves every figure unknown, never shown as if in USDT
    value = valuation(state, Mark(D("102")), D("1"), quote_rate=(None, False))
    assert value.realized_pnl is None
    assert value.quote_rate_missing


def test_totals_leave_out_unknown_figures_and_list_the_positions():
    # given one position with a mark and one without
    a = valuation(
        PositionState(qty=D("1"), avg_entry_price=D("100"), realized_pnl=D("5")),
        Mark(D("110")),
        D("1"),
    )
    b = valuation(
        PositionState(
            qty=D("-2"), avg_entry_price=D("50"), realized_pnl=D("-1"), fees_quote=D("2")
        ),
        None,
        D("1"),
    )
    totals = pnl_totals({"ETH/USDT": b, "BTC/USDT": a})
    # then realized 5 - 1 = 4, unrealized 10 (b's unknown is left out), fees 2, net 12
    assert (totals.realized_pnl, totals.unrealized_pnl, totals.fees, totals.net_pnl) == (
        D("4"),
        D("10"),
        D("2"),
        D("12"),
    )
    assert totals.incomplete == ("ETH/USDT",)
    assert not totals.complete


def test_entry_price_adjustment_keeps_realized_and_replays():
    # given 2 @ 100 and 20 realized, the venue says the entry is 101
    fills = [buy("3", "100"), sell("1", "120")]
    adopt = Adjustment(entry_price=D("101"))
    # when the repair adopts it
    state = acc.replay([*fills, adopt], BTC)
    # then avg is 101, realized is not rewritten, and the adjustment is counted
    assert (state.qty, state.avg_entry_price, state.realized_pnl) == (D("2"), D("101"), D("20"))
    assert state.adjustments == 1
    # a later sale realizes against the adopted average: (111 - 101) * 2 = 20, total 40
    assert acc.apply_fill(state, sell("2", "111"), BTC).realized_pnl == D("40")


def test_quantity_adjustment_needs_a_price_to_open_or_flip():
    state = PositionState(qty=D("2"), avg_entry_price=D("100"))
    # same direction: the average stays
    after = acc.apply_fill(state, Adjustment(qty=D("3")), BTC)
    assert (after.qty, after.avg_entry_price) == (D("3"), D("100"))
    # to flat: no average
    assert acc.apply_fill(state, Adjustment(qty=D("0")), BTC).avg_entry_price is None
    # opposite direction without a price: refused, naming the field
    with pytest.raises(acc.AccountingInputError) as err:
        acc.apply_fill(state, Adjustment(qty=D("-1")), BTC)
    assert err.value.fields == {"entry_price": [acc.ENTRY_PRICE_REQUIRED]}


def test_since_is_the_sum_of_the_effects_of_the_later_fills():
    # given four fills, the effect of each stored with it
    fills = [buy("1", "100"), sell("1", "110", "1", "USDT"), buy("2", "90"), sell("1", "95")]
    steps = acc.replay_steps(fills, BTC)
    # when asking for the figures since the third fill
    since = acc.period(effect for _, effect in steps[2:])
    # then realized (95 - 90) * 1 = 5, fees 0; the same as the difference of two states
    assert (since.realized_pnl, since.fees_quote, since.fills) == (D("5"), 0, 2)
    assert since == acc.period_between(steps[1][0], steps[-1][0])
    # and the whole history sums to the state: realized 10 + 5 = 15, fees 1
    whole = acc.period(effect for _, effect in steps)
    assert (whole.realized_pnl, whole.fees_quote) == (D("15"), D("1"))
    # valuation with since shows the period's realized and fees, today's unrealized
    value = valuation(steps[-1][0], Mark(D("100")), D("1"), since=since)
    assert (value.realized_pnl, value.unrealized_pnl, value.net_pnl) == (D("5"), D("10"), D("15"))


def test_state_round_trips_through_its_record():
    state = acc.replay([buy("1", "100", "0.1", "BNB"), buy("2", "2", inferred=True)], BTC)
    assert PositionState(**state.as_record()) == state
    assert state.as_record()["fees_other"] == {"BNB": "0.1"}


@pytest.mark.parametrize(
    ("local", "venue", "expected"),
    [
        # |100 - 100.01| = 0.01 is not > 0.0001 * 100.01 = 0.010001
        (D("100"), D("100.01"), False),
        # |100 - 100.02| = 0.02 > 0.010002
        (D("100"), D("100.02"), True),
        (D("100.02"), D("100"), True),  # 0.02 > 0.01
        (None, D("100"), True),  # the venue has one, we have none
        (D("100"), None, False),  # no verdict without the venue's price
        (D("100"), D("0"), False),  # flat on the venue
    ],
)
def test_entry_price_mismatch_is_relative_to_the_venue(local, venue, expected):
    assert acc.entry_price_mismatch(local, venue) is expected


def test_entry_price_mismatch_honours_the_tolerance():
    # |100 - 101| = 1 is not > 0.01 * 101 = 1.01
    assert acc.entry_price_mismatch(D("100"), D("101"), D("0.01")) is False
    # 1 > 0.009 * 101 = 0.909
    assert acc.entry_price_mismatch(D("100"), D("101"), D("0.009")) is True


@pytest.mark.parametrize(
    ("make", "field", "problem"),
    [
        (lambda: Fill("long", D("1"), D("1")), "side", acc.BAD_SIDE),
        (lambda: Fill("buy", 1.5, D("1")), "qty", money.NOT_A_DECIMAL),
        (lambda: Fill("buy", D("0"), D("1")), "qty", money.MUST_BE_POSITIVE),
        (lambda: Fill("buy", D("NaN"), D("1")), "qty", money.NOT_A_DECIMAL),
        (lambda: Fill("buy", D("1"), D("-1")), "price", money.MUST_NOT_BE_NEGATIVE),
        (lambda: Fill("buy", D("1"), D("1"), D("0.1")), "fee_currency", acc.FEE_CURRENCY_REQUIRED),
        (
            lambda: acc.apply_fill(acc.FLAT, buy("1", "10", "1", "BTC"), BTC),
            "fee",
            acc.BASE_FEE_TOO_LARGE,
        ),
        (
            lambda: acc.apply_fill(
                acc.FLAT, buy("1", "10"), Terms("BTC", "USD", D("100"), settle="BTC")
            ),
            "instrument",
            acc.INVERSE_UNSUPPORTED,
        ),
        (lambda: PositionState(qty=D("1")), "avg_entry_price", acc.AVG_IFF_OPEN),
        (
            lambda: PositionState(qty=D("0"), avg_entry_price=D("1")),
            "avg_entry_price",
            acc.AVG_IFF_OPEN,
        ),
        (lambda: Adjustment(), "adjustment", acc.EMPTY_ADJUSTMENT),
    ],
)
def test_bad_input_is_refused_naming_the_field(make, field, problem):
    with pytest.raises(acc.AccountingInputError) as err:
        make()
    assert err.value.fields == {field: [problem]}
    assert err.value.code == "validation_error"


def test_a_fee_rebate_in_quote_lowers_the_fees():
    state = acc.apply_fill(acc.FLAT, buy("1", "100", "-0.05", "USDT"), BTC)
    assert state.fees_quote == D("-0.05")


def test_the_money_rules_import_no_django():
    # the rules are pure: importing them must not pull in Django (or the ORM)
    import subprocess
    import sys

    code = (
        "import sys, tradingstate.rules.accounting, tradingstate.rules.valuation, "
        "tradingstate.rules.exposure; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
