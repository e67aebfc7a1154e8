"""Which prices a pass asks for, and when a stored price is stale (issue 15 item 1). Pure.

- :func:`mark_symbols`: the symbols one account's pass prices, in one call: every symbol with
  a position (local or on the venue) and, on a spot account, ``ASSET/<valuation currency>``
  for every non-quote balance (a balance in the valuation currency needs no price).
- :func:`asset_symbols`: the symbols that price one asset in the valuation currency, in the
  order they are preferred (spot ``BTC/USDT``, then the linear perpetual ``BTC/USDT:USDT``).
- :func:`mark_is_stale`: a stored price is stale when its last refresh failed or it is older
  than ``mark_price_max_age_seconds``. A stale price is still shown (flagged); a missing one is
  never replaced by zero.
- :func:`symbol_parts`: base, quote and settle currencies of a ccxt unified symbol, for
  symbols the account has no Instrument row for.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal


def symbol_parts(symbol: str) -> tuple[str, str, str]:
    """``BTC/USDT`` -> (BTC, USDT, ""); ``BTC/USDT:USDT`` -> (BTC, USDT, USDT);
    ``BTC/USD:BTC-250627`` -> (BTC, USD, BTC). A symbol without ``/`` is its own base."""
    pair, _, settle = symbol.partition(":")
    base, _, quote = pair.partition("/")
    return base.upper(), quote.upper(), settle.split("-")[0].upper()


def asset_symbols(asset: str, valuation_currency: str) -> tuple[str, ...]:
    asset, currency = asset.upper(), valuation_currency.upper()
    return (f"{asset}/{currency}", f"{asset}/{currency}:{currency}")


def mark_symbols(
    *,
    market_type: str,
    position_qtys: Iterable[tuple[str, Decimal]],
    balance_totals: Iterable[tuple[str, Decimal]],
    valuation_currency: str,
) -> list[str]:
    """The sorted symbols to price for one account: positions that are open on either side,
    and (spot accounts) every non-quote currency with a balance."""
    wanted = {symbol for symbol, qty in position_qtys if qty}
    if market_type == "spot":
        currency = valuation_currency.upper()
        for asset, total in balance_totals:
            if total and asset.upper() != currency:
                wanted.add(asset_symbols(asset, currency)[0])
    return sorted(wanted)


def mark_is_stale(
    *, stale: bool, time: datetime | None, now: datetime, max_age_seconds: int
) -> bool:
    """True when the last refresh failed (``stale``) or the price is older than the limit."""
    if stale or time is None:
        return True
    return now - time > timedelta(seconds=max_age_seconds)
