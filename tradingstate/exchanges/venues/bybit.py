"""Bybit v5 (``/v5``, unified account): the venue's quirks.

Sources (Bybit v5 API docs, read 2025-2026):
- Every body is an envelope ``{"retCode", "retMsg", "result": {"list", "nextPageCursor"}}``;
  lists are paged by cursor. Open orders take ``limit`` [1, 50], positions [1, 200],
  executions [1, 100].
- Linear open orders and positions need a symbol or a ``settleCoin`` (one query per settle coin).
- "Get Trade History" (``GET /v5/execution/list``): "Unified account supports getting the past
  730 days historical trades data"; "startTime and endTime are not passed, return 7 days by
  default ... If both are passed, the rule is endTime - startTime <= 7 days"; ``execType``
  filters (ccxt asks ``Trade`` only, which hides liquidations and ADL, so the adapter asks for
  every type and drops ``Funding`` rows, which are fees, not trades).
- "Get Order History" (``GET /v5/order/history``): orders of the last 7 days in every closed
  state except Cancelled, Rejected and Deactivated, which are kept 24 hours only; beyond 7 days
  only orders with fills, and a query without a time range covers the last 7 days, which is
  what the adapter's single-order query asks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tradingstate.exchanges.base import (
    LAST,
    MARK,
    OrderNotFound,
    OrderRetention,
    TradeHistoryPolicy,
)
from tradingstate.exchanges.venues.base import (
    PAGE_CAP_HIT,
    REPEATED_CURSOR,
    VenueDialect,
    windows,
)

if TYPE_CHECKING:  # pragma: no cover
    from tradingstate.exchanges.ccxt import CcxtExchange

OPEN_ORDERS_PAGE_LIMIT = 50
POSITIONS_PAGE_LIMIT = 200
EXECUTIONS_PAGE_LIMIT = 100

# v5 stopOrderType -> (local type when the order is market, when limit).
_STOP_TYPES = {
    "stoploss": ("stop", "stop_limit"),
    "partialstoploss": ("stop", "stop_limit"),
    "stop": ("stop", "stop_limit"),
    "takeprofit": ("take_profit", "take_profit_limit"),
    "partialtakeprofit": ("take_profit", "take_profit_limit"),
    "trailingstop": ("trailing_stop", "trailing_stop"),
}
_ORDER_TYPES = {"market": "market", "limit": "limit"}
NOT_FILLS = {"Funding"}  # execType rows that are no trade

TRADES = TradeHistoryPolicy(
    max_lookback=timedelta(days=730),
    default_lookback=timedelta(days=730),
    window=timedelta(days=7),
    symbol_required=False,
    page_limit=EXECUTIONS_PAGE_LIMIT,
    trade_id_scope="account",
    source="Bybit GET /v5/execution/list: 7 days per query, 730 days back, limit 100",
)
RETENTION = OrderRetention(
    max_age=timedelta(days=7),
    unfilled_max_age=timedelta(hours=24),
    source=(
        "Bybit GET /v5/order/history: 7 days (the default range) for closed orders, 24 h for "
        "Cancelled/Rejected/Deactivated"
    ),
)


def list_problem(raw) -> str | None:
    if not isinstance(raw, dict):
        return "expected a Bybit v5 envelope object"
    if str(raw.get("retCode")) != "0":
        return f"retCode {raw.get('retCode')!r}"
    result = raw.get("result")
    if not isinstance(result, dict) or not isinstance(result.get("list"), list):
        return "result.list is missing"
    return None


class BybitDialect(VenueDialect):
    name = "bybit"

    def ccxt_options(self, account) -> dict:
        market_type = account.market_type or "spot"
        # load only the account's kind of markets; derivatives: both categories are queried
        types = ["spot"] if market_type == "spot" else ["linear", "inverse"]
        return {"fetchMarkets": {"types": types}}

    # --- shape checks -------------------------------------------------------------------------
    def envelope_problem(self, raw) -> str | None:
        if not (isinstance(raw, dict) and "retCode" in raw):
            return "response lacks Bybit's retCode"
        return None

    def check_markets(self, raw) -> str | None:
        return list_problem(raw)

    check_order_list = check_order = check_positions = check_trades = check_tickers = check_markets

    def check_balances(self, raw) -> str | None:
        problem = list_problem(raw)
        if problem is None and not all(
            isinstance(entry, dict) and isinstance(entry.get("coin"), list)
            for entry in raw["result"]["list"]
        ):
            problem = "wallet entries lack 'coin'"
        return problem

    # --- routing ------------------------------------------------------------------------------
    def scopes(self, session: CcxtExchange) -> list[dict]:
        """One params dict per (category, settle coin) the account's markets span."""
        account = session.account
        if not account.is_derivative:
            return [{}]
        markets = session.markets or {}
        linear_settles = sorted(
            {
                m.get("settle")
                for m in markets.values()
                if m.get("type") == account.market_type and m.get("linear") and m.get("settle")
            }
        )
        has_inverse = any(
            m.get("type") == account.market_type and m.get("inverse") for m in markets.values()
        )
        scopes = [{"subType": "linear", "settleCoin": settle} for settle in linear_settles]
        if has_inverse:
            scopes.append({"subType": "inverse"})
        return scopes or [{"subType": "linear"}]

    def _paged(self, session: CcxtExchange, method: str, what: str) -> tuple[list, bool, str]:
        positions = method == "fetch_positions"
        check = self.check_positions if positions else self.check_order_list
        items: list = []
        for scope in self.scopes(session):
            cursor = None
            seen: set[str] = set()
            for _page in range(session.max_pages):
                params = dict(scope)
                params["limit"] = POSITIONS_PAGE_LIMIT if positions else OPEN_ORDERS_PAGE_LIMIT
                if cursor:
                    params["cursor"] = cursor
                if positions:
                    page = session.call(method, None, params, check=check)
                else:
                    page = session.call(method, None, None, None, params, check=check)
                items.extend(page)
                cursor = session.last_json()["result"].get("nextPageCursor") or None
                if not cursor:
                    break
                if cursor in seen:
                    return items, False, REPEATED_CURSOR.format(what=what, cursor=cursor)
                seen.add(cursor)
            else:
                note = PAGE_CAP_HIT.format(what=what, pages=session.max_pages)
                session.log_incomplete(note)
                return items, False, note
        return items, True, ""

    def fetch_open_orders(self, session: CcxtExchange) -> tuple[list, bool, str]:
        return self._paged(session, "fetch_open_orders", "open orders")

    def fetch_positions(self, session: CcxtExchange) -> tuple[list, bool, str]:
        return self._paged(session, "fetch_positions", "positions")

    def client_id_params(self, client_order_id: str) -> dict:
        return {"orderLinkId": client_order_id}

    def fetch_order(
        self, session: CcxtExchange, client_order_id: str, exchange_order_id: str, symbol: str
    ) -> dict:
        # v5 has no single-order endpoint: look in the open list, then in the history
        params = {"orderId": exchange_order_id} if exchange_order_id else {}
        if not exchange_order_id:
            params["orderLinkId"] = client_order_id
        for method in ("fetch_open_orders", "fetch_canceled_and_closed_orders"):
            found = session.call(
                method, symbol, None, None, dict(params), check=self.check_order_list
            )
            for order in found:
                if (exchange_order_id and str(order.get("id")) == str(exchange_order_id)) or (
                    not exchange_order_id and order.get("clientOrderId") == client_order_id
                ):
                    return order
        raise OrderNotFound(
            f"bybit: order {exchange_order_id or client_order_id} ({symbol}) not found"
        )

    # --- parsing quirks -----------------------------------------------------------------------
    def order_type(self, order: dict) -> str | None:
        info = order.get("info") or {}
        if not (isinstance(info, dict) and "orderType" in info and "stopOrderType" in info):
            return None
        base = str(info.get("orderType") or order.get("type") or "").lower()
        stop = str(info.get("stopOrderType") or "").lower()
        if stop in _STOP_TYPES:
            market_type, limit_type = _STOP_TYPES[stop]
            return limit_type if base == "limit" else market_type
        return _ORDER_TYPES.get(base, "other")

    def trade_client_order_id(self, trade: dict) -> str:
        return str((trade.get("info") or {}).get("orderLinkId") or "")

    def trade_fee_currency(self, trade: dict) -> str:
        # spot rows say feeCurrency; ccxt guesses it from side and sign instead
        stated = (trade.get("info") or {}).get("feeCurrency")
        return str(stated) if stated else super().trade_fee_currency(trade)

    def is_fill(self, trade: dict) -> bool:
        return (trade.get("info") or {}).get("execType") not in NOT_FILLS

    # --- history ------------------------------------------------------------------------------
    def trade_policy(self, market_type: str) -> TradeHistoryPolicy:
        return TRADES

    def order_retention(self, market_type: str) -> OrderRetention:
        return RETENTION

    def _trade_scopes(self, session: CcxtExchange, symbols: list[str] | None) -> list[dict]:
        if symbols:
            scopes = []
            for symbol in symbols:
                market = session.market(symbol)
                category = "spot" if market.get("spot") else (
                    "inverse" if market.get("inverse") else "linear"
                )  # fmt: skip
                scopes.append({"category": category, "symbol": market["id"]})
            return scopes
        if not session.account.is_derivative:
            return [{"category": "spot"}]
        # execution/list takes no settleCoin: one query per category covers every settle coin
        categories = dict.fromkeys(scope.get("subType", "linear") for scope in self.scopes(session))
        return [{"category": category} for category in categories]

    def fetch_trades(
        self,
        session: CcxtExchange,
        since_ms: int,
        until_ms: int,
        symbols: list[str] | None,
        policy: TradeHistoryPolicy,
    ) -> tuple[list, bool, str]:
        """Per scope, per 7-day window, every cursor page of ``/v5/execution/list`` (all
        execution types; the raw endpoint, since ccxt's fetch_my_trades pins ``Trade``)."""
        raw_rows: list[tuple[dict, str]] = []
        for scope in self._trade_scopes(session, symbols):
            for start, end in windows(since_ms, until_ms, policy.window):
                cursor = None
                seen: set[str] = set()
                for _page in range(session.max_pages):
                    request = {**scope, "startTime": start, "endTime": end}
                    request["limit"] = policy.page_limit
                    if cursor:
                        request["cursor"] = cursor
                    response = session.call(
                        "privateGetV5ExecutionList", request, check=self.check_trades
                    )
                    result = response["result"]
                    raw_rows.extend((row, scope["category"]) for row in result["list"])
                    cursor = result.get("nextPageCursor") or None
                    if not cursor:
                        break
                    if cursor in seen:
                        note = REPEATED_CURSOR.format(what="trades", cursor=cursor)
                        return _parse(session, raw_rows), False, note
                    seen.add(cursor)
                else:
                    note = PAGE_CAP_HIT.format(what="trades", pages=session.max_pages)
                    return _parse(session, raw_rows), False, note
        return _parse(session, raw_rows), True, ""

    # --- marks --------------------------------------------------------------------------------
    def mark_price_call(self, market_type: str) -> tuple[str, str]:
        # /v5/market/tickers: linear rows carry markPrice, spot rows only lastPrice
        return "fetch_tickers", (LAST if market_type == "spot" else MARK)


def _parse(session: CcxtExchange, rows: list[tuple[dict, str]]) -> list:
    """Raw execution rows -> ccxt trades, each against its own market (by id and category)."""
    exchange = session.exchange
    trades = []
    for row, category in rows:
        market = session.market_by_id(str(row.get("symbol") or ""), spot=category == "spot")
        trades.append(exchange.parse_trade(row, market))
    return trades
