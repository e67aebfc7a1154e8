"""Row locks. Order: the account lock first (reconciliation), then rows in primary-key order,
Order before Position before Balance."""

from __future__ import annotations

from tradingstate.models import Balance, ExchangeAccount, Order, Position


def order_qs_select_for_update():
    return Order.objects.select_for_update().order_by("pk")


def position_qs_select_for_update():
    return Position.objects.select_for_update().order_by("pk")


def balance_qs_select_for_update():
    return Balance.objects.select_for_update().order_by("pk")


def account_qs_select_for_update():
    return ExchangeAccount.objects.select_for_update().order_by("pk")
