"""The paths a bot calls before every order: token check, kill-switch read, rate limit.

Shape, not time (the time is bench/api.py's): how many statements, what each caller sees,
what the rate limit counts and when it refuses.
"""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from killswitch.services import killswitch_activate
from tests.api_support import (
    API,
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    two_accounts,
)
from tests.factories import AccountFactory, StaffFactory
from tradingstate.actors import Actor
from tradingstate.models import RateCounter
from tradingstate.web.throttling import BotRateThrottle

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]

KILLSWITCH = f"{API}/killswitch/"
STAFF = Actor.system("tests")


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()
    yield
    cache.clear()


def _statements(client, path: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path)
    assert response.status_code == 200, response.content[:300]
    return len(ctx.captured_queries), [q["sql"] for q in ctx.captured_queries]


# --- the kill-switch read ----------------------------------------------------------------------
def test_killswitch_read_is_one_statement_on_postgresql_whatever_the_halts():
    a, b = two_accounts()
    client, _ = make_bot("alpha", a, b)
    counts, bodies = [], []
    for halted in ([], [a], [a, b]):
        for account in halted:
            killswitch_activate(reason="venue down", actor=STAFF, account=account)
        n, sql = _statements(client, KILLSWITCH)
        counts.append(n)
        body = client.get(KILLSWITCH).json()
        bodies.append(body)
        assert len(body["halted_accounts"]) == len(halted)
        assert body["trading_allowed"] is not halted and body["active"] is bool(halted)
    assert "knox_authtoken" in sql[0] and "tradingstate_botprofile" in sql[0]
    assert "killswitch_killswitch" in sql[-1]
    if connection.vendor == "postgresql":
        # the token (with its user and bot profile) and the switch rows the bot may see
        assert counts == [1, 1, 1], (counts, sql)
    else:  # the token, then the state
        assert counts == [2, 2, 2], (counts, sql)
    # the answer read with the token is the one the separate read gives
    from killswitch.selectors import killswitch_view

    halted_by = bodies[-1]["halted_accounts"]
    expected = killswitch_view(bot=a.bots.get())
    assert [h["account"] for h in halted_by] == [h.account for h in expected.halted_accounts]
    assert [h["activated_at"] for h in halted_by] == [
        h.activated_at.isoformat().replace("+00:00", "Z") for h in expected.halted_accounts
    ]


def test_bot_sees_only_the_halts_of_its_own_accounts():
    a, b = two_accounts()
    client, _ = make_bot("alpha", a)
    killswitch_activate(reason="a down", actor=STAFF, account=a)
    killswitch_activate(reason="b down", actor=STAFF, account=b)
    body = client.get(KILLSWITCH).json()
    assert [h["account"] for h in body["halted_accounts"]] == ["acct-a"]
    staff = APIClient()
    staff.force_login(StaffFactory(username="alice"))
    body = staff.get(KILLSWITCH).json()
    assert [h["account"] for h in body["halted_accounts"]] == ["acct-a", "acct-b"]


def test_global_switch_shows_to_every_bot():
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    killswitch_activate(reason="exchange outage", actor=STAFF)
    body = client.get(KILLSWITCH).json()
    assert body["active"] is True and body["reason"] == "exchange outage"


def test_activation_answer_shows_the_bot_only_its_own_halts():
    a, b = two_accounts()
    client, _ = make_bot("alpha", a)
    killswitch_activate(reason="b down", actor=STAFF, account=b)
    response = client.post(
        f"{KILLSWITCH}activate/", {"reason": "a down", "account": "acct-a"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert [h["account"] for h in response.json()["state"]["halted_accounts"]] == ["acct-a"]


def test_killswitch_read_is_not_rate_limited(settings):
    a, _ = two_accounts()
    client, _ = make_bot("alpha", a)
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"bot": "2/min"},
    }
    for _ in range(5):
        assert client.get(KILLSWITCH).status_code == 200
    # the rest of the API still counts, and the reads above did not use up the budget
    assert client.get(f"{API}/accounts/").status_code == 200
    assert client.get(f"{API}/accounts/").status_code == 200
    assert_error(client.get(f"{API}/accounts/"), 429, "throttled")


# --- token authentication ----------------------------------------------------------------------
def test_expired_token_is_refused_and_deleted():
    a, _ = two_accounts()
    client, user = make_bot("alpha", a)
    token = AuthToken.objects.get(user=user)
    token.expiry = timezone.now() - timedelta(seconds=1)
    token.save(update_fields=["expiry"])
    assert_error(client.get(KILLSWITCH), 401, "not_authenticated")
    assert not AuthToken.objects.filter(pk=token.pk).exists()


