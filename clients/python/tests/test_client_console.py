"""The console's two API reads (issue 18) through the client, typed: the account's state as
of a moment, and the discrepancy analytics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from tradingstate_client import AccountState, Client, DiscrepancyStats

ACCOUNT = "paper-demo"


@pytest.fixture
def ts(live):
    with Client(live.base_url, live.token) as client:
        yield client


def test_state_as_of_now_and_before_the_first_pass(ts):
    # given: the fixture's demo, repaired by its first pass (local 0.05 -> the venue's 0.08)
    now = ts.state(ACCOUNT, datetime.now(UTC))
    assert isinstance(now, AccountState) and now.account == ACCOUNT
    btc = next(p for p in now.held.positions if p.symbol == "BTC/USDT")
    assert isinstance(btc.qty, Decimal) and btc.qty >= Decimal("0.08")
    assert now.exchange is not None and now.exchange.started_at.tzinfo is not None
    assert {o.source for o in now.exchange.orders} <= {"agreed", "reported"}
    # before anything was recorded: nothing held, no pass yet
    before = ts.state(ACCOUNT, datetime.now(UTC) - timedelta(days=3650))
    assert before.held.positions == [] and before.held.orders == []


def test_discrepancy_stats(ts):
    stats = ts.discrepancy_stats()
    assert isinstance(stats, DiscrepancyStats) and ACCOUNT in stats.accounts
    types = {r.type for r in stats.time_to_repair}
    assert "position_mismatch" in types
    assert all(isinstance(r.p50_seconds, Decimal) for r in stats.time_to_repair)
    assert stats.days == 30 and stats.since < stats.until
