"""OKX v5 (``/api/v5``, trading account; spot and USDT-margined swaps): the venue's quirks.

Sources (OKX API v5 docs, read 2025-2026):
- Every body is ``{"code": "0", "msg": "", "data": [...]}``; an error has another ``code``
  (and per-row ``sCode`` for batch/cancel calls). Private calls are signed with a passphrase
  (``OK-ACCESS-PASSPHRASE``): an account needs ``password_env``.
- Swap order sizes (``sz``, ``accFillSz``) and fill sizes (``fillSz``) are in contracts; one
  contract is ``ctVal`` of the base currency (ccxt's ``contractSize``).
- "Get order list" (``GET /api/v5/trade/orders-pending``): limit max 100, newest first, paged
  with ``after`` = the last ``ordId`` of the page.
- "Get transaction details (last 3 months)" (``GET /api/v5/trade/fills-history``): "This
  endpoint can retrieve data from the last 3 months"; ``instType`` required; ``begin``/``end``
  filter on ``ts`` with no documented width limit; limit max 100, newest first, paged with
  ``after`` = the last ``billId``. ``tradeId`` is the instrument's trade id (unique per
  instrument, not per account); ``clOrdId`` is the order's client id.
- "Get order history (last 7 days)" / "(last 3 months)": "Get completed orders which are placed
  in the last 3 months ... The incomplete orders that have been canceled are only reserved for
  2 hours." The single-order query (``GET /api/v5/trade/order``) reads the same store, so an
  order older than 3 months, or cancelled with no fill and older than 2 hours, is not found.
- Mark prices: ``GET /api/v5/public/mark-price?instType=SWAP`` (one call for every swap);
  spot has none, so spot uses ``last`` of ``GET /api/v5/market/tickers?instType=SPOT``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tradingstate.exchanges.base import LAST, MARK, OrderRetention, TradeHistoryPolicy
from tradingstate.exchanges.venues.base import PAGE_CAP_HIT, VenueDialect

if TYPE_CHECKING:  # pragma: no cover
    from tradingstate.exchanges.ccxt import CcxtExchange

PAGE_LIMIT = 100
_INST_TYPES = {"spot": "SPOT", "swap": "SWAP", "future": "FUTURES"}
# raw ordType -> local Order.Type
_ORDER_TYPES = {
    "market": "market",
    "optimal_limit_ioc": "market",
    "limit": "limit",
    "post_only": "limit",
    "fok": "limit",
    "ioc": "limit",
}

TRADES = TradeHistoryPolicy(
    max_lookback=timedelta(days=90),
    default_lookback=timedelta(days=90),
    window=None,
    symbol_required=False,
    page_limit=PAGE_LIMIT,
    trade_id_scope="symbol",
    source="OKX GET /api/v5/trade/fills-history: last 3 months, limit 100, paged by billId",
)
RETENTION = OrderRetention(
    max_age=timedelta(days=90),
    unfilled_max_age=timedelta(hours=2),
    source=(
        "OKX order history: completed orders of the last 3 months; cancelled orders with no "
        "fill are kept 2 hours"
    ),
)


def okx_problem(raw) -> str | None:
    if not isinstance(raw, dict):
        return "expected an OKX v5 envelope object"
    if str(raw.get("code")) != "0":
        return f"code {raw.get('code')!r}"
    if not isinstance(raw.get("data"), list):
        return "data is missing"
    return None


class OkxDialect(VenueDialect):
    name = "okx"
    contract_amounts = True

    def ccxt_options(self, account) -> dict:
        market_type = account.market_type or "spot"
        # load only the account's kind of markets (ccxt's okx loads spot, future, swap, option)
        return {"fetchMarkets": {"types": [market_type]}}

    # --- shape checks -------------------------------------------------------------------------
    def envelope_problem(self, raw) -> str | None:
        if not (isinstance(raw, dict) and "code" in raw):
            return "response lacks OKX's code"
        return None

    def check_markets(self, raw) -> str | None:
        return okx_problem(raw)

    check_order_list = check_order = check_positions = check_trades = check_tickers = check_markets

    def check_balances(self, raw) -> str | None:
        problem = okx_problem(raw)
        if problem is None and not all(
            isinstance(entry, dict) and isinstance(entry.get("details"), list)
            for entry in raw["data"]
        ):
            problem = "balance entries lack 'details'"
        return problem

    # --- routing ------------------------------------------------------------------------------
    def inst_type(self, session: CcxtExchange) -> str:
        return _INST_TYPES.get(session.account.market_type or "spot", "SPOT")

    def type_params(self, session: CcxtExchange) -> dict:
        return {"instType": self.inst_type(session)}

    def balance_params(self, session: CcxtExchange) -> dict:
        return {"type": session.account.market_type or "spot"}  # both: /api/v5/account/balance

    def fetch_open_orders(self, session: CcxtExchange) -> tuple[list, bool, str]:
        orders: list = []
        after = None
        for _page in range(session.max_pages):
            params = {**self.type_params(session), "limit": PAGE_LIMIT}
            if after:
                params["after"] = after
            page = session.call(
                "fetch_open_orders", None, None, None, params, check=self.check_order_list
            )
            orders.extend(page)
            raw_page = session.last_json()["data"]
            if len(raw_page) < PAGE_LIMIT:
                return orders, True, ""
            after = raw_page[-1].get("ordId")  # newest first: the page's oldest order
        note = PAGE_CAP_HIT.format(what="open orders", pages=session.max_pages)
        session.log_incomplete(note)
        return orders, False, note

    def client_id_params(self, client_order_id: str) -> dict:
        return {"clOrdId": client_order_id}

    # --- parsing quirks -----------------------------------------------------------------------
    def order_type(self, order: dict) -> str | None:
        raw = str((order.get("info") or {}).get("ordType") or "").lower()
        return _ORDER_TYPES.get(raw)

    def trade_client_order_id(self, trade: dict) -> str:
        return str((trade.get("info") or {}).get("clOrdId") or "")

    # --- history ------------------------------------------------------------------------------
    def trade_policy(self, market_type: str) -> TradeHistoryPolicy:
        return TRADES

    def order_retention(self, market_type: str) -> OrderRetention:
        return RETENTION

    def fetch_trades(
        self,
        session: CcxtExchange,
        since_ms: int,
        until_ms: int,
        symbols: list[str] | None,
        policy: TradeHistoryPolicy,
    ) -> tuple[list, bool, str]:
        """Per symbol (or the whole instType), every ``after`` page of fills-history."""
        trades: list = []
        for symbol in symbols or [None]:
            after = None
            for _page in range(session.max_pages):
                params = {
                    **self.type_params(session),
                    "begin": since_ms,
                    "end": until_ms,
                    "limit": policy.page_limit,
                }
                if after:
                    params["after"] = after
                page = session.call(
                    "fetch_my_trades", symbol, None, None, params, check=self.check_trades
                )
                trades.extend(page)
                raw_page = session.last_json()["data"]
                if len(raw_page) < policy.page_limit:
                    break
                after = raw_page[-1].get("billId")  # newest first: the page's oldest fill
            else:
                return trades, False, PAGE_CAP_HIT.format(what="trades", pages=session.max_pages)
        return trades, True, ""

    # --- marks --------------------------------------------------------------------------------
    def mark_price_call(self, market_type: str) -> tuple[str, str]:
        if market_type == "spot":
            return "fetch_tickers", LAST
        return "fetch_mark_prices", MARK
