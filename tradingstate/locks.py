"""Row locks. Order: the account lock first (reconciliation), then rows in primary-key order,
Order before Position before Balance."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from tradingstate.models import Balance, ExchangeAccount, Order, Position


def order_qs_select_for_update():
    return Order.objects.select_for_update().order_by("pk")


def position_qs_select_for_update():
    return Position.objects.select_for_update().order_by("pk")


def balance_qs_select_for_update():
    return Balance.objects.select_for_update().order_by("pk")


def account_qs_select_for_update():
    return ExchangeAccount.objects.select_for_update().order_by("pk")


def user_qs_select_for_update():
    return get_user_model().objects.select_for_update().order_by("pk")


ROW_LOCKS = {
    Order: order_qs_select_for_update,
    Position: position_qs_select_for_update,
    Balance: balance_qs_select_for_update,
}


def rows_qs_select_for_update(model):
    """The locking queryset of a book model (Order, Position or Balance), by class."""
    return ROW_LOCKS[model]()
