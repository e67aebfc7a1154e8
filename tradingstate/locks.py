"""Row locks. Order: the account lock first (reconciliation), then rows in primary-key order,
Order before Position before Balance."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import F

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


def locked_by_pk(qs, account: ExchangeAccount, pks) -> dict:
    """Lock ``qs``'s rows of ``account`` whose primary key is in ``pks`` (in pk order, as
    every lock here): ``{pk: row}``. A key of another account's row is skipped and its row is
    left unlocked.

    The planner must go through the primary key. With ``account_id = X AND id = ANY(...)``
    it may read the account's rows through the account index and compare each with every
    key: it does when the account's statistics are stale (an account whose orders grew since
    the last ANALYZE: estimated 89 rows, read 133,832, ~500 ms a pass in
    ``api endpoint=register-under-passes``). So the account is compared as ``account_id + 0``,
    which no index serves: the keys pick the rows (one probe each, whatever the account
    holds), and the account is checked on each before it is locked."""
    return {
        row.pk: row
        for row in qs.alias(_account_unindexed=F("account_id") + 0).filter(
            pk__any=list(pks), _account_unindexed=account.pk
        )
    }


def rows_qs_select_for_update(model):
    """The locking queryset of a book model (Order, Position or Balance), by class."""
    return ROW_LOCKS[model]()
