"""Which accounts a caller may see: staff all, a bot only those granted to it. Anything
else is reported as not found (404), never as forbidden, so names do not leak."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.errors import NotFound
from tradingstate.models import ExchangeAccount

ACCOUNT_NOT_FOUND = "Account '{name}' not found."


def account_list_visible(user) -> QuerySet[ExchangeAccount]:
    if user is None or not user.is_authenticated:
        return ExchangeAccount.objects.none()
    if user.is_staff:
        return ExchangeAccount.objects.all()
    profile = getattr(user, "bot", None)
    if profile is None:
        return ExchangeAccount.objects.none()
    return ExchangeAccount.objects.filter(bots=profile)


def account_get_visible(user, name: str) -> ExchangeAccount:
    account = account_list_visible(user).filter(name=name).first()
    if account is None:
        raise NotFound(ACCOUNT_NOT_FOUND.format(name=name[:100]), fields={})
    return account
