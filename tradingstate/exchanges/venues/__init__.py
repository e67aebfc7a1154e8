"""Venue dialects: one module per venue, and the registry mapping a ccxt id to its dialect.

A ccxt id without an entry gets the generic ``VenueDialect`` (plain ccxt calls). Adding a
venue is one module in this package plus one line in ``DIALECTS``.
"""

from __future__ import annotations

from tradingstate.exchanges.venues.base import VenueDialect
from tradingstate.exchanges.venues.binance import BinanceDialect
from tradingstate.exchanges.venues.bybit import BybitDialect
from tradingstate.exchanges.venues.okx import OkxDialect

DIALECTS: dict[str, type[VenueDialect]] = {
    "binance": BinanceDialect,
    "binanceusdm": BinanceDialect,
    "binancecoinm": BinanceDialect,
    "binanceus": BinanceDialect,
    "bybit": BybitDialect,
    "okx": OkxDialect,
}


def dialect_for(exchange_id: str) -> VenueDialect:
    """The dialect of a ccxt exchange id (the generic one when the venue has none)."""
    return DIALECTS.get((exchange_id or "").strip(), VenueDialect)()


__all__ = ["DIALECTS", "VenueDialect", "dialect_for"]
