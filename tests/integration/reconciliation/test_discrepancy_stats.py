"""Discrepancy analytics (issue 18 item 8): time to repair p50/p95 per type, recurrence by
type, symbol and venue, the persistent-desync trend, the false-stale rate; the API, the
console page, and a constant number of statements as history grows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reconciliation.analytics import discrepancy_stats
from reconciliation.models import Discrepancy, ReconciliationRun
from tests.factories import AccountFactory, BotFactory
from tradingstate.models import ExchangeAccount

pytestmark = pytest.mark.django_db


def _run(account, at):
    run = ReconciliationRun.objects.create(account=account, trigger="schedule", status="completed")
    ReconciliationRun.objects.filter(pk=run.pk).update(created_at=at, started_at=at, finished_at=at)
    return run


ENTITY = {"position_mismatch": "positions", "balance_mismatch": "balances"}


def _d(account, at, type, key, *, status="open", consecutive=1, persistent=False, resolved=None):
    d = Discrepancy.objects.create(
        run=_run(account, at), account=account, type=type, key=key,
        entity=ENTITY.get(type, "orders"),
        status=status, consecutive_runs=consecutive, persistent=persistent,
    )  # fmt: skip
    Discrepancy.objects.filter(pk=d.pk).update(created_at=at, resolved_at=resolved)
    return d


@pytest.fixture
def history(db):
    now = timezone.now()
    paper = AccountFactory(name="p1", exchange="paper")
    venue = AccountFactory(name="b1", exchange="binance")
    t0 = now - timedelta(days=2)
    # position mismatches repaired after 10, 20 ... 90 s, and one seen over 3 passes
    # (counted from its first pass: 100 s)
    for i in range(1, 10):
        _d(paper, t0 + timedelta(minutes=i), "position_mismatch", "BTC/USDT", status="repaired",
           resolved=t0 + timedelta(minutes=i, seconds=10 * i))  # fmt: skip
    first = t0 + timedelta(hours=1)
    _d(paper, first, "position_mismatch", "ETH/USDT", status="superseded")
    _d(paper, first + timedelta(seconds=30), "position_mismatch", "ETH/USDT", consecutive=2,
       status="superseded")  # fmt: skip
    _d(paper, first + timedelta(seconds=60), "position_mismatch", "ETH/USDT", consecutive=3,
       persistent=True, status="repaired", resolved=first + timedelta(seconds=100))  # fmt: skip
    # balances on the other venue, one became persistent yesterday
    _d(venue, now - timedelta(days=1), "balance_mismatch", "USDT", consecutive=3, persistent=True)
    _d(venue, now - timedelta(days=1, minutes=2), "balance_mismatch", "USDT")
    # four stale orders: one gone without repair (seen alive), one later seen on the venue
    # as missing_local_order, two really stale (repaired to their end state)
    _d(paper, t0, "stale_local_order", "s1", status="resolved", resolved=t0 + timedelta(seconds=30))
    _d(paper, t0, "stale_local_order", "s2", status="repaired", resolved=t0 + timedelta(seconds=1))
    _d(paper, t0 + timedelta(minutes=5), "missing_local_order", "s2", status="repaired",
       resolved=t0 + timedelta(minutes=5, seconds=1))  # fmt: skip
    _d(paper, t0, "stale_local_order", "s3", status="repaired", resolved=t0 + timedelta(seconds=1))
    _d(paper, t0, "stale_local_order", "s4", status="repaired", resolved=t0 + timedelta(seconds=1))
    # outside the 30-day window
    _d(paper, now - timedelta(days=40), "position_mismatch", "OLD/USDT", status="repaired",
       resolved=now - timedelta(days=40) + timedelta(seconds=5))  # fmt: skip
    return paper, venue


def test_the_figures(history):
    stats = discrepancy_stats(accounts=ExchangeAccount.objects.all(), days=30)
    ttr = {r.type: r for r in stats.time_to_repair}
    pm = ttr["position_mismatch"]
    # 10, 20, ..., 90 s and the persistent one: 100 s from its first pass (not 40 s)
    assert pm.repaired == 10 and pm.p50_seconds == 50.0 and pm.p95_seconds == 100.0
    assert ttr["stale_local_order"].repaired == 3 and ttr["stale_local_order"].p95_seconds == 1.0
    by_type = {r["type"]: r["occurrences"] for r in stats.recurrence_by_type}
    # occurrences: first sightings only (the ETH one counts once), not the 40-day-old one
    assert by_type == {"position_mismatch": 10, "stale_local_order": 4,
                       "balance_mismatch": 1, "missing_local_order": 1}  # fmt: skip
    by_symbol = [(r["symbol"], r["occurrences"]) for r in stats.recurrence_by_symbol]
    assert by_symbol[0] == ("BTC/USDT", 9) and ("ETH/USDT", 1) in by_symbol
    assert {r["venue"]: r["occurrences"] for r in stats.recurrence_by_venue} == {
        "paper": 15, "binance": 1}  # fmt: skip
    days = {r["day"]: r["became_persistent"] for r in stats.persistent_trend}
    assert sum(days.values()) == 2 and len(days) in (1, 2)
    assert stats.stale_orders == 4 and stats.stale_later_seen_alive == 2
    assert stats.false_stale_rate == 0.5


def test_the_api_and_its_scope(client, staff_user, history):
    _paper, venue = history
    client.force_login(staff_user)
    body = client.get("/api/v1/discrepancies/stats/").json()
    assert body["accounts"] == ["b1", "p1"] and body["days"] == 30
    assert body["false_stale_rate"] == 0.5 and body["stale_orders"] == 4
    pm = next(r for r in body["time_to_repair"] if r["type"] == "position_mismatch")
    assert pm == {"type": "position_mismatch", "repaired": 10, "p50_seconds": 50.0,
                  "p95_seconds": 100.0}  # fmt: skip
    one = client.get("/api/v1/discrepancies/stats/", {"account": "b1"}).json()
    assert one["accounts"] == ["b1"] and one["recurrence_by_type"] == [
        {"type": "balance_mismatch", "occurrences": 1}]  # fmt: skip
    for bad in ({"days": "0"}, {"days": "x"}, {"days": "400"}):
        resp = client.get("/api/v1/discrepancies/stats/", bad)
        assert resp.status_code == 400 and "days" in resp.json()["fields"]
    # a bot sees its own accounts only; another's is not found
    bot = BotFactory()
    bot.accounts.add(venue)
    client.force_login(bot.user)
    assert client.get("/api/v1/discrepancies/stats/").json()["accounts"] == ["b1"]
    assert client.get("/api/v1/discrepancies/stats/", {"account": "p1"}).status_code == 404


def test_the_console_page_draws_the_charts(admin_client, history):
    text = admin_client.get("/admin/console/analytics/").content.decode()
    assert text.count('class="bar-chart"') == 5 and 'class="column-chart"' in text
    assert 'id="false-stale-rate">50 %<' in text
    assert (
        'data-type="position_mismatch"' in text and "/api/v1/discrepancies/stats/?days=30" in text
    )


def test_statements_do_not_grow_with_history(history):
    paper, _ = history

    def count():
        with CaptureQueriesContext(connection) as queries:
            discrepancy_stats(accounts=ExchangeAccount.objects.all(), days=30)
        return len(queries)

    few = count()
    now = timezone.now()
    for i in range(40):
        _d(paper, now - timedelta(hours=i), "position_mismatch", f"X{i % 5}/USDT",
           status="repaired", resolved=now - timedelta(hours=i) + timedelta(seconds=3))  # fmt: skip
    assert count() == few <= 7
