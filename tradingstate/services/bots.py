"""Bots: one Django user per bot, with hashed knox API tokens and the accounts it may use."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from knox.models import AuthToken

from tradingstate.actors import Actor
from tradingstate.errors import Conflict, ValidationFailed
from tradingstate.locks import user_qs_select_for_update
from tradingstate.models import BotProfile, ExchangeAccount
from tradingstate.rules.values import whole_string
from tradingstate.services import events
from tradingstate.services.audit import require_reason

BOT_NAME_RE = whole_string(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
BOT_NAME_INVALID = "A bot name is 1-63 characters of A-Z, a-z, 0-9, '_', '.' or '-'."
UNKNOWN_ACCOUNTS = "Unknown account(s): {names}."
NOT_A_BOT = "User '{name}' already exists and is not a bot; choose another name."


@dataclass(frozen=True)
class BotCredentials:
    """The result of ``bot_create``. ``token`` is the only copy of the secret: show it once."""

    profile: BotProfile
    token: str
    token_key: str
    created: bool


def _grants(profile: BotProfile) -> list[str]:
    return sorted(profile.accounts.values_list("name", flat=True))


def _snapshot(profile: BotProfile) -> dict:
    return {
        "name": profile.user.get_username(),
        "accounts": _grants(profile),
        "tokens": AuthToken.objects.filter(user=profile.user).count(),
    }


@transaction.atomic
def bot_create(
    *, name: str, account_names: Iterable[str], actor: Actor, reason: str = ""
) -> BotCredentials:
    """Create a bot (user + profile) or, if it exists, issue it an additional token.

    The bot's grants become exactly ``account_names``. Earlier tokens stay valid (several
    tokens per bot; each is revocable on its own). Audited as ``bot.create`` or ``bot.update``.
    """
    if not isinstance(name, str) or not BOT_NAME_RE.match(name):
        raise ValidationFailed(BOT_NAME_INVALID, fields={"name": [BOT_NAME_INVALID]})
    wanted = sorted({n.strip() for n in account_names if n.strip()})
    accounts = list(ExchangeAccount.objects.filter(name__in=wanted).order_by("pk"))
    unknown = sorted(set(wanted) - {a.name for a in accounts})
    if unknown:
        known = ", ".join(ExchangeAccount.objects.values_list("name", flat=True)) or "none"
        msg = UNKNOWN_ACCOUNTS.format(names=", ".join(unknown)) + f" Known accounts: {known}."
        raise ValidationFailed(msg, fields={"accounts": [msg]})

    users = get_user_model().objects
    user = user_qs_select_for_update().filter(username=name).first()
    if user is not None and not BotProfile.objects.filter(user=user).exists():
        raise Conflict(NOT_A_BOT.format(name=name), fields={"name": [NOT_A_BOT.format(name=name)]})
    created = user is None
    if created:
        user = users.create_user(username=name)  # no password: bots use tokens only
        profile = BotProfile.objects.create(user=user)
        before = None
    else:
        profile = BotProfile.objects.get(user=user)
        before = _snapshot(profile)
    profile.accounts.set(accounts)
    instance, token = AuthToken.objects.create(user=user, expiry=None)
    after = {**_snapshot(profile), "new_token_key": instance.token_key}
    events.bot_saved(
        profile=profile, created=created, before=before, after=after, actor=actor, reason=reason
    )
    return BotCredentials(
        profile=profile, token=token, token_key=instance.token_key, created=created
    )


@transaction.atomic
def bot_grants_set(
    *, profile: BotProfile, accounts: Iterable[ExchangeAccount], actor: Actor, reason: str
) -> BotProfile:
    """Which accounts a bot may use, set by staff: with a reason, audited as ``bot.update``
    with the grants before and after (a grant widens what a token can trade)."""
    reason = require_reason(reason)
    user_qs_select_for_update().filter(pk=profile.user_id).first()  # one change at a time
    before = _snapshot(profile)
    profile.accounts.set(sorted(accounts, key=lambda a: a.pk))
    after = _snapshot(profile)
    if after != before:
        events.bot_saved(
            profile=profile, created=False, before=before, after=after, actor=actor, reason=reason
        )
    return profile
