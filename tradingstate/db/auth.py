"""A bot's token check, with the account its request names: one statement.

Bench lines: ``api endpoint=killswitch`` (token only) and ``api endpoint=register`` /
``transition`` / ``fill`` (token and account). knox's own ``TokenAuthentication`` costs three
statements before the view runs (the token with its user, a sweep of the user's other
tokens for expired ones, the bot profile), and resolving ``{account}`` one more; this reads
the token, its user, the bot profile and (when the URL names one) the account if it is
granted to that bot, in one statement. The SQL is built once from the models (compiling
the ORM query on every request cost more than running it).

``token_rows_orm`` is the same read through the ORM, kept beside it for the equivalence
test.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from knox.models import get_token_model

from tradingstate.db import execute, fetch_all
from tradingstate.db.rows import Fields, instance
from tradingstate.db.throttle import Count, rate_count_from_sql
from tradingstate.models import BotProfile, ExchangeAccount

BENCH = "api endpoint=register"


@dataclass(frozen=True)
class RateCount:
    """Count the request against the bot's rate limit in the token's statement (PostgreSQL):
    only for the token whose digest is ``digest``, if its user is an active bot and the
    token has not expired. ``key_prefix`` + the user's id is the counter's key; ``params``
    are ``tradingstate.db.throttle.rate_params``'."""

    key_prefix: str
    digest: str
    params: dict


def token_rows(
    token_key: str,
    account_name: str | None = None,
    with_bot: str | None = None,
    rate: RateCount | None = None,
) -> list:
    """The tokens under ``token_key``, with their user and the user's bot profile (or its
    absence) in the ORM's relation caches, as ``select_related`` would leave them. Each
    token's ``visible_account`` is the account named ``account_name`` if it is granted to
    the token's bot, else None (None also when no name is given).

    ``with_bot``: one more column read in the same statement, a scalar SQL expression of the
    bot profile's id ``b.id`` (NULL when the token's user is no bot), given by the layer that
    wants it (the kill switch's read: its rows as the bot sees them); its value is each
    token's ``with_bot``. Identifiers only: it takes no parameters.

    ``rate`` (PostgreSQL only): the statement also counts the request (``RateCount``); each
    token's ``rate_count`` is then the counter's ``Count``, or None where it was not
    counted (another token under the key, an expired token, no active bot)."""
    counted = rate is not None
    q = _token_query(connection.vendor, with_bot, counted)
    params = {"account": account_name, "key": token_key}
    if counted:
        params |= {"rate_prefix": rate.key_prefix, "digest": rate.digest, **rate.params}
    # binary results: psycopg's C loaders for the row's ~30 columns (its text loaders cost more)
    rows = execute(q.sql, params, binary=True) if counted else fetch_all(q.sql, params, binary=True)
    out = []
    n_token, n_user, n_bot = len(q.token_fields), len(q.user_fields), len(q.bot_fields)
    n_account = len(q.account_fields)
    for row in rows:
        count = None
        if counted:
            *row, allowed, current, previous = row
            count = None if allowed is None else Count(bool(allowed), int(current), int(previous))
        if with_bot is not None:
            *row, extra = row
        else:
            extra = None
        token = _instance(get_token_model(), q.token_fields, row[:n_token])
        user = _instance(get_user_model(), q.user_fields, row[n_token : n_token + n_user])
        bot_values = row[n_token + n_user : n_token + n_user + n_bot]
        bot = None if bot_values[0] is None else _instance(BotProfile, q.bot_fields, bot_values)
        account_values = row[n_token + n_user + n_bot : n_token + n_user + n_bot + n_account]
        account = (
            None
            if account_values[0] is None
            else _instance(ExchangeAccount, q.account_fields, account_values)
        )
        _user_link().set_cached_value(token, user)
        _bot_link().remote_field.set_cached_value(user, bot)
        if bot is not None:
            _bot_link().set_cached_value(bot, user)
        token.visible_account = account
        token.with_bot = extra
        token.rate_count = count
        out.append(token)
    return out


def token_rows_orm(token_key: str, account_name: str | None = None) -> list:
    """``token_rows`` through the ORM (two to three statements)."""
    tokens = list(
        get_token_model()
        .objects.select_related("user", "user__bot")
        .filter(token_key=token_key)
        .order_by("pk")
    )
    for token in tokens:
        bot = getattr(token.user, "bot", None)
        token.visible_account = (
            ExchangeAccount.objects.filter(name=account_name, bots=bot).first()
            if account_name is not None and bot is not None
            else None
        )
    return tokens


