"""Exposure per asset, account and venue (issue 15 item 4): worked examples and properties."""

from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradingstate.rules import exposure as ex
from tradingstate.rules.accounting import AccountingInputError, Mark
from tradingstate.rules.exposure import BalanceLine, PositionLine

D = Decimal


def perp(account, venue, base, qty, cs="1", quote="USDT", mark=None):
    return PositionLine(account, venue, f"{base}/{quote}:{quote}", base, quote, D(qty), D(cs), mark)


# the desk: alpha (binance USD-M), beta (bybit linear), gamma (binance spot)
POSITIONS = [
    perp("alpha", "binance", "BTC", "0.5"),
    perp("beta", "bybit", "BTC", "-0.2", mark=Mark(D("50100"))),  # bybit's own mark
    perp("alpha", "binance", "ETH", "-3"),
    perp("beta", "bybit", "ETH", "-10", cs="0.1"),  # 10 contracts of 0.1 ETH
    perp("beta", "bybit", "SOL", "0"),  # flat: left out
]
BALANCES = [
    BalanceLine("gamma", "binance", "BTC", D("0.1")),
    BalanceLine("gamma", "binance", "USDT", D("1000")),
    BalanceLine("gamma", "binance", "DOGE", D("5000")),  # no mark anywhere
]
MARKS = {
    "BTC/USDT:USDT": Mark(D("50000")),
    "ETH/USDT:USDT": Mark(D("3000")),
    "BTC": Mark(D("50050")),  # the spot asset's price in USDT
}


def test_desk_exposure_nets_longs_and_shorts_across_accounts_and_venues():
    # when the whole desk is valued
    result = ex.exposure(POSITIONS, BALANCES, MARKS)
    assert result.valuation_currency == "USDT"
    assert [a.asset for a in result.assets] == ["BTC", "DOGE", "ETH", "USDT"]
    btc = result.asset("BTC")
    # then BTC: alpha +0.5 * 50000 = 25000; beta -0.2 * 50100 = -10020; gamma 0.1 * 50050 = 5005
    #   net qty 0.4, net 25000 - 10020 + 5005 = 19985, gross 25000 + 10020 + 5005 = 40025
    assert (btc.net_qty, btc.net_notional, btc.gross_notional) == (D("0.4"), D("19985"), D("40025"))
    assert btc.by_account["alpha"] == ex.Share(D("0.5"), D("25000"), D("25000"), venue="binance")
    assert btc.by_account["beta"] == ex.Share(D("-0.2"), D("-10020"), D("10020"), venue="bybit")
    assert btc.by_account["gamma"] == ex.Share(D("0.1"), D("5005"), D("5005"), venue="binance")
    # per venue: binance holds alpha and gamma (0.6, 30005); bybit beta
    assert btc.by_venue["binance"] == ex.Share(D("0.6"), D("30005"), D("30005"))
    assert btc.by_venue["bybit"] == ex.Share(D("-0.2"), D("-10020"), D("10020"))
    # ETH: alpha -3 * 3000 = -9000; beta -10 * 0.1 = -1 ETH * 3000 = -3000
    eth = result.asset("ETH")
    assert (eth.net_qty, eth.net_notional, eth.gross_notional) == (D("-4"), D("-12000"), D("12000"))
    # the valuation currency is an asset at 1
    usdt = result.asset("USDT")
    assert (usdt.net_qty, usdt.net_notional, usdt.gross_notional) == (D("1000"),) * 3
    # a flat position is left out
    assert result.asset("SOL") is None


def test_an_asset_without_a_mark_is_reported_unvalued_and_left_out_of_the_totals():
    result = ex.exposure(POSITIONS, BALANCES, MARKS)
    doge = result.asset("DOGE")
    # the quantity counts; the notional is unknown, never zero
    assert doge.net_qty == D("5000")
    assert (doge.net_notional, doge.gross_notional) == (None, None)
    assert doge.mark_missing
    assert doge.by_account["gamma"].mark_missing
    # totals: net 19985 - 12000 + 1000 = 8985; gross 40025 + 12000 + 1000 = 53025; DOGE listed
    assert (result.totals.net_notional, result.totals.gross_notional) == (D("8985"), D("53025"))
    assert result.totals.excluded_assets == ("DOGE",)
    assert not result.totals.complete


def test_one_line_without_a_mark_makes_every_level_holding_it_unvalued():
    # given BTC valued for alpha but not for beta (its instrument has no mark, no BTC asset mark)
    positions = [
        perp("alpha", "binance", "BTC", "1", mark=Mark(D("50000"))),
        perp("beta", "bybit", "BTC", "-1"),
    ]
    btc = ex.exposure(positions, (), {}).asset("BTC")
    # then alpha is valued, beta and the asset are not, and BTC is out of the totals
    assert btc.by_account["alpha"].net_notional == D("50000")
    assert btc.by_account["beta"].net_notional is None
    assert btc.by_venue["bybit"].mark_missing
    assert (btc.net_qty, btc.net_notional, btc.mark_missing) == (D("0"), None, True)


