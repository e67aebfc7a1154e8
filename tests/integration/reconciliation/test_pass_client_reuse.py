"""A steady pass builds no ccxt client: its account's clients from the pass before are
taken back from the process's pool (tradingstate.exchanges.pool), forks included."""

from __future__ import annotations

import pytest

from reconciliation.models import ReconciliationRun
from reconciliation.services import run_reconciliation
from tests.counting import ccxt_constructions
from tests.fakes.exchange_server import FakeBalance, FakeOrder, FakePosition
from tradingstate.exchanges import pool

pytestmark = pytest.mark.django_db


def test_steady_passes_build_no_ccxt_client(fake_exchange, make_fake_account, monkeypatch):
    # given: a Binance USD-M account with open orders, positions and balances on 3 symbols
    venue = fake_exchange.binance
    for i, symbol in enumerate(("BTCUSDT", "ETHUSDT", "BTCUSDT")):
        venue.orders.append(
            FakeOrder(str(900 + i), symbol, "buy", "1", "10", client_order_id=f"r{i}")
        )
    venue.positions.append(FakePosition("BTCUSDT", "1", "10"))
    venue.futures_balances.append(FakeBalance("USDT", "100"))
    account = make_fake_account("binance", "swap", name="reuse", save=True)
    pool.clients_reset()
    built = ccxt_constructions(monkeypatch)
    first = run_reconciliation(account, trigger="schedule")
    assert first.status == ReconciliationRun.Status.COMPLETED, first.error
    after_first = len(built)
    # when: the account's next passes in this process
    for _ in range(3):
        run = run_reconciliation(account, trigger="schedule")
        assert run.status == ReconciliationRun.Status.COMPLETED, run.error
    # then: the first pass built its sessions' clients; the next ones built none
    assert after_first >= 1
    assert built[after_first:] == []