def _instance(model, fields, values):
    return instance(model, fields, values, binary=True)  # the read's results are binary


@cache
def _user_link():
    return get_token_model()._meta.get_field("user")


@cache
def _bot_link():
    return BotProfile._meta.get_field("user")


class _Query:
    def __init__(self, sql, token_fields, user_fields, bot_fields, account_fields):
        self.sql = sql
        self.token_fields = token_fields
        self.user_fields = user_fields
        self.bot_fields = bot_fields
        self.account_fields = account_fields


@cache
def _token_query(vendor: str, with_bot: str | None = None, counted: bool = False) -> _Query:
    # identifiers come from the models; the account name and token key are the parameters
    qn = connection.ops.quote_name
    token_model, user_model = get_token_model(), get_user_model()
    token_fields = Fields(token_model._meta.concrete_fields)
    user_fields = Fields(user_model._meta.concrete_fields)
    bot_fields = Fields(BotProfile._meta.concrete_fields)
    account_fields = Fields(ExchangeAccount._meta.concrete_fields)
    grants = BotProfile.accounts.through
    grant_bot = qn(grants._meta.get_field("botprofile").column)
    grant_account = qn(grants._meta.get_field("exchangeaccount").column)
    selected = (
        [f"t.{qn(f.column)}" for f in token_fields]
        + [f"u.{qn(f.column)}" for f in user_fields]
        + [f"b.{qn(f.column)}" for f in bot_fields]
        + [f"a.{qn(f.column)}" for f in account_fields]
        + ([f"({with_bot})"] if with_bot is not None else [])
    )
    user_fk = _user_link().column
    pk = qn(user_model._meta.pk.column)
    select = (
        f"SELECT {', '.join(selected)} FROM {qn(token_model._meta.db_table)} t "  # noqa: S608
        f"JOIN {qn(user_model._meta.db_table)} u ON u.{pk} = t.{qn(user_fk)} "
        f"LEFT JOIN {qn(BotProfile._meta.db_table)} b ON b.{qn(_bot_link().column)} = u.{pk} "
        f"LEFT JOIN {qn(ExchangeAccount._meta.db_table)} a ON a.{qn('name')} = %(account)s "
        f"AND EXISTS (SELECT 1 FROM {qn(grants._meta.db_table)} g "
        f"WHERE g.{grant_bot} = b.{qn('id')} AND g.{grant_account} = a.{qn('id')}) "
        f"WHERE t.{qn('token_key')} = %(key)s"
    )
    fields = (token_fields, user_fields, bot_fields, account_fields)
    if not counted:
        order = f" ORDER BY t.{qn(token_model._meta.pk.column)}"
        return _Query(select + order, *fields)
    # the same read as a CTE (columns c0, c1, ...), and the rate counter's upsert from it
    names = [f"c{i}" for i in range(len(selected))]

    def col(fields_, offset, name):
        return names[offset + [f.name for f in fields_].index(name)]

    n_token, n_user = len(token_fields), len(user_fields)
    digest = col(token_fields, 0, token_model._meta.pk.name)
    expiry = col(token_fields, 0, "expiry")
    user_id = col(user_fields, n_token, user_model._meta.pk.name)
    active = col(user_fields, n_token, "is_active")
    bot_id = col(bot_fields, n_token + n_user, "id")
    key = f"(%(rate_prefix)s::text || {user_id}::text)"
    where = (
        f"{digest} = %(digest)s AND {bot_id} IS NOT NULL AND {active} "
        f"AND ({expiry} IS NULL OR {expiry} > now())"
    )
    sql = (
        f"WITH tok({', '.join(names)}) AS MATERIALIZED ({select}), "  # noqa: S608
        f"rc AS ({rate_count_from_sql('tok', key, where)}) "
        f"SELECT {', '.join(names)}, rc.{qn('allowed')}, rc.{qn('current')}, "
        f"rc.{qn('previous')} FROM tok LEFT JOIN rc ON rc.{qn('key')} = {key} "
        f"ORDER BY {digest}"
    )
    return _Query(sql, *fields)
