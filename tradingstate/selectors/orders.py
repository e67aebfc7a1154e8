"""Reads of one account's orders."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.models import ExchangeAccount, Order


def order_list(*, account: ExchangeAccount) -> QuerySet[Order]:
    """The account's orders (each with its account loaded: outputs name it)."""
    return Order.objects.filter(account=account).select_related("account")


def order_get(*, account: ExchangeAccount, client_order_id: str) -> Order | None:
    return order_list(account=account).filter(client_order_id=client_order_id).first()


def order_rows_named(*, account_id: int, client_order_ids, exchange_order_ids, fields) -> QuerySet:
    """``fields`` of the account's orders named by either list (``values_list``; each list
    may be empty, not both), as a union of one part per list, each through its own index:
    (account, client order id) and the venue order id.

    A part per list rather than ``client_order_id IN (...) OR exchange_order_id IN (...)``:
    no index serves the OR as a whole. A row in both parts comes twice (``UNION ALL``:
    callers key rows by id). Run through ``tradingstate.db``, the statement is planned
    with its values (it carries lists): see ``tradingstate.db._carries_list``."""
    orders = Order.objects.filter(account_id=account_id).order_by()
    parts = []
    if client_order_ids:
        parts.append(orders.filter(client_order_id__any=list(client_order_ids)))
    if exchange_order_ids:
        parts.append(orders.filter(exchange_order_id__any=list(exchange_order_ids)))
    if not parts:
        raise ValueError("order_rows_named: give client or exchange order ids")
    rows = [part.values_list(*fields) for part in parts]
    return rows[0].union(*rows[1:], all=True) if len(rows) > 1 else rows[0]
