"""Reads of the kill switch state and history."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from killswitch.models import KillSwitch, KillSwitchEvent
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


STATE_COLUMNS = ("account_id", "account__name", "active", "reason", "activated_by", "activated_at")


def killswitch_status(
    account: ExchangeAccount | None = None, *, bot: BotProfile | None = None
) -> KillSwitchStatus:
    """One scope's state, in one statement. With ``bot``, the global scope lists only the
    halts of accounts granted to that bot: a bot never learns other accounts' names."""
    if account is not None:
        row = KillSwitch.objects.filter(account=account).first()
        halted = _halted([row]) if row is not None and row.active else []
        return _status(row, halted, account=account.name)
    halts = Q(active=True) if bot is None else Q(active=True, account__bots=bot)
    # bots read this before every order: plain tuples, no model instances, no ORDER BY
    rows = (
        KillSwitch.objects.filter(Q(account__isnull=True) | halts)
        .order_by()
        .values_list(*STATE_COLUMNS)
    )
    glob = None
    halted = []
    for account_id, name, active, reason, by, at in rows:
        if account_id is None:
            glob = (active, reason, by, at)
        elif active:
            halted.append(HaltedAccount(name, reason, by, at))
    halted.sort(key=lambda h: h.account)
    if glob is None or not glob[0]:
        return KillSwitchStatus(active=False, halted_accounts=halted)
    _, reason, by, at = glob
    return KillSwitchStatus(
        active=True, reason=reason, activated_by=by, activated_at=at, halted_accounts=halted
    )


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
