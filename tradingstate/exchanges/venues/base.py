"""The venue dialect interface: what differs between venues behind one ccxt adapter.

``CcxtExchange`` (``tradingstate/exchanges/ccxt.py``) keeps what every venue shares: the ccxt
client, credentials, redaction, error mapping, parsing into the adapter's dataclasses. A
``VenueDialect`` answers the venue-specific questions:

- construction: which ccxt options the venue needs (which kinds of markets to load);
- shape checks: what a well-formed raw body of each call looks like, and what a body that is
  no answer at all looks like (``envelope_problem``);
- routing: which calls, params and pages read the account's open orders, positions and
  balances; which params name an order by client id;
- history: the trade history policy (windows, look-back, page size, symbol requirement), the
  trade paging loop, and the single-order query retention;
- parsing quirks: local order types the venue encodes in raw fields, the client order id of a
  trade, which executions are fills, whether ccxt amounts are contracts;
- marks: which ccxt call gives mark prices for the account's market type.

This base class is the generic dialect: plain ccxt calls, used for any ccxt id without a
dialect of its own. Each venue module overrides only what differs. A dialect keeps no state
about an account; every method gets the adapter (``session``) it works for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tradingstate.exchanges.base import LAST, MARK, OrderRetention, TradeHistoryPolicy

if TYPE_CHECKING:  # pragma: no cover
    from tradingstate.exchanges.ccxt import CcxtExchange

PAGE_CAP_HIT = "{what}: stopped after {pages} pages, the exchange still had more"
REPEATED_CURSOR = "{what}: the exchange repeated page cursor {cursor!r}"


def windows(since_ms: int, until_ms: int, width: timedelta | None) -> list[tuple[int, int]]:
    """``[since, until]`` cut into consecutive inclusive windows no wider than ``width``."""
    if until_ms < since_ms:
        return []
    if width is None:
        return [(since_ms, until_ms)]
    step = int(width.total_seconds() * 1000)
    result = []
    start = since_ms
    while start <= until_ms:
        end = min(start + step - 1, until_ms)
        result.append((start, end))
        start = end + 1
    return result


class VenueDialect:
    """The generic dialect; venue modules subclass it (see the registry in ``__init__``)."""

    name = "generic"
    # ccxt reports order and trade amounts of contract markets in contracts (OKX): the
    # adapter multiplies them by the market's contract size to get base units.
    contract_amounts = False
    # cost units (ccxt's rate-limit costs) one API key may spend at once after an idle spell
    # (``exchanges.pool.SharedThrottle``): 0 keeps ccxt's spacing of ``rateLimit * cost``
    # between every two calls, right for a venue whose limits we do not know to be budgets.
    rate_limit_burst = 0

    # --- construction ---------------------------------------------------------------------
    def ccxt_options(self, account) -> dict:
        """Options merged into the ccxt constructor's ``options`` (before the account's own)."""
        return {}

    # --- raw response shape checks: a problem string, or None when the body is fine --------
    def envelope_problem(self, raw) -> str | None:
        """Why a parsed JSON body that made ccxt raise is no venue answer at all."""
        return None

    def check_markets(self, raw) -> str | None:
        return None

    def check_order_list(self, raw) -> str | None:
        return None

    def check_order(self, raw) -> str | None:
        return None

    def check_positions(self, raw) -> str | None:
        return None

    def check_balances(self, raw) -> str | None:
        return None

    def check_trades(self, raw) -> str | None:
        return None

    def check_tickers(self, raw) -> str | None:
        return None

    # --- routing ----------------------------------------------------------------------------
    def type_params(self, session: CcxtExchange) -> dict:
        return {"type": session.account.market_type or "spot"}

    def fetch_open_orders(self, session: CcxtExchange) -> tuple[list, bool, str]:
        """(raw ccxt orders, complete, note)."""
        orders = session.call(
            "fetch_open_orders",
            None,
            None,
            None,
            self.type_params(session),
            check=self.check_order_list,
        )
        return orders, True, ""

    def fetch_positions(self, session: CcxtExchange) -> tuple[list, bool, str]:
        positions = session.call(
            "fetch_positions", None, self.type_params(session), check=self.check_positions
        )
        return positions, True, ""

    def balance_params(self, session: CcxtExchange) -> dict:
        return self.type_params(session)

    def client_id_params(self, client_order_id: str) -> dict:
        """The params that name an order by its client order id in fetch/cancel calls."""
        return {"clientOrderId": client_order_id}

    def fetch_order(
        self, session: CcxtExchange, client_order_id: str, exchange_order_id: str, symbol: str
    ) -> dict:
        params = {} if exchange_order_id else self.client_id_params(client_order_id)
        return session.call(
            "fetch_order", exchange_order_id or None, symbol, params, check=self.check_order
        )

    def cancel_params(self, client_order_id: str) -> dict:
        return self.client_id_params(client_order_id)

    # --- parsing quirks -----------------------------------------------------------------------
    def order_type(self, order: dict) -> str | None:
        """The local Order.Type where the venue's raw fields say more than ccxt's type."""
        return None

    def trade_client_order_id(self, trade: dict) -> str:
        return trade.get("clientOrderId") or ""

    def trade_fee_currency(self, trade: dict) -> str:
        """The currency the fee was paid in ("" when the venue does not say)."""
        return str((trade.get("fee") or {}).get("currency") or "")

    def is_fill(self, trade: dict) -> bool:
        """Whether a row of the venue's execution list is a trade (not e.g. a funding fee)."""
        return True

    # --- history ------------------------------------------------------------------------------
    def trade_policy(self, market_type: str) -> TradeHistoryPolicy:
        return TradeHistoryPolicy(
            max_lookback=None,
            default_lookback=timedelta(days=7),
            window=None,
            symbol_required=False,
            page_limit=100,
            source="generic ccxt venue: no documented limits known",
        )

    def order_retention(self, market_type: str) -> OrderRetention:
        return OrderRetention(max_age=None, source="generic ccxt venue: no known limit")

    def fetch_trades(
        self,
        session: CcxtExchange,
        since_ms: int,
        until_ms: int,
        symbols: list[str] | None,
        policy: TradeHistoryPolicy,
    ) -> tuple[list, bool, str]:
        """(raw ccxt trades, complete, note): every page of every window of every symbol.

        Generic: ccxt's ``fetch_my_trades`` by ``since``, advancing ``since`` to the last
        trade's time while pages come back full (duplicates are removed by the adapter).
        """
        trades: list = []
        for symbol in symbols or [None]:
            for start, end in windows(since_ms, until_ms, policy.window):
                cursor = start
                for _page in range(session.max_pages):
                    params = {**self.type_params(session), "until": end}
                    page = session.call(
                        "fetch_my_trades",
                        symbol,
                        cursor,
                        policy.page_limit,
                        params,
                        check=self.check_trades,
                    )
                    trades.extend(page)
                    if len(page) < policy.page_limit:
                        break
                    last = max(int(t.get("timestamp") or cursor) for t in page)
                    if last <= cursor:
                        return trades, False, f"trades: a full page at one instant ({cursor})"
                    cursor = last
                else:
                    return (
                        trades,
                        False,
                        PAGE_CAP_HIT.format(what="trades", pages=session.max_pages),
                    )
        return trades, True, ""

    # --- marks --------------------------------------------------------------------------------
    def mark_price_call(self, market_type: str) -> tuple[str, str]:
        """(ccxt method, the price it gives: MARK or LAST) for the account's market type."""
        return "fetch_tickers", (LAST if market_type == "spot" else MARK)

    def mark_price_params(self, session: CcxtExchange) -> dict:
        return self.type_params(session)