def test_stale_marks_are_used_and_flagged():
    marks = {**MARKS, "ETH/USDT:USDT": Mark(D("3000"), stale=True)}
    result = ex.exposure(POSITIONS, BALANCES, marks)
    eth = result.asset("ETH")
    assert eth.net_notional == D("-12000")
    assert eth.mark_stale
    assert eth.by_account["alpha"].mark_stale
    assert result.totals.stale_assets == ("ETH",)
    assert not result.asset("BTC").mark_stale


def test_a_non_usdt_quote_is_converted_at_its_rate_and_a_zero_price_is_missing():
    # given a USDC-margined BTC position at 50000 USDC, USDC at 0.999 USDT
    line = perp("alpha", "binance", "BTC", "2", quote="USDC")
    marks = {"BTC/USDC:USDC": Mark(D("50000")), "USDC": Mark(D("0.999"))}
    # then notional 2 * 50000 * 0.999 = 99900 USDT
    assert ex.exposure([line], (), marks).asset("BTC").net_notional == D("99900")
    # with no USDC rate, the BTC asset mark is used instead: 2 * 49900 = 99800
    marks = {"BTC/USDC:USDC": Mark(D("50000")), "BTC": Mark(D("49900"))}
    assert ex.exposure([line], (), marks).asset("BTC").net_notional == D("99800")
    # a price of zero is no price
    balance = BalanceLine("gamma", "binance", "BTC", D("1"), mark=Mark(D("0")))
    assert ex.exposure((), [balance], {}).asset("BTC").mark_missing


def test_another_valuation_currency():
    # given a desk valued in USDC: USDC balances count at 1, USDT ones at their mark
    balances = [
        BalanceLine("gamma", "binance", "USDC", D("10")),
        BalanceLine("gamma", "binance", "USDT", D("10")),
    ]
    result = ex.exposure((), balances, {"USDT": Mark(D("1.001"))}, valuation_currency="usdc")
    assert result.valuation_currency == "USDC"
    assert result.asset("USDC").net_notional == D("10")
    assert result.asset("USDT").net_notional == D("10.01")
    assert result.totals.net_notional == D("20.01")


def test_bad_lines_are_refused_naming_the_field():
    with pytest.raises(AccountingInputError) as err:
        perp("alpha", "binance", "BTC", "1", cs="0")
    assert "contract_size" in err.value.fields
    with pytest.raises(AccountingInputError) as err:
        BalanceLine("gamma", "binance", "BTC", 0.1)
    assert "total" in err.value.fields


EXACT = Context(prec=200)


@st.composite
def desks(draw):
    accounts = {"a1": "binance", "a2": "bybit", "a3": "binance", "a4": "okx"}
    assets = ["BTC", "ETH", "XRP", "USDT"]
    price = st.decimals(min_value=D("0.0001"), max_value=D("100000"), places=4)
    qty = st.decimals(min_value=D("-1000"), max_value=D("1000"), places=6)
    marks = {
        a: Mark(draw(price), draw(st.booleans()))
        for a in assets[:3]
        if draw(st.integers(0, 5))  # now and then an asset has no mark
    }
    positions, balances = [], []
    for _ in range(draw(st.integers(0, 12))):
        account = draw(st.sampled_from(sorted(accounts)))
        asset = draw(st.sampled_from(assets[:3]))
        cs = draw(st.sampled_from([D("1"), D("0.01"), D("10")]))
        positions.append(perp(account, accounts[account], asset, str(draw(qty)), cs=str(cs)))
    for _ in range(draw(st.integers(0, 12))):
        account = draw(st.sampled_from(sorted(accounts)))
        balances.append(
            BalanceLine(account, accounts[account], draw(st.sampled_from(assets)), draw(qty))
        )
    return positions, balances, marks


@settings(max_examples=200, deadline=None)
@given(desks())
def test_levels_add_up_and_totals_are_the_valued_assets(desk):
    positions, balances, marks = desk
    result = ex.exposure(positions, balances, marks)
    with localcontext(EXACT):
        for asset in result.assets:
            for parts in (asset.by_account.values(), asset.by_venue.values()):
                # quantities add up at every level
                assert sum((p.net_qty for p in parts), D(0)) == asset.net_qty
                if asset.net_notional is None:
                    assert asset.mark_missing
                    assert any(p.mark_missing for p in parts)
                    continue
                # notionals add up exactly, and gross is never below |net|
                assert sum((p.net_notional for p in parts), D(0)) == asset.net_notional
                assert sum((p.gross_notional for p in parts), D(0)) == asset.gross_notional
                assert asset.gross_notional >= abs(asset.net_notional)
            if asset.asset != "USDT" and asset.asset not in marks:
                assert asset.net_notional is None  # never valued at zero
        valued = [a for a in result.assets if a.net_notional is not None]
        assert result.totals.net_notional == sum((a.net_notional for a in valued), D(0))
        assert result.totals.gross_notional == sum((a.gross_notional for a in valued), D(0))
        assert set(result.totals.excluded_assets) == {
            a.asset for a in result.assets if a.net_notional is None
        }
