"""Reads of one account's orders."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.models import ExchangeAccount, Order


def order_list(*, account: ExchangeAccount) -> QuerySet[Order]:
    """The account's orders (each with its account loaded: outputs name it)."""
    return Order.objects.filter(account=account).select_related("account")


def order_get(*, account: ExchangeAccount, client_order_id: str) -> Order | None:
    return order_list(account=account).filter(client_order_id=client_order_id).first()
