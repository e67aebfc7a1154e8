"""pnl, pnl_history and exposure against the live server: the typed models read the API's
exact shapes (issue 15), amounts as Decimal, unknown figures as None, flags as bool."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tradingstate_client import Client


def test_pnl_is_typed(live):
    with Client(live.base_url, live.token) as ts:
        pnl = ts.pnl("paper-demo")
        assert pnl.account == "paper-demo" and pnl.valuation_currency == "USDT"
        assert pnl.as_of.tzinfo is not None
        assert pnl.positions, "the demo holds BTC/USDT"
        for p in pnl.positions:
            assert isinstance(p.qty, Decimal) and isinstance(p.mark_stale, bool)
            for value in (p.realized_pnl, p.unrealized_pnl, p.fees, p.net_pnl, p.mark_price):
                assert value is None or isinstance(value, Decimal)
        since = ts.pnl("paper-demo", since=datetime.now(UTC) - timedelta(hours=1))
        assert [p.symbol for p in since.positions] == [p.symbol for p in pnl.positions]


def test_exposure_and_history_are_typed(live):
    with Client(live.base_url, live.token) as ts:
        exposure = ts.exposure()
        assert exposure.valuation_currency == "USDT"
        for asset in exposure.assets:
            assert isinstance(asset.net_qty, Decimal) and isinstance(asset.mark_stale, bool)
            assert set(asset.by_account) <= {"paper-demo", "client-spare"}  # granted only
        assert isinstance(exposure.totals.excluded_assets, list)
        history = ts.pnl_history("paper-demo", start=datetime.now(UTC) - timedelta(days=1))
        assert all(point.as_of.tzinfo is not None for point in history)
