"""The rate limit's store (issue 13 point 12, issue 17 point 1): ``migrate`` alone leaves a
working API, the throttle costs one round trip, and it never answers 500.

- No cache table (``createcachetable`` never ran): bots' requests work (they were 500 with
  an HTML page when the counts lived in the database cache).
- Its own table missing or unreachable: the request is let through and the failure logged.
- Redis configured: the same sliding-window decisions, counted by one script per request.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api_support import API, make_bot
from tests.factories import AccountFactory
from tradingstate.db.throttle import rate_count, rate_count_orm
from tradingstate.web.throttling import BotRateThrottle

REDIS_URL = "redis://127.0.0.1:6379/4"  # this branch's Redis database


@pytest.fixture(autouse=True)
def _fresh_failure_log(monkeypatch):
    # the throttle logs a store failure at most once a minute per process
    monkeypatch.setattr(BotRateThrottle, "_last_failure_log", 0.0, raising=False)


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


@pytest.mark.django_db
def test_migrate_alone_serves_bots_without_the_cache_table(settings):
    # given a database made by `migrate` only: no cache table
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS tradingstate_cache")
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"bot": "2/min"},
    }
    client, _ = make_bot("alpha", AccountFactory(name="acct-m"))
    # when a bot calls a throttled endpoint
    responses = [client.get(f"{API}/accounts/") for _ in range(3)]
    # then it is served, and still limited
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2]["Content-Type"].startswith("application/json")


@pytest.mark.django_db(transaction=True)
def test_throttle_store_missing_lets_the_request_through(settings, caplog):
    client, _ = make_bot("alpha", AccountFactory(name="acct-n"))
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tradingstate_ratecounter RENAME TO ratecounter_moved")
    try:
        with caplog.at_level(logging.ERROR, logger="tradingstate.throttle"):
            response = client.get(f"{API}/accounts/")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE ratecounter_moved RENAME TO tradingstate_ratecounter")
    assert response.status_code == 200, response.content[:300]
    assert "Rate-limit store unavailable" in caplog.text


@pytest.mark.django_db
def test_the_counter_is_one_statement():
    with CaptureQueriesContext(connection) as ctx:
        count = rate_count(key="k", period_index=10, limit=5, weight=0.5)
    assert count.allowed and count.current == 1 and len(ctx.captured_queries) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("fn", [rate_count, rate_count_orm], ids=["sql", "orm"])
def test_counter_rolls_windows_and_refuses_without_counting(fn):
    # window 10: 3 allowed of limit 3, the 4th refused and not counted
    got = [fn(key="k", period_index=10, limit=3, weight=1.0) for _ in range(4)]
    assert [(c.allowed, c.current, c.previous) for c in got] == [
        (True, 1, 0),
        (True, 2, 0),
        (True, 3, 0),
        (False, 3, 0),
    ]
    # window 11 at weight 1/3: 3 * 1/3 + current < 3 allows 1, then 2; the third is refused
    got = [fn(key="k", period_index=11, limit=3, weight=1 / 3) for _ in range(3)]
    assert [(c.allowed, c.current, c.previous) for c in got] == [
        (True, 1, 3),
        (True, 2, 3),
        (False, 2, 3),
    ]
    # a gap of more than one window forgets both
    c = fn(key="k", period_index=20, limit=3, weight=1.0)
    assert (c.allowed, c.current, c.previous) == (True, 1, 0)
    # limit 0 refuses a first request too
    c = fn(key="z", period_index=20, limit=0, weight=1.0)
    assert (c.allowed, c.current) == (False, 0)


@pytest.mark.django_db
@pytest.mark.parametrize("fn", [rate_count, rate_count_orm], ids=["sql", "orm"])
def test_a_late_request_of_an_older_window_never_moves_the_window_back(fn):
    # given: window 1000 full (5 of 5), then the first request of window 1001
    assert all(fn(key="k", period_index=1000, limit=5, weight=0.999).allowed for _ in range(5))
    c = fn(key="k", period_index=1001, limit=5, weight=0.999)
    assert (c.allowed, c.current, c.previous) == (True, 1, 5)
    # when: a request that computed window 1000 arrives late (another host's clock, a slow
    # request across the boundary)
    late = fn(key="k", period_index=1000, limit=5, weight=0.999)
    # then: it counts in window 1001 as at its start (5 * 1 + 1 >= 5): refused, and the
    # row keeps window 1001's counts
    assert (late.allowed, late.current, late.previous) == (False, 1, 5)
    # and window 1001 stays as full as it was: no fresh budget (it reset to 0/0 before)
    got = [fn(key="k", period_index=1001, limit=5, weight=0.999) for _ in range(3)]
    assert [(c.allowed, c.current, c.previous) for c in got] == [(False, 1, 5)] * 3
    # and a late request with room left in the newer window is counted there
    assert fn(key="k", period_index=1001, limit=7, weight=0.999).allowed
    c = fn(key="k", period_index=1000, limit=8, weight=0.5)
    assert (c.allowed, c.current, c.previous) == (True, 3, 5)


@pytest.mark.django_db
@pytest.mark.skipif(not _redis_up(), reason="needs Redis on 127.0.0.1:6379")
def test_redis_store_gives_the_same_decisions(settings):
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"bot": "10/min"},
    }
    cache.clear()
    try:
        _, user = make_bot("alpha", AccountFactory(name="acct-r"))
        request = SimpleNamespace(user=user)
        now = [6_000_000.0]
        throttle = BotRateThrottle()
        throttle.timer = lambda: now[0]

        def allowed(n):
            return sum(throttle.allow_request(request, None) for _ in range(n))

        with CaptureQueriesContext(connection) as ctx:
            assert allowed(15) == 10
        assert len(ctx.captured_queries) == 0  # no SQL: one Redis script a request
        assert throttle.wait() == pytest.approx(60.0)
        now[0] += 75  # a quarter into the next window: the previous 10 weigh 7.5
        assert allowed(10) == 3
        assert throttle.wait() == pytest.approx(3.0)
        # a late request of the older window neither passes nor moves the window back
        now[0] -= 30
        assert allowed(1) == 0
        now[0] += 30
        assert allowed(5) == 0
    finally:
        cache.clear()


@pytest.mark.django_db
def test_redis_unreachable_lets_the_request_through(settings, caplog):
    # given Redis configured but down (a closed port)
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    client, _ = make_bot("alpha", AccountFactory(name="acct-down"))
    # when a bot calls a throttled endpoint
    with caplog.at_level(logging.ERROR, logger="tradingstate.throttle"):
        response = client.get(f"{API}/accounts/")
    # then it is served (no 500), and the failure is logged
    assert response.status_code == 200, response.content[:300]
    assert "Rate-limit store unavailable" in caplog.text


# --- PostgreSQL: the count is made in the bot's token statement ------------------------------
def _counter(user):
    from tradingstate.models import RateCounter

    row = RateCounter.objects.filter(key=f"throttle_bot_{user.pk}").first()
    return None if row is None else row.current


def _two_per_minute(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"bot": "2/min"},
    }


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writable CTE: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_token_statement_counts_and_refuses(settings):
    _two_per_minute(settings)
    client, user = make_bot("alpha", AccountFactory(name="acct-t"))
    assert [client.get(f"{API}/accounts/").status_code for _ in range(2)] == [200, 200]
    with CaptureQueriesContext(connection) as ctx:
        refused = client.get(f"{API}/accounts/")
    # one statement read the token and counted, and the throttle refused on its answer
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert len(ctx.captured_queries) == 1, [q["sql"][:80] for q in ctx.captured_queries]
    assert "tradingstate_ratecounter" in ctx.captured_queries[0]["sql"]
    assert _counter(user) == 2  # the refused request is not counted


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writable CTE: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_only_a_valid_token_of_an_active_bot_is_counted(settings):
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import get_token_model
    from rest_framework.test import APIClient

    _two_per_minute(settings)
    client, user = make_bot("alpha", AccountFactory(name="acct-v"))
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert client.get(f"{API}/accounts/").status_code == 200
    assert _counter(user) == 1
    # the token's key (its first 15 characters) with a wrong rest: 401, not counted
    forged = APIClient()
    forged.credentials(HTTP_AUTHORIZATION=f"Token {token[:15]}{'0' * (len(token) - 15)}")
    assert [forged.get(f"{API}/accounts/").status_code for _ in range(3)] == [401] * 3
    assert _counter(user) == 1
    # the user deactivated: 401, not counted
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert client.get(f"{API}/accounts/").status_code == 401
    assert _counter(user) == 1
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    # an expired token: 401 (and deleted), not counted
    get_token_model().objects.filter(user=user).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get(f"{API}/accounts/").status_code == 401
    assert _counter(user) == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="writable CTE: PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_the_kill_switch_read_is_never_counted(settings):
    _two_per_minute(settings)
    client, user = make_bot("alpha", AccountFactory(name="acct-k"))
    assert [client.get(f"{API}/killswitch/").status_code for _ in range(4)] == [200] * 4
    assert _counter(user) is None
