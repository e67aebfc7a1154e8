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


def _columns() -> str:
    qn = connection.ops.quote_name
    return (
        f"{qn(RateCounter._meta.db_table)} ({qn('key')}, {qn('period_index')}, "
        f"{qn('current')}, {qn('previous')}, {qn('allowed')})"
    )


def _on_conflict() -> str:
    """Roll the windows, decide, and count only an allowed request; return the decision.

    The row's window never moves back: a request that computed an older window (a slow
    request that crossed the boundary, another host's clock a little behind) is counted in
    the row's window as at its very start, where the previous window weighs in full.
    Moving back would forget the newer window's count, and reset the limit."""
    qn = connection.ops.quote_name
    t = qn(RateCounter._meta.db_table)
    row, new = f"{t}.{qn('period_index')}", f"EXCLUDED.{qn('period_index')}"
    same = f"{row} >= {new}"
    after = f"{row} = {new} - 1"
    cur0 = f"(CASE WHEN {same} THEN {t}.{qn('current')} ELSE 0 END)"
    prev0 = (
        f"(CASE WHEN {same} THEN {t}.{qn('previous')} "
        f"WHEN {after} THEN {t}.{qn('current')} ELSE 0 END)"
    )
    weight = f"(CASE WHEN {row} > {new} THEN 1 ELSE %(weight)s END)"
    ok = f"({prev0} * {weight} + {cur0} < %(limit)s)"
    return (
        f"ON CONFLICT ({qn('key')}) DO UPDATE SET "
        f"{qn('previous')} = {prev0}, "
        f"{qn('current')} = {cur0} + (CASE WHEN {ok} THEN 1 ELSE 0 END), "
        f"{qn('allowed')} = {ok}, "
        f"{qn('period_index')} = (CASE WHEN {row} > {new} THEN {row} ELSE {new} END) "
        f"RETURNING {qn('key')}, {qn('allowed')}, {qn('current')}, {qn('previous')}"
    )


@cache
def _sql(vendor: str) -> str:
    return (
        f"INSERT INTO {_columns()} "  # noqa: S608
        "VALUES (%(key)s, %(period)s, %(first)s, 0, %(first_ok)s) "
        f"{_on_conflict()}"
    )


def rate_count_from_sql(source: str, key: str, where: str) -> str:
    """The counter's upsert for a row of ``source`` (a CTE of the caller's statement, e.g.
    the bot's token read) where ``where`` holds, under the key ``key`` (SQL expressions of
    ``source``'s columns; identifiers only). Its parameters are ``rate_params``'. Returns
    ``key, allowed, current, previous``; no row when ``where`` is false."""
    return (
        f"INSERT INTO {_columns()} "  # noqa: S608
        f"SELECT {key}, %(period)s::bigint, %(first)s::bigint, 0, %(first_ok)s::boolean "
        f"FROM {source} WHERE {where} {_on_conflict()}"
    )


def rate_params(*, period_index: int, limit: int, weight: float) -> dict:
    first_ok = limit > 0
    return {
        "period": period_index,
        "first": 1 if first_ok else 0,
        "first_ok": first_ok,
        "weight": float(weight),
        "limit": limit,
    }


def rate_count(*, key: str, period_index: int, limit: int, weight: float) -> Count:
    """Count one request for ``key`` in window ``period_index`` unless it is over ``limit``
    (``previous * weight + current >= limit``). One statement, atomic on its own."""
    params = {"key": key, **rate_params(period_index=period_index, limit=limit, weight=weight)}
    (_key, allowed, current, previous), *_ = execute(_sql(connection.vendor), params)
    return Count(bool(allowed), int(current), int(previous))


@transaction.atomic
def rate_count_orm(*, key: str, period_index: int, limit: int, weight: float) -> Count:
    """The ORM form of ``rate_count`` (3-4 statements: savepointed create or locked read,
    then a save)."""
    row, _created = RateCounter.objects.select_for_update().get_or_create(
        key=key, defaults={"period_index": period_index, "current": 0, "previous": 0}
    )
    if row.period_index > period_index:  # never back: counted at the row's window start
        period_index, weight = row.period_index, 1
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
