import itertools
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from reconciliation.models import ReconciliationRun
from reconciliation.tasks import reconcile_account_task
from reconciliation.ticker import Ticker
from tests.factories import AccountFactory
from tradingstate.models import AuditEntry, ExchangeAccount, PaperPosition

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def make_ticker(clock, interval=None):
    sent = []
    ticker = Ticker(
        enqueue=lambda account_id, trigger, run_id=None: sent.append(
            (account_id, trigger, run_id, clock.now)
        ),
        clock=clock,
        interval_override=interval,
    )
    return ticker, sent


def finish(run_id, status="completed", retry_after=None):
    ReconciliationRun.objects.filter(pk=run_id).update(
        status=status, finished_at=timezone.now(), retry_after_seconds=retry_after
    )


def test_startup_pass_then_fifteen_second_cadence():
    a = AccountFactory(name="live-a", reconciliation_interval_seconds=15)
    AccountFactory(name="off", enabled=False)
    clock = Clock()
    ticker, sent = make_ticker(clock)
    ticker.tick()
    assert [(s[0], s[1]) for s in sent] == [(a.pk, "startup")]  # every account once, first
    finish(sent[-1][2])
    for _ in range(60 * 4):  # one simulated minute in 0.25 s ticks
        clock.now += 0.25
        ticker.tick()
        if sent[-1][2] and ReconciliationRun.objects.get(pk=sent[-1][2]).status == "queued":
            finish(sent[-1][2])
    times = [s[3] for s in sent]
    gaps = [b - a_ for a_, b in itertools.pairwise(times)]
    assert len(sent) == 5 and all(abs(g - 15) <= 2 for g in gaps), gaps
    assert {s[1] for s in sent[1:]} == {"schedule"}


def test_no_pile_up_behind_a_queued_pass():
    AccountFactory(name="slow", reconciliation_interval_seconds=5)
    clock = Clock()
    ticker, sent = make_ticker(clock)
    ticker.tick()
    for _ in range(100):
        clock.now += 0.25
        ticker.tick()
    assert len(sent) == 1  # the first is still queued: nothing piles up behind it


def test_backoff_after_incomplete_passes():
    AccountFactory(name="flaky", reconciliation_interval_seconds=10)
    clock = Clock()
    ticker, sent = make_ticker(clock)
    ticker.tick()
    finish(sent[-1][2], status="incomplete", retry_after=35)
    clock.now += 10.25
    ticker.tick()
    assert len(sent) == 1  # Retry-After 35 s (> interval) is honoured
    clock.now += 30
    ticker.tick()
    assert len(sent) == 2


def test_loop_banner(caplog):
    caplog.set_level("INFO", logger="reconciliation")
    Ticker(enqueue=lambda *a, **k: None).banner()
    assert "ReconciliationLoop started (interval=30s, auto_repair=True)" in caplog.text


def test_task_is_idempotent_and_skips_disabled():
    call_command("demo")
    account = ExchangeAccount.objects.get(name="paper-demo")
    run = ReconciliationRun.objects.create(account=account, trigger="schedule")
    assert reconcile_account_task(account.pk, "schedule", run.pk).endswith("completed")
    assert "already completed" in reconcile_account_task(account.pk, "schedule", run.pk)
    # the runbook's three and the demo's missed fill (issue 14): once each, not twice
    assert AuditEntry.objects.filter(action="repair.apply").count() == 4
    ExchangeAccount.objects.filter(pk=account.pk).update(enabled=False)
    assert reconcile_account_task(account.pk, "schedule") == "account missing or disabled"


def test_recover_gates_orders_until_first_pass(client, monkeypatch, capsys, caplog):
    caplog.set_level("INFO", logger="tradingstate")
    # the venue is unreachable during recovery: the gate stays closed
    from tradingstate.exchanges import paper

    def down(self):
        from tradingstate.exchanges.base import ExchangeUnavailable

        raise ExchangeUnavailable("maintenance")

    monkeypatch.setattr(paper.PaperExchange, "fetch_open_orders", down)
    call_command("recover")
    account = ExchangeAccount.objects.get(name="paper-demo")
    assert account.recovery_started_at is not None
    assert "Application started" in caplog.text
    assert "orders stay refused (503)" in capsys.readouterr().err
    assert AuditEntry.objects.filter(action="account.recovery_begin").count() == 1

    from knox.models import AuthToken

    from tests.factories import BotFactory

    bot = BotFactory(user__username="rbot")
    bot.accounts.add(account)
    _, token = AuthToken.objects.create(bot.user)
    body = {
        "client_order_id": "r1",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.01",
        "price": "100",
    }
    resp = client.post(
        "/api/v1/accounts/paper-demo/orders/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert resp.status_code == 503 and resp.json()["error"] == "reconciliation_in_progress"

    monkeypatch.undo()
    call_command("reconcile", "--account", "paper-demo")
    account.refresh_from_db()
    assert account.recovery_started_at is None
    resp = client.post(
        "/api/v1/accounts/paper-demo/orders/",
        body,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Token {token}",
    )
    assert resp.status_code == 201, resp.json()


def test_demo_is_idempotent_and_resets(capsys):
    call_command("demo")
    call_command("demo")
    assert "exists" in capsys.readouterr().out
    call_command("reconcile", "--account", "paper-demo")
    call_command("demo", "--reset")
    assert PaperPosition.objects.get().qty == Decimal("0.08")
    capsys.readouterr()
    call_command("reconcile", "--account", "paper-demo", "--dry-run")
    out = capsys.readouterr().out
    # the runbook's three and the demo's missed fill (issue 14)
    assert "(dry run)" in out and "4 discrepancies" in out and "0 repairs applied" in out
