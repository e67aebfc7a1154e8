"""A whole pass through the real ccxt client against the loopback fake Binance/Bybit/OKX."""

from datetime import timedelta
from decimal import Decimal as D

import pytest
from django.utils import timezone

from reconciliation.models import Discrepancy
from reconciliation.services import run_reconciliation
from tests.factories import BalanceFactory, OrderFactory, PositionFactory
from tests.fakes.scenarios import seed_derivatives
from tradingstate.models import AuditEntry, Order, Position

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
def test_pass_through_ccxt_repairs_to_the_venue(fake_exchange, make_fake_account, exchange):
    # given: the venue's state, and a local book that drifted from it
    seed_derivatives(getattr(fake_exchange, exchange))
    # grace 0: the "not found" passes below may follow each other at once
    account = make_fake_account(
        exchange, "swap", name=f"{exchange}-recon", save=True, stale_order_grace_seconds=0
    )
    OrderFactory(account=account, client_order_id="abc123", exchange_order_id="1001",
                 symbol="BTC/USDT:USDT", quantity=D("0.01"), price=D("50000.5"),
                 status="submitted")  # fmt: skip
    # filled on the venue while we were away
    OrderFactory(account=account, client_order_id="jkl000", exchange_order_id="1004",
                 symbol="BTC/USDT:USDT", side="sell", quantity=D("0.1"),
                 status="submitted")  # fmt: skip
    # the venue never heard of it
    OrderFactory(account=account, client_order_id="ghost1", symbol="BTC/USDT:USDT",
                 quantity=D("1"), status="submitted")  # fmt: skip
    Order.objects.update(updated_at=timezone.now() - timedelta(minutes=5))
    PositionFactory(account=account, symbol="BTC/USDT:USDT", qty=D("0.05"))
    PositionFactory(account=account, symbol="ETH/USDT:USDT", qty=D("-1.25"))
    BalanceFactory(account=account, currency="USDT", free=D("1"), total=D("1"))

    # when
    run = run_reconciliation(account, "manual")

    # then
    assert run.status == "completed", run.error
    found = {(r.type, r.key) for r in Discrepancy.objects.filter(run=run)}
    assert ("missing_local_order", "def456") in found
    assert ("stale_local_order", "jkl000") in found
    assert ("stale_local_order", "ghost1") in found
    assert ("position_mismatch", "BTC/USDT:USDT") in found
    assert ("balance_mismatch", "USDT") in found
    assert not any(key == "abc123" for _, key in found)
    filled = Order.objects.get(client_order_id="jkl000")
    assert filled.status == "filled" and filled.filled_qty == D("0.1")
    # issue 14: one "not found" proves nothing; ghost1 waits stale_not_found_passes passes
    ghost = Discrepancy.objects.get(run=run, key="ghost1")
    assert ghost.status == "open" and ghost.exchange_value["not_found_passes"] == 1
    assert Order.objects.get(client_order_id="ghost1").status == "submitted"
    created = Order.objects.get(client_order_id="def456")
    assert created.status == "partially_filled" and created.filled_qty == D("0.5")
    assert created.origin == "reconciliation"
    assert Position.objects.get(symbol="BTC/USDT:USDT").qty == D("0.08")
    assert AuditEntry.objects.filter(action="repair.apply").count() == run.repairs_applied
    # the seeded venue lists no trades: def456's and jkl000's fills are inferred
    assert ("missing_fill", "ETH/USDT:USDT:inferred-1002-0.5") in found
    assert ("missing_fill", "BTC/USDT:USDT:inferred-1004-0.1") in found
    assert run.repairs_applied == len(found) - 1  # all but ghost1

    second = run_reconciliation(account, "manual")
    assert second.discrepancies_found == 1  # ghost1, not found twice
    third = run_reconciliation(account, "manual")
    ghost = Discrepancy.objects.get(run=third, key="ghost1")
    assert ghost.status == "repaired" and ghost.exchange_value["not_found_passes"] == 3
    assert Order.objects.get(client_order_id="ghost1").status == "cancelled"
    again = run_reconciliation(account, "manual")
    assert again.status == "completed" and again.discrepancies_found == 0


@pytest.mark.parametrize(
    ("exchange", "paths"),
    [
        ("binance", ["/fapi/v3/positionRisk", "/fapi/v2/positionRisk"]),
        ("bybit", ["/v5/position/list"]),
        ("okx", ["/api/v5/account/positions"]),
    ],
)
def test_fault_on_one_fetch_repairs_nothing_of_it(
    fake_exchange, make_fake_account, exchange, paths
):
    seed_derivatives(getattr(fake_exchange, exchange))
    account = make_fake_account(exchange, "swap", name=f"{exchange}-faulty", save=True)
    PositionFactory(account=account, symbol="BTC/USDT:USDT", qty=D("0.05"))
    for path in paths:
        fake_exchange.fail(path, "429", retry_after=5)
    run = run_reconciliation(account, "manual")
    assert run.status == "incomplete" and run.retry_after_seconds == 5
    assert Discrepancy.objects.filter(run=run, type="fetch_error", key="positions").exists()
    assert Position.objects.get(symbol="BTC/USDT:USDT").qty == D("0.05")


@pytest.mark.parametrize(
    ("exchange", "variable"),
    [("binance", "TS_FAKE_API_SECRET"), ("bybit", "TS_FAKE_API_SECRET"),
     ("okx", "TS_FAKE_API_PASSPHRASE")],
)  # fmt: skip
def test_missing_credentials_stop_the_account_with_an_alert(
    fake_exchange, make_fake_account, monkeypatch, caplog, exchange, variable
):
    account = make_fake_account(exchange, "swap", name=f"{exchange}-nokey", save=True)
    monkeypatch.delenv(variable)
    run = run_reconciliation(account, "schedule")
    assert run.status == "failed" and variable in run.error
    account.refresh_from_db()
    assert not account.enabled and variable in account.disabled_reason
    assert f"ALERT reconciliation stopped for account {exchange}-nokey" in caplog.text


@pytest.mark.parametrize("exchange", ["binance", "bybit", "okx"])
def test_venue_auth_error_stops_the_account(fake_exchange, make_fake_account, exchange):
    # given: the venue refuses the key on the open-orders call
    seed_derivatives(getattr(fake_exchange, exchange))
    account = make_fake_account(exchange, "swap", name=f"{exchange}-badkey", save=True)
    path = {"binance": "/fapi/v1/openOrders", "bybit": "/v5/order/realtime",
            "okx": "/api/v5/trade/orders-pending"}[exchange]  # fmt: skip
    fake_exchange.fail(path, "auth")
    # when
    run = run_reconciliation(account, "schedule")
    # then: the run fails and the account stops, nothing is repaired
    assert run.status == "failed"
    account.refresh_from_db()
    assert not account.enabled