def test_a_users_other_expired_token_does_not_block_a_valid_one():
    a, _ = two_accounts()
    client, user = make_bot("alpha", a)
    old, _ = AuthToken.objects.create(user, expiry=timedelta(seconds=-1))
    assert client.get(KILLSWITCH).status_code == 200
    # never valid, whether or not it is still stored
    assert AuthToken.objects.filter(pk=old.pk).exists()


@pytest.mark.parametrize(
    "header",
    [
        "Token not-a-real-token-at-all",
        "Token " + "a" * 64,
        "Token ÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿÿ",
    ],
    ids=["garbage", "unknown", "non-ascii"],
)
def test_bad_tokens_are_401_not_500(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header.encode("latin-1").decode("latin-1"))
    assert_error(client.get(KILLSWITCH), 401, "not_authenticated")


def test_inactive_bot_user_is_refused():
    a, _ = two_accounts()
    client, user = make_bot("alpha", a)
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert_error(client.get(KILLSWITCH), 401, "not_authenticated")


# --- the rate limit ----------------------------------------------------------------------------
class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def _throttle(settings, rate: str, clock: Clock) -> BotRateThrottle:
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"bot": rate}}
    throttle = BotRateThrottle()
    throttle.timer = clock
    return throttle


def _bot_request():
    _, user = make_bot("alpha", AccountFactory(name="acct-t"))
    return SimpleNamespace(user=user)


def _allowed(throttle, request, n: int) -> int:
    return sum(throttle.allow_request(request, None) for _ in range(n))


def test_rate_limit_counts_in_a_sliding_window(settings):
    request = _bot_request()
    clock = Clock(6_000_000.0)  # a window boundary for 60 s windows
    throttle = _throttle(settings, "10/min", clock)
    assert _allowed(throttle, request, 15) == 10
    # this window is full on its own: wait for the next one
    assert throttle.wait() == pytest.approx(60.0)
    clock.now += 60  # the next window starts: the previous 10 still weigh fully
    assert _allowed(throttle, request, 1) == 0
    clock.now += 15  # a quarter in: the previous window weighs 10 * 3/4 = 7.5
    assert _allowed(throttle, request, 10) == 3  # 7.5 + 3 >= 10
    # 10 * (1 - t/60) + 3 < 10 once t > 18 s: 3 s from now
    assert throttle.wait() == pytest.approx(3.0)
    clock.now += 45  # the window after: the previous one held 3
    assert _allowed(throttle, request, 10) == 7


def test_rate_limit_counter_stays_a_number(settings):
    request = _bot_request()
    clock = Clock(6_000_030.0)
    throttle = _throttle(settings, "1000/min", clock)
    assert _allowed(throttle, request, 300) == 300
    window = int(clock.now // 60)
    # two integers per bot (this window's and the previous one's), not every request's time
    row = RateCounter.objects.get(key=f"throttle_bot_{request.user.pk}")
    assert (row.period_index, row.current, row.previous) == (window, 300, 0)


def test_rate_limit_is_per_bot(settings):
    clock = Clock(6_000_000.0)
    throttle = _throttle(settings, "3/min", clock)
    _, alpha = make_bot("alpha", AccountFactory(name="acct-x"))
    _, beta = make_bot("beta", AccountFactory(name="acct-y"))
    assert _allowed(throttle, SimpleNamespace(user=alpha), 5) == 3
    assert _allowed(throttle, SimpleNamespace(user=beta), 5) == 3


def test_zero_rate_refuses_everything(settings):
    clock = Clock(6_000_010.0)
    throttle = _throttle(settings, "0/min", clock)
    assert _allowed(throttle, _bot_request(), 3) == 0
    assert throttle.wait() == pytest.approx(50.0)


def test_state_read_gives_aware_times_and_exact_text():
    from killswitch.selectors import killswitch_state

    a, _b = two_accounts()
    reason = "venue 'down' — ünïcode, 100%"
    killswitch_activate(reason=reason, actor=STAFF)
    killswitch_activate(reason="a down", actor=STAFF, account=a)
    state = killswitch_state()
    assert state.active is True and state.reason == reason
    assert state.activated_by == STAFF.name
    now = timezone.now()
    for at in (state.activated_at, state.halted_accounts[0].activated_at):
        assert at.tzinfo is not None and abs(now - at) < timedelta(minutes=1)
    body = APIClient()
    body.force_login(StaffFactory(username="carol"))
    data = body.get(KILLSWITCH).json()
    assert data["activated_at"].endswith("Z") or data["activated_at"].endswith("+00:00")


def test_token_check_builds_user_and_bot_as_the_orm_would():
    from django.contrib.auth import get_user_model

    from tradingstate.web.auth import BotTokenAuthentication

    a, _b = two_accounts()
    _, user = make_bot("alpha", a)
    _, token = AuthToken.objects.create(user)
    staff = StaffFactory(username="dora")
    _, staff_token = AuthToken.objects.create(staff)
    auth = BotTokenAuthentication()
    with CaptureQueriesContext(connection) as ctx:
        got, auth_token = auth.authenticate_credentials(token.encode())
        assert got.bot.pk == user.bot.pk and got.bot.user is got  # cached, no query
        assert auth_token.user is got
        other, _ = auth.authenticate_credentials(staff_token.encode())
        assert not hasattr(other, "bot")  # cached absence, no query
    assert len(ctx.captured_queries) == 2
    fresh = get_user_model().objects.get(pk=user.pk)
    for field in get_user_model()._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(fresh, field.attname), field.name
    assert got.date_joined.tzinfo is not None and got.is_active is True
    assert other.is_staff is True and other.pk == staff.pk


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
@pytest.mark.parametrize("threshold", [5, None], ids=["prepared", "pooler-safe"])
def test_hot_reads_are_prepared_unless_disabled(threshold):
    from killswitch.selectors import killswitch_state

    connection.ensure_connection()
    previous = connection.connection.prepare_threshold
    # the shipped config (database_prepared_statements = true) reaches the connection
    assert previous == 5
    connection.connection.prepare_threshold = threshold
    try:
        for _ in range(7):
            assert killswitch_state().active is False
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_prepared_statements "
                "WHERE statement LIKE '%%killswitch_killswitch%%'"
            )
            prepared = cursor.fetchone()[0]
    finally:
        connection.connection.prepare_threshold = previous
    assert prepared == (1 if threshold else 0)


