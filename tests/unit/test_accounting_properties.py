"""Properties of average-cost accounting over random fill histories (issue 15 tests)."""

import re
from decimal import Context, Decimal, localcontext

from hypothesis import given, settings
from hypothesis import strategies as st

from tradingstate.rules import accounting as acc
from tradingstate.rules.accounting import Fill, Mark, PositionState, Terms
from tradingstate.rules.valuation import valuation

D = Decimal
HALF_ULP = D("0.5e-18")
EXACT = Context(prec=300)
AMOUNT = re.compile(r"^-?[0-9]{1,20}(\.[0-9]{1,18})?$")  # the published amount pattern


def decimals(lo, hi, places):
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places)


@st.composite
def histories(draw, fee_kinds=("none", "quote", "base", "other")):
    """(instrument, fills, mark, BNB mark): any sides, sizes and fees, so flips happen."""
    cs = draw(st.sampled_from([D("1"), D("0.01"), D("0.001"), D("10"), D("100")]))
    fills = []
    for _ in range(draw(st.integers(1, 25))):
        side = draw(st.sampled_from(["buy", "sell"]))
        qty = draw(decimals("0.000001", "1000", 6))
        price = draw(decimals("0.01", "100000", 2))
        kind = draw(st.sampled_from(fee_kinds))
        fee, ccy = D(0), ""
        if kind == "quote":
            fee, ccy = draw(decimals("-1", "50", 8)), "USDT"  # rebates too
        elif kind == "other":
            fee, ccy = draw(decimals("0", "1", 8)), "BNB"
        elif kind == "base":
            # a share of what the fill moves, in base units (qty * contract_size)
            fee, ccy = qty * cs * draw(decimals("0", "0.01", 4)), "BTC"
        fills.append(Fill(side, qty, price, fee, ccy, inferred=draw(st.booleans())))
    instrument = Terms(base="BTC", quote="USDT", contract_size=cs)
    return instrument, fills, draw(decimals("0.01", "100000", 2)), draw(decimals("0.01", "1000", 2))


def cash_view(fills, cs, mark, bnb):
    """Sell proceeds - buy costs - fees paid in cash + the position marked to market, exactly.
    Base fees are paid in kind: they only shrink the quantity held."""
    with localcontext(EXACT):
        cash = qty = D(0)
        for f in fills:
            sign = 1 if f.side == "buy" else -1
            cash -= sign * f.qty * f.price * cs
            qty += sign * f.qty
            if f.fee_currency == "USDT":
                cash -= f.fee
            elif f.fee_currency == "BNB":
                cash -= f.fee * bnb
            elif f.fee_currency == "BTC":
                qty -= f.fee / cs
        return cash + qty * cs * mark, qty


def declared_bound(steps, cs):
    """The module's rounding bound: per fill 1/2e-18 on realized, 1/2e-18 on fees and
    1/2e-18 * |qty| * contract_size from the rounded average; 1/2e-18 for each shown figure."""
    with localcontext(EXACT):
        per_fill = sum((2 * HALF_ULP + HALF_ULP * abs(s.qty) * cs for s, _ in steps), D(0))
        return per_fill + 2 * HALF_ULP


@settings(max_examples=300, deadline=None)
@given(histories())
def test_conservation_realized_plus_unrealized_minus_fees_is_the_cash_view(history):
    # given any sequence of fills (fees in quote, base and a third currency) and a mark
    instrument, fills, mark, bnb = history
    cs = instrument.contract_size
    # when the fills are accounted and valued at the mark
    steps = acc.replay_steps(fills, instrument)
    state = steps[-1][0]
    value = valuation(state, Mark(mark), cs, {"BNB": Mark(bnb)})
    # then the quantity is exactly what the fills moved (base fees included)
    expected, qty = cash_view(fills, cs, mark, bnb)
    assert state.qty == qty
    # and realized + unrealized - fees is the cash view, within the declared rounding
    with localcontext(EXACT):  # 38-digit sums overflow the default 28-digit context
        net = value.realized_pnl + value.unrealized_pnl - value.fees
        assert net == value.net_pnl
        assert abs(net - expected) <= declared_bound(steps, cs), (net, expected)


def stored(state: PositionState) -> PositionState:
    """What the Position row gives back: every amount as text in the published pattern."""
    record = state.as_record()
    for key, value in record.items():
        if isinstance(value, Decimal):
            text = format(value, "f")
            assert AMOUNT.match(text), (key, text)
            record[key] = Decimal(text)
    for text in record["fees_other"].values():
        assert AMOUNT.match(text), text
    return PositionState(**record)


@settings(max_examples=200, deadline=None)
@given(histories())
def test_replay_equals_the_incremental_figures_stored_on_the_row(history):
    # given fills applied one at a time, the state saved and read back after each
    instrument, fills, _, _ = history
    state = acc.FLAT
    for fill in fills:
        state = stored(acc.apply_fill(state, fill, instrument))
    # when the rebuild replays them in the same order
    rebuilt = acc.replay(fills, instrument)
    # then it finds exactly the stored figures
    assert rebuilt == state


@settings(max_examples=200, deadline=None)
@given(histories(), st.integers(min_value=0, max_value=25))
def test_since_from_stored_effects_equals_the_difference_of_states(history, split):
    # given a history and a point T inside it
    instrument, fills, _, _ = history
    split = min(split, len(fills))
    steps = acc.replay_steps(fills, instrument)
    before = steps[split - 1][0] if split else acc.FLAT
    final = steps[-1][0]
    # when summing the effects stored with the fills after T
    since = acc.period(effect for _, effect in steps[split:])
    # then they equal the difference of the states, and all effects sum to the state
    assert since == acc.period_between(before, final)
    whole = acc.period(effect for _, effect in steps)
    assert (whole.realized_pnl, whole.fees_quote, whole.fees_other) == (
        final.realized_pnl,
        final.fees_quote,
        final.fees_other,
    )
    assert (whole.fills, whole.inferred_fills) == (final.fills, final.inferred_fills)
    assert final.inferred_fills == sum(f.inferred for f in fills)
