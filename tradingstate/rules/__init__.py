"""Pure rules of the state of record: no ORM, no I/O, no clock.

One state change, one rule set. The bots' single-row services and the reconciler's bulk
core (``tradingstate.services.sync``) compute every new row through these functions and
only differ in how they lock, read and write rows:

- ``rules.orders``: order creation (a bot's registration or an order found on the venue)
  and order transitions (status machine and quantity rules);
- ``rules.positions``: setting a position;
- ``rules.balances``: setting a balance;
- ``rules.accounting``, ``rules.valuation``, ``rules.money``: average-cost position accounting
  and what a position is worth at a mark;
- ``rules.exposure``: net and gross exposure per asset, account and venue.

Where a bot and the venue must be treated differently, the difference is the one named
parameter ``source`` (``Source.BOT`` or ``Source.VENUE``); each module's docstring lists
exactly what it changes. Rules take and return small frozen dataclasses and raise
``tradingstate.errors.ApplicationError`` subclasses naming the field and the problem.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """Who reports a change: the one parameter where the bots' and the venue's paths differ."""

    BOT = "bot"
    """A client of the API or the console (a bot, staff, a command): one legal move at a time."""

    VENUE = "venue"
    """The exchange's truth, applied by reconciliation: it may skip states it went through."""


__all__ = ["Source"]
