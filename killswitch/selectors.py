"""Reads of the kill switch state and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.db import connection
from django.utils.dateparse import parse_datetime

from killswitch.models import KillSwitch, KillSwitchEvent
from tradingstate.db import aware, fetch_all
from tradingstate.models import BotProfile, ExchangeAccount


@dataclass(frozen=True)
class HaltedAccount:
    account: str
    reason: str
    activated_by: str
    activated_at: datetime | None


@dataclass(frozen=True)
class KillSwitchStatus:
    """The state of one scope: the global switch (``account`` None) or one account's halt.

    ``halted_accounts`` lists every account with an active halt (global scope), or the
    account itself when it is halted (account scope).
    """

    active: bool
    reason: str = ""
    activated_by: str = ""
    activated_at: datetime | None = None
    halted_accounts: list[HaltedAccount] = field(default_factory=list)
    account: str | None = None

    @property
    def any_active(self) -> bool:
        return self.active or bool(self.halted_accounts)


def killswitch_status(
    account: ExchangeAccount | None = None, *, bot: BotProfile | None = None
) -> KillSwitchStatus:
    """One scope's state, in one statement. With ``bot``, the global scope lists only the
    halts of accounts granted to that bot: a bot never learns other accounts' names."""
    if account is not None:
        row = KillSwitch.objects.filter(account=account).first()
        halted = _halted([row]) if row is not None and row.active else []
        return _status(row, halted, account=account.name)
    rows = _state_rows(bot)
    glob = None
    halted = []
    for account_id, name, active, reason, by, at in rows:
        if account_id is None:
            glob = (active, reason, by, at)
        elif active:
            halted.append(HaltedAccount(name, reason, by, aware(at)))
    halted.sort(key=lambda h: h.account)
    if glob is None or not glob[0]:
        return KillSwitchStatus(active=False, halted_accounts=halted)
    _, reason, by, at = glob
    return KillSwitchStatus(
        active=True, reason=reason, activated_by=by, activated_at=aware(at), halted_accounts=halted
    )


def _state_rows(bot: BotProfile | None) -> list[tuple]:
    """(account id, account name, active, reason, by, at) of the global row and the halts
    (of the bot's accounts, with ``bot``). Bots read this before every order: one plain
    statement, without the ORM's per-call query compilation (most of a read's cost here)."""
    sql, sql_for_bot = _state_sql(connection.vendor)
    rows = fetch_all(sql) if bot is None else fetch_all(sql_for_bot, [bot.pk])
    return [(a, n, bool(on), r, by, at) for a, n, on, r, by, at in rows]


@cache
def _state_sql(vendor: str) -> tuple[str, str]:
    # identifiers come from the models; the bot's id is the one value, a parameter
    qn = connection.ops.quote_name
    switch = qn(KillSwitch._meta.db_table)
    account = qn(ExchangeAccount._meta.db_table)
    grants = BotProfile.accounts.through._meta
    grant_table = qn(grants.db_table)
    grant_account = qn(grants.get_field("exchangeaccount").column)
    grant_bot = qn(grants.get_field("botprofile").column)
    k = {name: f"k.{qn(name)}" for name in ("account_id", "active", "reason", "activated_by")}
    cols = (
        f"{k['account_id']}, a.{qn('name')}, {k['active']}, {k['reason']}, "
        f"{k['activated_by']}, k.{qn('activated_at')}"
    )
    base = (
        f"SELECT {cols} FROM {switch} k "  # noqa: S608
        f"LEFT JOIN {account} a ON a.{qn('id')} = {k['account_id']} "
        f"WHERE {k['account_id']} IS NULL OR ({k['active']}"
    )
    for_bot = (
        f" AND EXISTS (SELECT 1 FROM {grant_table} g WHERE g.{grant_account} = "  # noqa: S608
        f"{k['account_id']} AND g.{grant_bot} = %s)"
    )
    return base + ")", base + for_bot + ")"


@dataclass(frozen=True)
class AccountTrading:
    """May this account trade now? ``halted_by`` is "global", "account" or "" (allowed)."""

    account: str
    trading_allowed: bool
    halted_by: str
    reason: str


@dataclass(frozen=True)
class TradingView:
    """The kill switch as one caller sees it (the API's GET): its accounts only.

    ``active`` is true whenever any of the caller's accounts is halted, by any scope, and
    ``scope`` says which ("global" wins over "account"; "" when nothing is halted). The
    contract fields (reason, activated_by, activated_at) describe that halt.
    """

    active: bool
    scope: str
    reason: str
    activated_by: str
    activated_at: datetime | None
    halted_accounts: list[HaltedAccount]
    trading_allowed: bool
    accounts: list[AccountTrading]


