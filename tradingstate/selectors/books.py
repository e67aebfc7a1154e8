"""Reads of one account's fills, positions and balances."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.models import Balance, ExchangeAccount, Fill, Order, Position


def position_list(*, account: ExchangeAccount) -> QuerySet[Position]:
    return Position.objects.filter(account=account)


def balance_list(*, account: ExchangeAccount) -> QuerySet[Balance]:
    return Balance.objects.filter(account=account)


def fill_list(*, account: ExchangeAccount) -> QuerySet[Fill]:
    """The account's fills (issue 14), with their order's client id in one query."""
    return Fill.objects.filter(account=account).select_related("order")


def fills_of_order(*, order: Order) -> list[Fill]:
    """One order's fills, oldest first (the order detail shows them)."""
    return list(Fill.objects.filter(order=order).order_by("executed_at", "id"))
