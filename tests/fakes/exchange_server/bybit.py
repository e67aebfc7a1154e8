"""Bybit v5 (``/v5``) routes of the fake exchange."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from tests.fakes.exchange_server.state import NOW_MS, FakeMarket, FakeOrder

if TYPE_CHECKING:  # pragma: no cover
    from tests.fakes.exchange_server import FakeExchangeServer

# --- Bybit --------------------------------------------------------------------------------
_BYBIT_STATUS = {
    "open": "New",
    "closed": "Filled",
    "canceled": "Cancelled",
    "expired": "Deactivated",
    "rejected": "Rejected",
}
_BYBIT_TYPE = {  # local type -> (orderType, stopOrderType)
    "market": ("Market", ""),
    "limit": ("Limit", ""),
    "stop": ("Market", "StopLoss"),
    "stop_limit": ("Limit", "StopLoss"),
    "take_profit": ("Market", "TakeProfit"),
    "take_profit_limit": ("Limit", "TakeProfit"),
    "trailing_stop": ("Market", "TrailingStop"),
}


def _bybit_error(code: int, msg: str) -> str:
    return json.dumps(
        {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": NOW_MS}
    )


def _bybit_ok(result: dict) -> dict:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": NOW_MS}


def _bybit_category(kind: str) -> str:
    return kind  # spot | linear | inverse


def _bybit_status(order: FakeOrder) -> str:
    from decimal import Decimal

    filled = Decimal(order.filled)
    if order.status == "open" and filled > 0:
        return "PartiallyFilled"
    if order.status == "canceled" and filled > 0:
        return "PartiallyFilledCanceled"
    return _BYBIT_STATUS[order.status]


def _bybit_order(order: FakeOrder) -> dict:
    from decimal import Decimal

    order_type, stop_type = _BYBIT_TYPE.get(order.type, ("Limit", ""))
    filled = Decimal(order.filled)
    leaves = Decimal(order.amount) - filled if order.status == "open" else Decimal(0)
    return {
        "symbol": order.symbol,
        "orderType": order_type,
        "orderLinkId": order.client_order_id,
        "orderId": order.order_id,
        "cancelType": "UNKNOWN",
        "avgPrice": order.average or "",
        "stopOrderType": stop_type,
        "lastPriceOnCreated": order.price or "0",
        "orderStatus": _bybit_status(order),
        "takeProfit": "",
        "cumExecValue": str(filled * Decimal(order.average or order.price or "0")),
        "smpType": "None",
        "triggerDirection": 0,
        "blockTradeId": "",
        "isLeverage": "",
        "rejectReason": "EC_NoError",
        "price": order.price or "0",
        "orderIv": "",
        "createdTime": str(order.timestamp),
        "tpTriggerBy": "",
        "positionIdx": 0,
        "timeInForce": "GTC",
        "leavesValue": "0",
        "updatedTime": str(order.timestamp),
        "side": order.side.capitalize(),
        "smpGroup": 0,
        "triggerPrice": "50000" if stop_type else "",
        "cumExecFee": "0",
        "leavesQty": str(leaves),
        "slTriggerBy": "",
        "closeOnTrigger": False,
        "placeType": "",
        "cumExecQty": order.filled,
        "reduceOnly": False,
        "qty": order.amount,
        "stopLoss": "",
        "smpOrderId": "",
        "triggerBy": "",
    }


def _bybit_instrument(m: FakeMarket) -> dict:
    if m.kind == "spot":
        return {
            "symbol": m.base + m.quote,
            "baseCoin": m.base,
            "quoteCoin": m.quote,
            "innovation": "0",
            "status": "Trading",
            "marginTrading": "none",
            "lotSizeFilter": {
                "basePrecision": m.amount_step,
                "quotePrecision": "0.00000001",
                "minOrderQty": m.min_qty,
                "maxOrderQty": "1000",
                "minOrderAmt": "1",
                "maxOrderAmt": "2000000",
            },
            "priceFilter": {"tickSize": m.price_step},
        }
    return {
        "symbol": m.base + m.quote,
        "contractType": "InversePerpetual" if m.kind == "inverse" else "LinearPerpetual",
        "status": "Trading",
        "baseCoin": m.base,
        "quoteCoin": m.quote,
        "launchTime": "1585526400000",
        "deliveryTime": "0",
        "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {
            "minPrice": m.price_step,
            "maxPrice": "199999.80",
            "tickSize": m.price_step,
        },
        "lotSizeFilter": {
            "maxOrderQty": "1190.000",
            "minOrderQty": m.min_qty,
            "qtyStep": m.amount_step,
            "postOnlyMaxOrderQty": "1190.000",
            "maxMktOrderQty": "119.000",
            "minNotionalValue": "5",
        },
        "unifiedMarginTrade": True,
        "fundingInterval": 480,
        "settleCoin": m.settle,
        "copyTrading": "both",
        "upperFundingRate": "0.00375",
        "lowerFundingRate": "-0.00375",
    }


def _bybit_signed(fake: FakeExchangeServer, headers) -> tuple[int, dict] | None:
    if headers.get("X-BAPI-API-KEY") != fake.api_key or not headers.get("X-BAPI-SIGN"):
        return 401, json.loads(_bybit_error(10003, "API key is invalid."))
    return None


def _bybit_page(fake: FakeExchangeServer, rows: list, query: dict, fault, max_limit=None):
    """Cursor pagination as Bybit v5 does it; ``endless_cursor`` never ends."""
    cap = max_limit or fake.page_size
    limit = min(int(query.get("limit") or cap), cap)
    start = int(query.get("cursor") or 0) if (query.get("cursor") or "0").isdigit() else 0
    if fault is not None and fault.kind == "endless_cursor":
        page = rows[start : start + limit]
        return page, str(start + limit)
    page = rows[start : start + limit]
    next_cursor = str(start + limit) if start + limit < len(rows) else ""
    return page, next_cursor


def _bybit_route(fake, method, path, query, headers, fault) -> tuple[int, dict]:
    state = fake.bybit
    if path == "/v5/market/time":
        now = int(time.time())
        return 200, _bybit_ok({"timeSecond": str(now), "timeNano": str(now * 10**9)})
    if path == "/v5/market/instruments-info":
        category = query.get("category")
        if query.get("status") == "PreLaunch":
            return 200, _bybit_ok({"category": category, "list": [], "nextPageCursor": ""})
        rows = [_bybit_instrument(m) for m in state.markets if m.kind == category]
        return 200, _bybit_ok({"category": category, "list": rows, "nextPageCursor": ""})
    if path == "/v5/market/tickers":
        return 200, _bybit_ok(_bybit_tickers(state, query))
    denied = _bybit_signed(fake, headers)
    if denied is not None:
        return denied
    if path == "/v5/user/query-api":
        return 200, _bybit_ok({"id": "1", "readOnly": 1, "unified": 0, "uta": 1,
                               "permissions": {}, "ips": ["*"], "type": 1})  # fmt: skip
    if path == "/v5/account/info":
        return 200, _bybit_ok({"unifiedMarginStatus": 6, "marginMode": "REGULAR_MARGIN",
                               "isMasterTrader": False, "spotHedgingStatus": "OFF",
                               "updatedTime": str(NOW_MS), "dcpStatus": "OFF",
                               "timeWindow": 10, "smpGroup": 0})  # fmt: skip
    if path in ("/v5/order/realtime", "/v5/order/history"):
        category = query.get("category")
        want_open = path == "/v5/order/realtime"
        rows = []
        for o in state.orders:
            if o.kind != category or (o.status == "open") != want_open:
                continue
            if query.get("symbol") and o.symbol != query["symbol"]:
                continue
            if query.get("orderId") and o.order_id != query["orderId"]:
                continue
            if query.get("orderLinkId") and o.client_order_id != query["orderLinkId"]:
                continue
            if query.get("settleCoin"):
                market = state.market_by_id(o.symbol, o.kind)
                if market is None or market.settle != query["settleCoin"]:
                    continue
            rows.append(_bybit_order(o))
        page, cursor = _bybit_page(fake, rows, query, fault)
        return 200, _bybit_ok({"category": category, "list": page, "nextPageCursor": cursor})
    if path == "/v5/order/cancel":
        for o in state.orders:
            if o.status == "open" and (
                o.order_id == query.get("orderId") or o.client_order_id == query.get("orderLinkId")
            ):
                o.status = "canceled"
                return 200, _bybit_ok({"orderId": o.order_id, "orderLinkId": o.client_order_id})
        return 200, json.loads(_bybit_error(110001, "Order does not exist."))
    if path == "/v5/position/list":
        category = query.get("category")
        rows = []
        for p in state.positions:
            if p.kind != category:
                continue
            market = state.market_by_id(p.symbol, p.kind)
            if query.get("settleCoin") and (market is None or market.settle != query["settleCoin"]):
                continue
            size = p.qty.lstrip("-")
            side = "" if size.strip("0.") == "" else ("Sell" if p.qty.startswith("-") else "Buy")
            rows.append(
                {
                    "positionIdx": 0, "riskId": 1, "riskLimitValue": "2000000",
                    "symbol": p.symbol, "side": side, "size": size,
                    "avgPrice": p.entry_price, "positionValue": "0", "tradeMode": 0,
                    "positionStatus": "Normal", "autoAddMargin": 0, "adlRankIndicator": 2,
                    "leverage": "10", "positionBalance": "0", "markPrice": p.entry_price,
                    "liqPrice": "", "bustPrice": "", "positionMM": "0", "positionIM": "0",
                    "tpslMode": "Full", "takeProfit": "0", "stopLoss": "0",
                    "trailingStop": "0", "unrealisedPnl": "0", "curRealisedPnl": "0",
                    "cumRealisedPnl": "0", "seq": 1, "isReduceOnly": False,
                    "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "",
                    "createdTime": str(NOW_MS), "updatedTime": str(NOW_MS),
                }
            )  # fmt: skip
        page, cursor = _bybit_page(fake, rows, query, fault)
        return 200, _bybit_ok({"category": category, "list": page, "nextPageCursor": cursor})
    if path == "/v5/account/wallet-balance":
        coins = [
            {
                "coin": b.currency, "equity": b.total, "usdValue": b.total,
                "walletBalance": b.total, "locked": "0", "totalOrderIM": "0",
                "totalPositionIM": b.used, "totalPositionMM": "0", "unrealisedPnl": "0",
                "cumRealisedPnl": "0", "availableToWithdraw": b.free, "borrowAmount": "0",
                "accruedInterest": "0", "bonus": "0", "collateralSwitch": True,
                "marginCollateral": True,
            }
            for b in state.balances
        ]  # fmt: skip
        account = {"accountType": query.get("accountType", "UNIFIED"), "totalEquity": "0",
                   "totalWalletBalance": "0", "coin": coins}  # fmt: skip
        return 200, _bybit_ok({"list": [account]})
    if path == "/v5/execution/list":
        return _bybit_executions(fake, query, fault)
    return 404, json.loads(_bybit_error(10001, f"fake: no route for {method} {path}"))


# --- executions and tickers ----------------------------------------------------------------
WEEK_MS = 7 * 24 * 3_600_000
EXECUTIONS_MAX_LIMIT = 100


def _bybit_executions(fake: FakeExchangeServer, query: dict, fault) -> tuple[int, dict]:
    """``/v5/execution/list``: category required; at most 7 days between startTime and endTime
    (7 days from the one given, or the last 7 days); newest first; cursor pages of <= 100."""
    category = query.get("category")
    if category not in ("spot", "linear", "inverse", "option"):
        return 200, json.loads(_bybit_error(10001, "params error: category is invalid"))
    start, end = query.get("startTime"), query.get("endTime")
    if start is not None and end is not None and int(end) - int(start) > WEEK_MS:
        message = "params error: The time range between startTime and endTime cannot exceed 7 days"
        return 200, json.loads(_bybit_error(10001, message))
    if start is None and end is None:
        end = str(int(time.time() * 1000))
    low = int(start) if start is not None else int(end) - WEEK_MS
    high = int(end) if end is not None else int(start) + WEEK_MS
    rows = [
        t
        for t in fake.bybit.trades
        if t.kind == category
        and low <= t.time_ms <= high
        and (not query.get("symbol") or t.symbol == query["symbol"])
        and (not query.get("execType") or t.exec_type == query["execType"])
    ]
    rows.sort(key=lambda t: (t.time_ms, t.trade_id), reverse=True)
    page, cursor = _bybit_page(fake, rows, query, fault, max_limit=EXECUTIONS_MAX_LIMIT)
    body = [_bybit_execution(t) for t in page]
    return 200, _bybit_ok({"category": category, "list": body, "nextPageCursor": cursor})


def _bybit_execution(t) -> dict:
    from decimal import Decimal

    linear = t.kind != "spot"
    return {
        "symbol": t.symbol, "orderType": "Limit" if t.maker else "Market",
        "underlyingPrice": "", "orderLinkId": t.client_order_id, "orderId": t.order_id,
        "stopOrderType": "UNKNOWN" if linear else "", "execTime": str(t.time_ms),
        "feeCurrency": t.fee_currency if not linear else "",
        **({"createType": "CreateByUser"} if linear else {}),
        "feeRate": "0.00055", "tradeIv": "", "blockTradeId": "",
        "markPrice": t.price if linear else "", "execPrice": t.price, "markIv": "",
        "orderQty": t.qty, "orderPrice": t.price,
        "execValue": str(Decimal(t.qty) * Decimal(t.price)),
        "closedSize": "0" if linear else "", "execType": t.exec_type, "seq": str(t.time_ms),
        "side": t.side.capitalize(), "indexPrice": "", "leavesQty": "0",
        "isMaker": t.maker, "execFee": t.fee, "execId": t.trade_id, "marketUnit": "",
        "execQty": t.qty,
    }  # fmt: skip


def _bybit_tickers(state, query: dict) -> dict:
    category = query.get("category")
    rows = []
    for t in state.tickers:
        if t.kind != category or (query.get("symbol") and t.symbol != query["symbol"]):
            continue
        row = {"symbol": t.symbol, "lastPrice": t.last, "bid1Price": t.last,
               "bid1Size": "1", "ask1Price": t.last, "ask1Size": "1",
               "prevPrice24h": t.last, "price24hPcnt": "0", "highPrice24h": t.last,
               "lowPrice24h": t.last, "turnover24h": "0", "volume24h": "0"}  # fmt: skip
        if category != "spot":
            row.update({"indexPrice": t.last, "markPrice": t.mark or t.last,
                        "fundingRate": "0.0001", "nextFundingTime": "0",
                        "openInterest": "0", "openInterestValue": "0"})  # fmt: skip
        rows.append(row)
    return {"category": category, "list": rows}
