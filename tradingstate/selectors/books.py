"""Reads of one account's positions and balances."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.models import Balance, ExchangeAccount, Position


def position_list(*, account: ExchangeAccount) -> QuerySet[Position]:
    return Position.objects.filter(account=account)


def balance_list(*, account: ExchangeAccount) -> QuerySet[Balance]:
    return Balance.objects.filter(account=account)
