"""The bot rate limit's counter: one round trip per request.

Bench line: ``api endpoint=register`` (and every throttled endpoint). The cache-table
throttle it replaces cost 6 statements per request (Django's DatabaseCache: a read of both
windows, then an ``add``/``incr`` that reads, writes and culls); this is one upsert that
rolls the windows, decides and counts in the database, returning the decision.

The sliding window is estimated from two fixed windows (this one and the previous one,
weighted by the share of it still inside the sliding window). A refused request is not
counted. ``rate_count_orm`` is the same decision through the ORM (a locked read and a
write), kept beside it for the equivalence test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.db import connection, transaction

from tradingstate.db import execute
from tradingstate.models import RateCounter

BENCH = "api endpoint=register"


@dataclass(frozen=True)
class Count:
    allowed: bool
    current: int  # this window's count after the request
    previous: int  # the previous window's count


@cache
def _sql(vendor: str) -> str:
    qn = connection.ops.quote_name
    table = qn(RateCounter._meta.db_table)
    t = table
    same = f"{t}.{qn('period_index')} = EXCLUDED.{qn('period_index')}"
    after = f"{t}.{qn('period_index')} = EXCLUDED.{qn('period_index')} - 1"
    cur0 = f"(CASE WHEN {same} THEN {t}.{qn('current')} ELSE 0 END)"
    prev0 = (
        f"(CASE WHEN {same} THEN {t}.{qn('previous')} "
        f"WHEN {after} THEN {t}.{qn('current')} ELSE 0 END)"
    )
    ok = f"({prev0} * %(weight)s + {cur0} < %(limit)s)"
    return (
        f"INSERT INTO {table} ({qn('key')}, {qn('period_index')}, {qn('current')}, "  # noqa: S608
        f"{qn('previous')}, {qn('allowed')}) "
        "VALUES (%(key)s, %(period)s, %(first)s, 0, %(first_ok)s) "
        f"ON CONFLICT ({qn('key')}) DO UPDATE SET "
        f"{qn('previous')} = {prev0}, "
        f"{qn('current')} = {cur0} + (CASE WHEN {ok} THEN 1 ELSE 0 END), "
        f"{qn('allowed')} = {ok}, "
        f"{qn('period_index')} = EXCLUDED.{qn('period_index')} "
        f"RETURNING {qn('allowed')}, {qn('current')}, {qn('previous')}"
    )


def rate_count(*, key: str, period_index: int, limit: int, weight: float) -> Count:
    """Count one request for ``key`` in window ``period_index`` unless it is over ``limit``
    (``previous * weight + current >= limit``). One statement, atomic on its own."""
    first_ok = limit > 0
    params = {
        "key": key,
        "period": period_index,
        "first": 1 if first_ok else 0,
        "first_ok": first_ok,
        "weight": float(weight),
        "limit": limit,
    }
    (allowed, current, previous), *_ = execute(_sql(connection.vendor), params)
    return Count(bool(allowed), int(current), int(previous))


@transaction.atomic
def rate_count_orm(*, key: str, period_index: int, limit: int, weight: float) -> Count:
    """The ORM form of ``rate_count`` (3-4 statements: savepointed create or locked read,
    then a save)."""
    row, _created = RateCounter.objects.select_for_update().get_or_create(
        key=key, defaults={"period_index": period_index, "current": 0, "previous": 0}
    )
    if row.period_index == period_index:
        cur, prev = row.current, row.previous
    elif row.period_index == period_index - 1:
        cur, prev = 0, row.current
    else:
        cur, prev = 0, 0
    ok = prev * weight + cur < limit
    row.period_index, row.previous, row.current, row.allowed = (
        period_index,
        prev,
        cur + (1 if ok else 0),
        ok,
    )
    row.save()
    return Count(ok, row.current, row.previous)
