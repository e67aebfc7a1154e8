"""``manage.py exchange_snapshot`` against the fake exchange server and the paper venue."""

from __future__ import annotations

from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.factories import AccountFactory, BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.fixtures import PLANTED_SECRET
from tests.fakes.scenarios import seed_derivatives
from tradingstate.models import PaperOrder, PaperPosition

pytestmark = pytest.mark.django_db


def _snapshot(name: str) -> str:
    out = StringIO()
    call_command("exchange_snapshot", "--account", name, stdout=out)
    return out.getvalue()


def _line(output: str, *words: str) -> str:
    lines = [line for line in output.splitlines() if all(w in line.split() for w in words)]
    assert len(lines) == 1, (words, output)
    return lines[0]


@pytest.mark.parametrize("exchange", ["binance", "bybit"])
def test_snapshot_prints_the_seeded_state_beside_local(fake_exchange, make_fake_account, exchange):
    # given: the venue's state, and local rows that agree on some things only
    seed_derivatives(getattr(fake_exchange, exchange))
    account = make_fake_account(exchange, "swap", name=f"{exchange}-main", save=True)
    OrderFactory(account=account, client_order_id="abc123", exchange_order_id="1001",
                 symbol="BTC/USDT:USDT", quantity=D("0.01"), status="submitted")  # fmt: skip
    OrderFactory(account=account, client_order_id="stale1", symbol="BTC/USDT:USDT",
                 quantity=D("1"), status="submitted")  # fmt: skip
    PositionFactory(account=account, symbol="BTC/USDT:USDT", qty=D("0.05"))
    PositionFactory(account=account, symbol="ETH/USDT:USDT", qty=D("-1.25"))
    BalanceFactory(account=account, currency="USDT", free=D("1"), used=D("0"), total=D("1"))
    # when
    output = _snapshot(account.name)
    # then: orders
    assert "!=" not in _line(output, "abc123", "1001")
    assert "unknown locally" in _line(output, "def456", "1002")
    assert "0.5" in _line(output, "def456").split()
    assert "not open on the exchange" in _line(output, "stale1")
    # positions
    assert _line(output, "BTC/USDT:USDT", "0.08", "0.05").startswith("  !=")
    assert "!=" not in _line(output, "ETH/USDT:USDT", "-1.25", "-1.25")
    # balances
    total = "1001" if exchange == "binance" else "1200.75"
    assert _line(output, "USDT", total, "1").startswith("  !=")
    assert PLANTED_SECRET not in output


def test_snapshot_error_is_one_clear_line_and_non_zero(fake_exchange, make_fake_account):
    # given
    account = make_fake_account("binance", "swap", name="binance-down", save=True)
    fake_exchange.fail("/fapi/v3/account", "429", retry_after="3")
    # when / then
    with pytest.raises(CommandError) as caught:
        _snapshot(account.name)
    message = str(caught.value)
    assert message.startswith("error: RateLimited: ")
    assert len(message.splitlines()) == 1
    assert PLANTED_SECRET not in message


def test_snapshot_missing_credentials(fake_exchange, make_fake_account, monkeypatch):
    account = make_fake_account("bybit", "swap", name="bybit-nokeys", save=True)
    monkeypatch.delenv("TS_FAKE_API_KEY")
    with pytest.raises(CommandError, match=r"error: MissingCredentials: .*TS_FAKE_API_KEY"):
        _snapshot(account.name)


def test_snapshot_unknown_account_lists_known_names():
    AccountFactory(name="alpha")
    AccountFactory(name="beta")
    with pytest.raises(CommandError, match="unknown account 'gamma'; known accounts: alpha, beta"):
        _snapshot("gamma")


def test_snapshot_of_the_paper_venue():
    # given: the runbook's desync
    account = AccountFactory(name="paper-demo", exchange="paper", market_type="swap")
    PaperPosition.objects.create(account=account, symbol="BTC/USDT", qty=D("0.08"))
    PaperOrder.objects.create(
        account=account,
        exchange_order_id="p-2",
        client_order_id="def456",
        symbol="BTC/USDT",
        side="buy",
        amount=D("0.01"),
        price=D("1"),
    )
    PositionFactory(account=account, symbol="BTC/USDT", qty=D("0.05"))
    OrderFactory(account=account, client_order_id="abc123", status="submitted")
    # when
    output = _snapshot("paper-demo")
    # then
    assert _line(output, "BTC/USDT", "0.08", "0.05").startswith("  !=")
    assert "unknown locally" in _line(output, "def456")
    assert "not open on the exchange" in _line(output, "abc123")


def test_snapshot_lists_the_venues_trades_beside_the_local_fills():
    # given: the paper venue's trades; one recorded locally, one missing, one different
    from datetime import timedelta

    from django.utils import timezone

    from tradingstate.models import Fill, PaperTrade

    account = AccountFactory(name="paper-fills", exchange="paper", market_type="swap")
    order = OrderFactory(account=account, client_order_id="o1", symbol="BTC/USDT",
                         status="partially_filled", quantity=D("1"))  # fmt: skip
    at = timezone.now() - timedelta(minutes=5)
    for tid, price in (("PT-1", "100"), ("PT-2", "101"), ("PT-3", "102")):
        PaperTrade.objects.create(account=account, trade_id=tid, exchange_order_id="p-1",
                                  client_order_id="o1", symbol="BTC/USDT", side="buy",
                                  quantity=D("0.1"), price=D(price), liquidity="taker",
                                  executed_at=at)  # fmt: skip
    Fill.objects.create(account=account, order=order, symbol="BTC/USDT", trade_id="PT-1",
                        quantity=D("0.1"), price=D("100"), executed_at=at)  # fmt: skip
    Fill.objects.create(account=account, order=order, symbol="BTC/USDT", trade_id="PT-3",
                        quantity=D("0.1"), price=D("99"), executed_at=at)  # fmt: skip
    # when
    output = _snapshot("paper-fills")
    # then
    assert "Trades since" in output
    assert not _line(output, "PT-1").startswith("  !=")
    assert _line(output, "PT-2").startswith("  !=") and "missing_fill" in _line(output, "PT-2")
    assert "fill_mismatch" in _line(output, "PT-3")
