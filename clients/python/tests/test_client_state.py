"""The sync client against a live server: kill switch, reconciliation, health, accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tradingstate_client import (
    AuthenticationError,
    Client,
    KillSwitchActive,
    PermissionDenied,
)

ACCOUNT = "paper-demo"
SPARE = "client-spare"


@pytest.fixture
def ts(live):
    with Client(live.base_url, live.token) as client:
        yield client


@pytest.fixture
def staff(live):
    with Client(live.base_url, live.tokens["staff"]) as client:
        yield client
        # every test here leaves the kill switch off
        client.killswitch_deactivate("client test cleanup")
        client.killswitch_deactivate("client test cleanup", account=SPARE)


def test_global_kill_switch_blocks_orders_and_trading_allowed_says_so(ts, staff):
    # given
    assert ts.trading_allowed(ACCOUNT) is True
    # when
    # (issue 13: the global switch needs staff or killswitch.activate_global; a bot's
    # activate without an account halts its own accounts)
    change = staff.killswitch_activate("client drill")
    # then
    assert change.changed and change.active and change.scope == "global"
    assert change.state.active and change.state.reason == "client drill"
    assert ts.trading_allowed(ACCOUNT) is False
    with pytest.raises(KillSwitchActive) as err:
        ts.register_order(ACCOUNT, symbol="BTC/USDT", side="buy", quantity="0.01", price="1")
    assert err.value.status == 423 and err.value.error == "kill_switch_active"
    assert err.value.reason == "client drill"
    # activating again is a no-op (changed is False)
    assert staff.killswitch_activate("client drill").changed is False
    # a bot may not deactivate; staff may
    with pytest.raises(PermissionDenied) as denied:
        ts.killswitch_deactivate("please")
    assert denied.value.status == 403 and "deactivate" in denied.value.detail.lower()
    off = staff.killswitch_deactivate("drill over")
    assert off.changed and not off.active
    assert ts.trading_allowed(ACCOUNT) is True


def test_an_account_halt_stops_only_that_account(ts, staff):
    # when
    ts.killswitch_activate("spare only", account=SPARE)
    # then
    status = ts.killswitch()
    # one of the bot's accounts is halted: `active` says so (issue 13, D3)
    assert status.active and [h.account for h in status.halted_accounts] == [SPARE]
    assert status.raw["scope"] == "account" and status.raw["trading_allowed"] is False
    assert status.halted_accounts[0].activated_at.tzinfo is not None
    assert ts.trading_allowed(SPARE) is False
    assert ts.trading_allowed(ACCOUNT) is True


def test_reconcile_waits_for_the_finished_pass(ts):
    # when
    run = ts.reconcile(ACCOUNT, wait=True, timeout=60)
    # then
    assert run.finished and run.status == "completed", run
    assert run.account == ACCOUNT and run.trigger == "api"
    assert run.finished_at is not None and run.finished_at.tzinfo is not None
    runs = list(ts.iter_reconciliations(ACCOUNT, page_size=1))
    assert runs[0].id == run.id and len(runs) >= 2  # the fixture's pass too
    assert ts.reconciliations(ACCOUNT, page_size=1).results[0] == runs[0]


def test_reconcile_without_wait_returns_the_queued_run(ts):
    run = ts.reconcile(ACCOUNT, wait=False, dry_run=True)
    assert run.status == "queued" and run.dry_run and not run.finished


def test_discrepancies_of_the_demo_desync(ts):
    # the fixture's first pass repaired the runbook's three discrepancies
    found = list(ts.iter_discrepancies(ACCOUNT, page_size=1))
    types = {d.type for d in found}
    assert {"position_mismatch", "stale_local_order", "missing_local_order"} <= types
    position = next(d for d in found if d.type == "position_mismatch")
    assert position.key == "BTC/USDT" and position.created_at.tzinfo is not None
    only = ts.discrepancies(ACCOUNT, type="position_mismatch")
    assert {d.type for d in only} == {"position_mismatch"}


def test_health_and_accounts(ts, live):
    health = ts.health()
    assert health.db == "ok" and health.status in ("ok", "degraded")
    assert health.worker is not None
    assert {a.name for a in health.accounts} == {ACCOUNT, SPARE}
    accounts = ts.accounts()
    assert {a.name for a in accounts} == {ACCOUNT, SPARE}
    demo = next(a for a in accounts if a.name == ACCOUNT)
    assert demo.exchange == "paper" and demo.last_reconciled_at is not None
    # without a token: the summary only
    with Client(live.base_url) as anonymous:
        assert anonymous.health().accounts is None
        with pytest.raises((AuthenticationError, PermissionDenied)):
            anonymous.accounts()
    with Client(live.base_url, "not-a-valid-token") as wrong, pytest.raises(AuthenticationError):
        wrong.accounts()


def test_positions_reflect_the_venue_after_the_pass(ts):
    btc = next(p for p in ts.positions(ACCOUNT) if p.symbol == "BTC/USDT")
    assert isinstance(btc.qty, Decimal) and btc.qty >= Decimal("0.08")
