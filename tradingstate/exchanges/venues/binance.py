"""Binance (spot ``/api/v3``, USDⓈ-M futures ``/fapi``): the venue's quirks.

Sources (Binance developer docs, read 2025-2026):
- Spot "Account trade list" (``GET /api/v3/myTrades``): symbol required; "The time between
  startTime and endTime can't be longer than 24 hours"; limit max 1000; supported parameter
  combinations: symbol, symbol+orderId, symbol+startTime, symbol+endTime, symbol+fromId,
  symbol+startTime+endTime, symbol+orderId+fromId (``fromId`` never with a time range).
- USDⓈ-M "Account Trade List" (``GET /fapi/v1/userTrades``): symbol required; "The time between
  startTime and endTime cannot be longer than 7 days"; "The parameter fromId cannot be sent
  with startTime or endTime"; "Only support querying trade in the past 6 months"; limit 1000.
- USDⓈ-M "Query Order" / "All Orders": "These orders will not be found: order status is
  CANCELED or EXPIRED AND order has NO filled trade AND created time + 3 days < current time;
  order create time + 90 days < current time".
- Spot "Query order": no retention limit is documented.
- Trade ids are numbered per symbol (``id`` in myTrades/userTrades), so they are unique per
  symbol only; trade rows carry no client order id.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tradingstate.exchanges.base import LAST, MARK, OrderRetention, TradeHistoryPolicy
from tradingstate.exchanges.venues.base import PAGE_CAP_HIT, VenueDialect, windows

if TYPE_CHECKING:  # pragma: no cover
    from tradingstate.exchanges.ccxt import CcxtExchange

# Binance futures name limit variants without the suffix: STOP is a stop-limit order.
_FUTURES_TYPES = {"stop": "stop_limit", "take_profit": "take_profit_limit"}

SPOT_TRADES = TradeHistoryPolicy(
    max_lookback=None,  # spot keeps the account's trades; no limit is documented
    # no venue maximum: the first pass reads a week (7 windows of 24 h per symbol)
    default_lookback=timedelta(days=7),
    window=timedelta(hours=24),
    symbol_required=True,
    page_limit=1000,
    trade_id_scope="symbol",
    source="Binance spot GET /api/v3/myTrades: 24 h per query, symbol required, limit 1000",
)
FUTURES_TRADES = TradeHistoryPolicy(
    max_lookback=timedelta(days=180),  # "past 6 months"
    default_lookback=timedelta(days=180),
    window=timedelta(days=7),
    symbol_required=True,
    page_limit=1000,
    trade_id_scope="symbol",
    source="Binance USD-M GET /fapi/v1/userTrades: 7 days per query, past 6 months, limit 1000",
)
SPOT_RETENTION = OrderRetention(
    max_age=None, source="Binance spot GET /api/v3/order: no retention limit documented"
)
FUTURES_RETENTION = OrderRetention(
    max_age=timedelta(days=90),
    unfilled_max_age=timedelta(days=3),
    source=(
        "Binance USD-M GET /fapi/v1/order: not found when CANCELED/EXPIRED with no fill and "
        "created + 3 days < now, or created + 90 days < now"
    ),
)


class BinanceDialect(VenueDialect):
    name = "binance"
    # Binance limits request weight per minute (USD-M futures: 2,400 per IP, spot: 6,000),
    # and ccxt's costs are those weights at rateLimit 50 ms (1,200 a minute per key). A
    # pass spends ~80 (open orders without a symbol alone cost 40): spaced one call at a
    # time it would take ~4 s of waiting; as a burst of up to 120 its calls go together and
    # no minute ever sees more than 1,320 from one key.
    rate_limit_burst = 120

    def ccxt_options(self, account) -> dict:
        # load only the account's kind of markets (ccxt's binance loads every kind)
        if (account.exchange or "").strip() != "binance":
            return {}  # binanceusdm/binancecoinm/binanceus load their own kind already
        market_type = account.market_type or "spot"
        if market_type == "spot":
            types = ["spot"]
        else:
            user_options = (account.ccxt_options or {}).get("options") or {}
            types = [user_options.get("defaultSubType") or "linear"]
        return {"fetchMarkets": {"types": types}}

    # --- shape checks -------------------------------------------------------------------------
    def check_markets(self, raw) -> str | None:
        if not (isinstance(raw, dict) and "symbols" in raw):
            return "exchangeInfo lacks 'symbols'"
        return None

    def check_order_list(self, raw) -> str | None:
        return None if isinstance(raw, list) else "expected a list of orders"

    def check_order(self, raw) -> str | None:
        if not (isinstance(raw, dict) and "orderId" in raw and "status" in raw):
            return "expected an order object with orderId and status"
        return None

    def check_positions(self, raw) -> str | None:
        return None if isinstance(raw, list) else "expected a list of positions"

    def check_balances(self, raw) -> str | None:
        if not (
            isinstance(raw, dict)
            and (isinstance(raw.get("balances"), list) or isinstance(raw.get("assets"), list))
        ):
            return "account response lacks 'balances'/'assets'"
        return None

    def check_trades(self, raw) -> str | None:
        return None if isinstance(raw, list) else "expected a list of trades"

    def check_tickers(self, raw) -> str | None:
        if isinstance(raw, list) or (isinstance(raw, dict) and "symbol" in raw):
            return None
        return "expected a list of tickers"

    # --- routing ------------------------------------------------------------------------------
    def client_id_params(self, client_order_id: str) -> dict:
        return {"origClientOrderId": client_order_id}

    # --- parsing quirks -----------------------------------------------------------------------
    def order_type(self, order: dict) -> str | None:
        info = order.get("info") or {}
        raw = info.get("type") if isinstance(info, dict) else None
        if isinstance(raw, str) and "avgPrice" in info and raw.lower() in _FUTURES_TYPES:
            return _FUTURES_TYPES[raw.lower()]
        return None

    def trade_client_order_id(self, trade: dict) -> str:
        return ""  # myTrades/userTrades rows carry no client order id

    # --- history ------------------------------------------------------------------------------
    def trade_policy(self, market_type: str) -> TradeHistoryPolicy:
        return SPOT_TRADES if market_type == "spot" else FUTURES_TRADES

    def order_retention(self, market_type: str) -> OrderRetention:
        return SPOT_RETENTION if market_type == "spot" else FUTURES_RETENTION

    def fetch_trades(
        self,
        session: CcxtExchange,
        since_ms: int,
        until_ms: int,
        symbols: list[str] | None,
        policy: TradeHistoryPolicy,
    ) -> tuple[list, bool, str]:
        """Per symbol, per window: the window's first page by time range, then ``fromId``
        pages (Binance never takes both) until a trade past the window's end or a short page.
        """
        trades: list = []
        limit = policy.page_limit
        for symbol in symbols or []:
            for start, end in windows(since_ms, until_ms, policy.window):
                params = {"startTime": start, "endTime": end, "limit": limit}
                page = session.call(
                    "fetch_my_trades", symbol, None, None, params, check=self.check_trades
                )
                trades.extend(page)
                pages = 1
                while len(page) >= limit:
                    if pages >= session.max_pages:
                        what = f"trades {symbol}"
                        return trades, False, PAGE_CAP_HIT.format(what=what, pages=pages)
                    next_id = max(int(t["id"]) for t in page) + 1
                    page = session.call(
                        "fetch_my_trades",
                        symbol,
                        None,
                        None,
                        {"fromId": next_id, "limit": limit},
                        check=self.check_trades,
                    )
                    pages += 1
                    inside = [t for t in page if int(t.get("timestamp") or 0) <= end]
                    trades.extend(inside)
                    if len(inside) < len(page):
                        break  # the rest belongs to the next window
        return trades, True, ""

    # --- marks --------------------------------------------------------------------------------
    def mark_price_call(self, market_type: str) -> tuple[str, str]:
        # spot has no mark price: last from /api/v3/ticker/24hr; USD-M: /fapi/v1/premiumIndex
        if market_type == "spot":
            return "fetch_tickers", LAST
        return "fetch_mark_prices", MARK