def test_hot_read_errors_come_out_as_django_errors():
    from django.db import DatabaseError, transaction

    from tradingstate.db import fetch_all

    # a savepoint, as around any statement that may fail inside a transaction
    with pytest.raises(DatabaseError), transaction.atomic():
        fetch_all("SELECT * FROM no_such_table_here")
    assert fetch_all("SELECT 1") == [(1,)]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_prepared_hot_statements_keep_one_plan():
    """PostgreSQL re-planned the token read on every run (a custom plan for its NULL "no
    account" parameter looked cheaper): planning was a third of a kill-switch read. Each
    session keeps a prepared statement's generic plan instead."""
    from tradingstate.db.auth import token_rows

    connection.ensure_connection()  # this session was configured as every new one is
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_generic_plan"
    for _ in range(8):
        token_rows("no-such-key-xy", None)
        token_rows("no-such-key-xy", "no-such-account")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%knox_authtoken%%'"
        )
        plans = cursor.fetchall()
    assert plans, "the token read was not prepared"
    assert all(custom == 0 and generic > 0 for generic, custom in plans), plans


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements: PostgreSQL")
def test_sessions_without_prepared_statements_are_left_as_they_are(settings):
    """A pooler-safe set-up (no prepared statements) sends nothing extra on connect."""
    from django.db import connections

    alias = "default"
    conn = connections.create_connection(alias)
    conn.settings_dict = {
        **conn.settings_dict,
        "OPTIONS": {**conn.settings_dict["OPTIONS"], "prepare_threshold": None},
    }
    try:
        conn.ensure_connection()
        with conn.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone()[0] == "auto"
    finally:
        conn.close()


def test_hot_statements_are_parsed_once_whatever_their_length():
    """psycopg parses a statement's placeholders again on every run once it has over 50
    parameters (a fill's write has 60); the hot statements' parse is kept."""
    from tradingstate.db import _convert, fetch_all

    n = 60
    sql = "SELECT " + " + ".join(["%s"] * n) + " -- parse-once test"
    fetch_all(sql, [1] * n)  # the first run parses (on PostgreSQL)
    before = _convert.cache_info()
    for _ in range(3):
        assert fetch_all(sql, [1] * n) == [(n,)]
    after = _convert.cache_info()
    if connection.vendor == "postgresql":
        assert after.misses == before.misses and after.hits == before.hits + 3


def test_hot_execute_returns_rows_only_for_statements_that_have_them():
    """``execute`` tells a row-returning statement by its result's status (building the
    column descriptions cost more than reading the rows): no rows, an empty result, rows,
    binary or text."""
    from decimal import Decimal

    from tradingstate.db import execute

    execute("CREATE TEMPORARY TABLE hot_exec_probe (id integer, qty numeric(20, 8))")
    assert execute("INSERT INTO hot_exec_probe VALUES (%s, %s)", [1, Decimal("1.5")]) == []
    assert execute("SELECT id FROM hot_exec_probe WHERE id = %s", [2]) == []
    for binary in (False, True):
        rows = execute(
            "UPDATE hot_exec_probe SET id = id WHERE id = %s RETURNING id, qty", [1], binary=binary
        )
        assert rows == [(1, Decimal("1.5"))]
        if connection.vendor == "postgresql":  # SQLite's raw numeric is a float: callers convert
            assert type(rows[0][1]) is Decimal