def killswitch_view(
    *, bot: BotProfile | None = None, account: str | None = None, rows: list | None = None
) -> TradingView:
    """The switch for a caller: a bot's granted accounts (``bot``) or every account (staff);
    ``account`` narrows it to that one name (the caller checks it may see it). One statement.

    Every account has its switch row from creation (``killswitch.apps``), so the rows are
    the accounts; the global row comes with them.
    """
    glob = None
    mine: list[tuple] = []
    for account_id, name, active, reason, by, at in _view_rows(bot) if rows is None else rows:
        if account_id is None:
            glob = (active, reason, by, aware(at))
        elif account is None or name == account:
            mine.append((name, active, reason, by, aware(at)))
    mine.sort()
    global_on = bool(glob and glob[0])
    halted = [HaltedAccount(n, r, b, a) for n, on, r, b, a in mine if on]
    rows = [
        AccountTrading(
            account=n,
            trading_allowed=not (global_on or on),
            halted_by="global" if global_on else ("account" if on else ""),
            reason=(glob[1] if global_on else r) if (global_on or on) else "",
        )
        for n, on, r, _, _ in mine
    ]
    if global_on:
        _, reason, by, at = glob
        scope = "global"
    elif halted:
        first = halted[0]
        scope, reason, by, at = "account", first.reason, first.activated_by, first.activated_at
    else:
        scope, reason, by, at = "", "", "", None
    return TradingView(
        active=bool(scope),
        scope=scope,
        reason=reason,
        activated_by=by,
        activated_at=at,
        halted_accounts=halted,
        trading_allowed=not scope,
        accounts=rows,
    )


def view_rows_with_token_sql() -> str | None:
    """The bot's view rows as one SQL expression of the bot profile id ``b.id``, to be read
    in the statement that checks the bot's token (a view's ``token_with_bot_sql``):
    the kill-switch read then costs one round trip. A JSON array of
    ``[account_id, name, active, reason, activated_by, activated_at]``; parse it with
    ``view_rows_from_json``. PostgreSQL only (None elsewhere: the read is its own statement).
    """
    if connection.vendor != "postgresql":
        return None
    return _with_token_sql()


@cache
def _with_token_sql() -> str:
    cols, rows_from, for_bot = _view_parts("b.id")  # the bot profile of the token's row
    return f"SELECT json_agg(json_build_array({cols})) {rows_from}{for_bot}"


def view_rows_from_json(value) -> list[tuple]:
    """``view_rows_with_token_sql``'s value as ``_view_rows`` gives its rows."""
    return [
        (a, n, bool(on), r, by, parse_datetime(at) if at else None)
        for a, n, on, r, by, at in value or []
    ]


def _view_rows(bot: BotProfile | None) -> list[tuple]:
    sql = _view_sql(connection.vendor)
    rows = fetch_all(sql[0]) if bot is None else fetch_all(sql[1], [bot.pk])
    return [(a, n, bool(on), r, by, at) for a, n, on, r, by, at in rows]


@cache
def _view_sql(vendor: str) -> tuple[str, str]:
    cols, rows_from, for_bot = _view_parts("%s")
    base = f"SELECT {cols} {rows_from}"
    return base, base + for_bot


def _view_parts(bot: str) -> tuple[str, str, str]:
    """The view's columns, its rows (every switch row with its account's name) and the
    condition keeping the global row and those of accounts granted to ``bot`` (a parameter
    placeholder or a column): the one definition both reads are built from."""
    qn = connection.ops.quote_name
    grants = BotProfile.accounts.through._meta
    k_account = f"k.{qn('account_id')}"
    cols = (
        f"{k_account}, a.{qn('name')}, k.{qn('active')}, k.{qn('reason')}, "
        f"k.{qn('activated_by')}, k.{qn('activated_at')}"
    )
    rows_from = (
        f"FROM {qn(KillSwitch._meta.db_table)} k "
        f"LEFT JOIN {qn(ExchangeAccount._meta.db_table)} a ON a.{qn('id')} = {k_account}"
    )
    for_bot = (
        f" WHERE {k_account} IS NULL OR EXISTS (SELECT 1 FROM {qn(grants.db_table)} g "  # noqa: S608
        f"WHERE g.{qn(grants.get_field('exchangeaccount').column)} = {k_account} "
        f"AND g.{qn(grants.get_field('botprofile').column)} = {bot})"
    )
    return cols, rows_from, for_bot


def killswitch_state(*, bot: BotProfile | None = None) -> KillSwitchStatus:
    """The global switch, with the halted accounts (those granted to ``bot``, if given)."""
    return killswitch_status(bot=bot)


def killswitch_event_list(*, account: ExchangeAccount | None = None, limit: int = 50):
    qs = KillSwitchEvent.objects.select_related("account").order_by("-id")
    if account is not None:
        qs = qs.filter(account=account)
    return list(qs[:limit])


def _halted(rows) -> list[HaltedAccount]:
    return [
        HaltedAccount(
            account=r.account.name,
            reason=r.reason,
            activated_by=r.activated_by,
            activated_at=r.activated_at,
        )
        for r in rows
    ]


def _status(row: KillSwitch | None, halted: list[HaltedAccount], account: str | None = None):
    if row is None or not row.active:
        return KillSwitchStatus(active=False, halted_accounts=halted, account=account)
    return KillSwitchStatus(
        active=True,
        reason=row.reason,
        activated_by=row.activated_by,
        activated_at=row.activated_at,
        halted_accounts=halted,
        account=account,
    )
