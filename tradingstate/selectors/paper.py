"""Reads of the paper venue's side of one account."""

from __future__ import annotations

from django.db.models import QuerySet

from tradingstate.models import ExchangeAccount, PaperTrade


def paper_trade_list(*, account: ExchangeAccount) -> QuerySet[PaperTrade]:
    """The venue's trades on ``account`` (what a real venue's trade list returns)."""
    return PaperTrade.objects.filter(account=account)
