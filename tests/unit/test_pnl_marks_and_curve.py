"""Pure parts of issue 15's storage and console side: which symbols a pass prices, when a
price is stale, symbol parts, and the server-rendered P&L curve (gaps, stale points, escaping)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from tradingstate.rules.marks import asset_symbols, mark_is_stale, mark_symbols, symbol_parts
from tradingstate.web.console.pnl import CurvePoint, pnl_curve_svg

NOW = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_derivative_accounts_price_positions_open_on_either_side():
    symbols = mark_symbols(
        market_type="swap",
        position_qtys=[("BTC/USDT:USDT", D("1")), ("ETH/USDT:USDT", D("0")),
                       ("ETH/USDT:USDT", D("-2")), ("SOL/USDT:USDT", D("0"))],
        balance_totals=[("USDT", D("100")), ("BNB", D("1"))],
        valuation_currency="USDT",
    )  # fmt: skip
    assert symbols == ["BTC/USDT:USDT", "ETH/USDT:USDT"]


def test_spot_accounts_price_every_non_quote_balance():
    symbols = mark_symbols(
        market_type="spot",
        position_qtys=[],
        balance_totals=[("USDT", D("100")), ("btc", D("0.1")), ("ETH", D("0"))],
        valuation_currency="usdt",
    )
    assert symbols == ["BTC/USDT"]


def test_symbol_parts_and_asset_symbols():
    assert symbol_parts("BTC/USDT") == ("BTC", "USDT", "")
    assert symbol_parts("BTC/USDT:USDT") == ("BTC", "USDT", "USDT")
    assert symbol_parts("BTC/USD:BTC-250627") == ("BTC", "USD", "BTC")
    assert asset_symbols("bnb", "USDT") == ("BNB/USDT", "BNB/USDT:USDT")


def test_stale_by_flag_or_age():
    assert not mark_is_stale(stale=False, time=NOW - timedelta(seconds=60), now=NOW,
                             max_age_seconds=60)  # fmt: skip
    assert mark_is_stale(stale=False, time=NOW - timedelta(seconds=61), now=NOW, max_age_seconds=60)
    assert mark_is_stale(stale=True, time=NOW, now=NOW, max_age_seconds=60)
    assert mark_is_stale(stale=False, time=None, now=NOW, max_age_seconds=60)


def test_curve_draws_gaps_for_unvalued_hours_and_flags_stale_points():
    points = [
        CurvePoint(NOW - timedelta(hours=3), D("10")),
        CurvePoint(NOW - timedelta(hours=2), D("-5.5"), stale=True),
        CurvePoint(NOW - timedelta(hours=1), None),  # no price that hour: a gap, not 0
        CurvePoint(NOW, D("20")),
        CurvePoint(NOW - timedelta(days=30), D("999")),  # outside the window
    ]
    svg = pnl_curve_svg(points, now=NOW, label="<acct> net")
    assert svg.count("<polyline") == 2  # two segments around the gap
    assert svg.count('class="point stale"') == 1 and svg.count('class="point"') == 2
    assert "999" not in svg and ">20<" in svg and ">-5.5<" in svg  # max and min labels
    assert "<acct>" not in svg and "&lt;acct&gt; net" in svg


def test_curve_without_points_is_an_empty_frame():
    svg = pnl_curve_svg([], now=NOW)
    assert svg.startswith("<svg") and "<polyline" not in svg and "<circle" not in svg


# --- the entry_price_mismatch repair rule ----------------------------------------------------
def test_adopting_the_venues_entry_price_changes_nothing_else():
    import pytest

    from tradingstate.errors import ValidationFailed
    from tradingstate.rules import accounting
    from tradingstate.rules.positions import PositionBook, position_adopt_entry_price

    terms = accounting.Terms(base="BTC", quote="USDT")
    state = accounting.PositionState(
        qty=D("2"), avg_entry_price=D("100"), realized_pnl=D("7"), fees_quote=D("1"),
        fees_other={"BNB": D("0.5")}, fills=3, inferred_fills=1,
    )  # fmt: skip
    book = position_adopt_entry_price(
        PositionBook("BTC/USDT", state, version=4), entry_price="101.5", terms=terms
    )
    new = book.accounting
    assert new.avg_entry_price == D("101.5") and book.version == 5
    assert (new.qty, new.realized_pnl, new.fees_quote, new.fees_other) == (
        D("2"), D("7"), D("1"), (("BNB", D("0.5")),)
    )  # fmt: skip
    assert (new.fills, new.inferred_fills, new.adjustments) == (3, 1, 1)
    # held without an entry price: the adjustment opens it at the venue's
    unpriced = PositionBook("BTC/USDT", accounting.FLAT, version=1, unpriced_qty=D("-3"))
    opened = position_adopt_entry_price(unpriced, entry_price="99", terms=terms)
    assert (opened.qty, opened.accounting.avg_entry_price, opened.unpriced_qty) == (
        D("-3"), D("99"), 0
    )  # fmt: skip
    with pytest.raises(ValidationFailed, match="flat"):
        position_adopt_entry_price(
            PositionBook("BTC/USDT", accounting.FLAT, 1), entry_price="1", terms=terms
        )
    with pytest.raises(ValidationFailed, match="entry_price"):
        position_adopt_entry_price(
            PositionBook("BTC/USDT", state, 1), entry_price="-1", terms=terms
        )
