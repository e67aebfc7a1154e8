"""Storing the prices a pass fetched (issue 15 item 1): one MarkPrice row per instrument.

Market data, not trading state: not audited
(``tests/integration/tradingstate/test_audit_trail.py`` lists MarkPrice as exempt). A symbol
the pass asked for and did not get keeps its previous price,
marked ``stale`` with the reason; it is never set to zero and never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from tradingstate.db.compiled import CompiledRead
from tradingstate.exchanges.base import ExchangeMarkPrice
from tradingstate.models import ExchangeAccount, MarkPrice
from tradingstate.services.bulk import rows_bulk_update

NOT_RETURNED = "the venue returned no price for this symbol"


@dataclass(frozen=True)
class MarksRecorded:
    refreshed: int
    created: int
    marked_stale: int


# the rows of the symbols asked for: a fixed shape, compiled once (tradingstate.db.compiled);
# each pass runs it
_EXISTING = CompiledRead(
    lambda account_id, symbols: (
        MarkPrice.objects.filter(account_id=account_id, symbol__any=symbols)
        .order_by()
        .values_list("id", "symbol", "price", "time", "source")
    ),
    2,
    lists=(1,),
)


def _existing(account: ExchangeAccount, symbols: set[str]) -> dict[str, MarkPrice]:
    """The account's rows of ``symbols``, as instances carrying what an update of their
    priced fields needs (a stale one keeps its price, time and source)."""
    existing = {}
    for pk, symbol, price, time, source in _EXISTING.rows(account.pk, sorted(symbols)):
        row = MarkPrice(
            pk=pk, account=account, symbol=symbol, price=price, time=time, source=source
        )
        row._state.adding = False
        existing[symbol] = row
    return existing


@transaction.atomic(savepoint=False)
def mark_prices_record(
    *,
    account: ExchangeAccount,
    asked: Iterable[str],
    prices: Iterable[ExchangeMarkPrice],
    now: datetime,
    error: str = "",
) -> MarksRecorded:
    """Upsert the prices fetched for ``account``; every symbol in ``asked`` without a price
    keeps its previous one, flagged stale with ``error`` (or why it is missing). Three
    statements whatever the number of symbols."""
    fresh = {p.symbol: p for p in prices if p.price > 0}
    asked = set(asked) | set(fresh)
    existing = _existing(account, asked)
    to_update, to_create, stale = [], [], 0
    for symbol in sorted(asked):
        row, price = existing.get(symbol), fresh.get(symbol)
        if price is None:
            if row is None:
                continue  # nothing to keep: the symbol stays unpriced (never zero)
            row.stale, row.error, row.fetched_at = True, (error or NOT_RETURNED)[:1000], now
            to_update.append(row)
            stale += 1
            continue
        if row is None:
            row = MarkPrice(account=account, symbol=symbol)
            to_create.append(row)
        else:
            to_update.append(row)
        row.price, row.time, row.source = price.price, price.time, price.source
        row.stale, row.error, row.fetched_at = False, "", now
    fields = ["price", "time", "source", "stale", "error", "fetched_at"]
    rows_bulk_update(MarkPrice, to_update, fields)
    if to_create:
        MarkPrice.objects.bulk_create(to_create)
    return MarksRecorded(len(to_update) - stale, len(to_create), stale)
