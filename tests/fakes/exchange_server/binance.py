"""Binance spot (``/api/v3``) and futures (``/fapi``, ``/dapi``) routes of the fake exchange."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tests.fakes.exchange_server.state import NOW_MS, FakeMarket, FakeOrder, VenueState, _inverse_id

if TYPE_CHECKING:  # pragma: no cover
    from tests.fakes.exchange_server import FakeExchangeServer

# --- Binance ------------------------------------------------------------------------------
_BINANCE_STATUS = {
    "open": "NEW",
    "closed": "FILLED",
    "canceled": "CANCELED",
    "expired": "EXPIRED",
    "rejected": "REJECTED",
}
_BINANCE_SPOT_TYPE = {
    "market": "MARKET",
    "limit": "LIMIT",
    "stop": "STOP_LOSS",
    "stop_limit": "STOP_LOSS_LIMIT",
    "take_profit": "TAKE_PROFIT",
    "take_profit_limit": "TAKE_PROFIT_LIMIT",
}
_BINANCE_FUTURES_TYPE = {
    "market": "MARKET",
    "limit": "LIMIT",
    "stop": "STOP_MARKET",
    "stop_limit": "STOP",
    "take_profit": "TAKE_PROFIT_MARKET",
    "take_profit_limit": "TAKE_PROFIT",
    "trailing_stop": "TRAILING_STOP_MARKET",
}


def _binance_error(code: int, msg: str, status: int = 400) -> tuple[int, dict]:
    return status, {"code": code, "msg": msg}


def _binance_status(order: FakeOrder) -> str:
    from decimal import Decimal

    if order.status == "open" and Decimal(order.filled) > 0:
        return "PARTIALLY_FILLED"
    return _BINANCE_STATUS[order.status]


def _binance_filters(m: FakeMarket) -> list[dict]:
    return [
        {"filterType": "PRICE_FILTER", "minPrice": m.price_step, "maxPrice": "1000000",
         "tickSize": m.price_step},
        {"filterType": "LOT_SIZE", "minQty": m.min_qty, "maxQty": "1000",
         "stepSize": m.amount_step},
        {"filterType": "MARKET_LOT_SIZE", "minQty": m.min_qty, "maxQty": "120",
         "stepSize": m.amount_step},
    ]  # fmt: skip


def _binance_spot_symbol(m: FakeMarket) -> dict:
    return {
        "symbol": m.base + m.quote,
        "status": "TRADING",
        "baseAsset": m.base,
        "baseAssetPrecision": 8,
        "quoteAsset": m.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": _binance_filters(m),
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_MAKER"],
    }


def _binance_futures_symbol(m: FakeMarket) -> dict:
    inverse = m.kind == "inverse"
    return {
        "symbol": _inverse_id(m) if inverse else m.base + m.quote,
        "pair": m.base + m.quote,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": 1569398400000,
        "status": "TRADING",
        "contractStatus": "TRADING",
        "contractSize": int(m.contract_size) if inverse else None,
        "baseAsset": m.base,
        "quoteAsset": m.quote,
        "marginAsset": m.settle,
        "pricePrecision": 2,
        "quantityPrecision": 3,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "triggerProtect": "0.0500",
        "filters": [*_binance_filters(m), {"filterType": "MIN_NOTIONAL", "notional": "5"}],
        "orderTypes": list(_BINANCE_FUTURES_TYPE.values()),
        "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
    }


def _binance_order(order: FakeOrder, futures: bool) -> dict:
    from decimal import Decimal

    types = _BINANCE_FUTURES_TYPE if futures else _BINANCE_SPOT_TYPE
    raw_type = types.get(order.type, "LIMIT")
    price = order.price or "0"
    average = order.average or ("0" if Decimal(order.filled) == 0 else price)
    common = {
        "symbol": order.symbol,
        "orderId": int(order.order_id),
        "clientOrderId": order.client_order_id,
        "price": price,
        "origQty": order.amount,
        "executedQty": order.filled,
        "status": _binance_status(order),
        "timeInForce": "GTC",
        "type": raw_type,
        "side": order.side.upper(),
        "stopPrice": "0",
        "time": order.timestamp,
        "updateTime": order.timestamp,
    }
    if futures:
        return {
            **common,
            "avgPrice": average,
            "cumQuote": str(Decimal(order.filled) * Decimal(average)),
            "reduceOnly": False,
            "closePosition": False,
            "positionSide": "BOTH",
            "workingType": "CONTRACT_PRICE",
            "priceProtect": False,
            "origType": raw_type,
            "priceMatch": "NONE",
            "selfTradePreventionMode": "NONE",
            "goodTillDate": 0,
        }
    return {
        **common,
        "orderListId": -1,
        "cummulativeQuoteQty": str(Decimal(order.filled) * Decimal(average)),
        "icebergQty": "0.00000000",
        "isWorking": True,
        "workingTime": order.timestamp,
        "origQuoteOrderQty": "0.00000000",
        "selfTradePreventionMode": "NONE",
    }


def _binance_find_order(state: VenueState, query: dict, futures: bool) -> FakeOrder | None:
    order_id = query.get("orderId")
    client_id = query.get("origClientOrderId")
    for order in state.orders:
        if (order.kind == "spot") == futures:
            continue
        if (order_id and order.order_id == order_id) or (
            client_id and order.client_order_id == client_id
        ):
            return order
    return None


def _binance_signed(fake: FakeExchangeServer, query: dict, headers) -> tuple[int, dict] | None:
    if not fake.key_ok(headers.get("X-MBX-APIKEY")) or "signature" not in query:
        return _binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
    return None


def _binance_route(fake: FakeExchangeServer, method, path, query, headers) -> tuple[int, dict]:
    from decimal import Decimal

    state = fake.binance
    futures = path.startswith(("/fapi/", "/dapi/"))
    inverse = path.startswith("/dapi/")
    if path in ("/api/v3/ping", "/fapi/v1/ping", "/dapi/v1/ping"):
        return 200, {}
    if path in ("/api/v3/time", "/fapi/v1/time", "/dapi/v1/time"):
        return 200, {"serverTime": int(time.time() * 1000)}
    if path == "/api/v3/exchangeInfo":
        symbols = [_binance_spot_symbol(m) for m in state.markets if m.kind == "spot"]
        return 200, {"timezone": "UTC", "serverTime": NOW_MS, "rateLimits": [], "symbols": symbols}
    if path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
        kind = "inverse" if inverse else "linear"
        symbols = [_binance_futures_symbol(m) for m in state.markets if m.kind == kind]
        return 200, {"timezone": "UTC", "serverTime": NOW_MS, "rateLimits": [], "assets": [],
                     "symbols": symbols}  # fmt: skip
    if path in ("/api/v3/ticker/24hr", "/fapi/v1/ticker/24hr", "/fapi/v1/premiumIndex"):
        return _binance_tickers(state, path, query)
    denied = _binance_signed(fake, query, headers)
    if denied is not None:
        return denied
    kind_ok = (lambda o: o.kind == "inverse") if inverse else (
        (lambda o: o.kind == "linear") if futures else (lambda o: o.kind == "spot")
    )  # fmt: skip
    if path in ("/api/v3/openOrders", "/fapi/v1/openOrders", "/dapi/v1/openOrders"):
        symbol = query.get("symbol")
        return 200, [
            _binance_order(o, futures)
            for o in state.orders
            if o.status == "open" and kind_ok(o) and (symbol is None or o.symbol == symbol)
        ]
    if path in ("/api/v3/order", "/fapi/v1/order", "/dapi/v1/order"):
        order = _binance_find_order(state, query, futures)
        if order is None:
            return _binance_error(-2013, "Order does not exist.")
        if method == "DELETE":
            if order.status != "open":
                return _binance_error(-2011, "Unknown order sent.")
            order.status = "canceled"
        return 200, _binance_order(order, futures)
    if path == "/api/v3/account":
        return 200, {
            "makerCommission": 10, "takerCommission": 10, "canTrade": True,
            "canWithdraw": True, "canDeposit": True, "updateTime": NOW_MS,
            "accountType": "SPOT", "permissions": ["SPOT"], "uid": 1,
            "balances": [
                {"asset": b.currency, "free": b.free, "locked": b.used} for b in state.balances
            ],
        }  # fmt: skip
    if path in ("/fapi/v2/account", "/fapi/v3/account", "/dapi/v1/account"):
        assets = [
            {
                "asset": b.currency,
                "walletBalance": b.total,
                "unrealizedProfit": "0.00000000",
                "marginBalance": b.total,
                "maintMargin": "0.00000000",
                "initialMargin": b.used,
                "positionInitialMargin": b.used,
                "openOrderInitialMargin": "0.00000000",
                "crossWalletBalance": b.total,
                "crossUnPnl": "0.00000000",
                "availableBalance": b.free,
                "maxWithdrawAmount": b.free,
                "marginAvailable": True,
                "updateTime": NOW_MS,
            }
            for b in state.futures_balances
        ]
        return 200, {
            "totalInitialMargin": "0", "totalWalletBalance": "0", "availableBalance": "0",
            "canTrade": True, "canDeposit": True, "canWithdraw": True, "updateTime": 0,
            "multiAssetsMargin": False, "assets": assets, "positions": [],
        }  # fmt: skip
    if path in ("/fapi/v2/positionRisk", "/fapi/v3/positionRisk", "/dapi/v1/positionRisk"):
        rows = []
        for p in state.positions:
            if not kind_ok(p):
                continue
            market = state.market_by_id(p.symbol, p.kind)
            rows.append(
                {
                    "symbol": p.symbol,
                    "positionSide": "BOTH",
                    "positionAmt": p.qty,
                    "entryPrice": p.entry_price,
                    "breakEvenPrice": p.entry_price,
                    "markPrice": p.entry_price,
                    "unRealizedProfit": "0",
                    "liquidationPrice": "0",
                    "isolatedMargin": "0",
                    "notional": str(Decimal(p.qty) * Decimal(p.entry_price)),
                    "marginAsset": market.settle if market else "USDT",
                    "isolatedWallet": "0",
                    "initialMargin": "0",
                    "maintMargin": "0",
                    "positionInitialMargin": "0",
                    "openOrderInitialMargin": "0",
                    "adl": 0,
                    "bidNotional": "0",
                    "askNotional": "0",
                    "updateTime": NOW_MS,
                    "leverage": "10",
                    "marginType": "cross",
                }
            )
        return 200, rows
    if path in ("/fapi/v1/leverageBracket", "/dapi/v2/leverageBracket"):
        return 200, []
    if path == "/sapi/v1/capital/config/getall":
        return 200, []
    if path in ("/api/v3/myTrades", "/fapi/v1/userTrades"):
        return _binance_trades(state, path, query)
    return _binance_error(-1121, f"fake: no route for {method} {path}", 404)


# --- trades and tickers -------------------------------------------------------------------
HOUR_MS = 3_600_000
TRADE_WINDOWS = {"/api/v3/myTrades": 24 * HOUR_MS, "/fapi/v1/userTrades": 7 * 24 * HOUR_MS}
TRADE_WINDOW_TEXT = {"/api/v3/myTrades": "24 hours", "/fapi/v1/userTrades": "7 days"}


def _binance_trades(state: VenueState, path: str, query: dict) -> tuple[int, object]:
    """myTrades / userTrades as Binance answers them: symbol required; ``fromId`` or a time
    range, never both; a range wider than the venue's window refused; ascending by id."""
    spot = path == "/api/v3/myTrades"
    symbol = query.get("symbol")
    if not symbol:
        return _binance_error(-1102, "Mandatory parameter 'symbol' was not sent, was empty/null, "
                                     "or malformed.")  # fmt: skip
    start, end = query.get("startTime"), query.get("endTime")
    from_id = query.get("fromId")
    if from_id is not None and (start is not None or end is not None):
        return _binance_error(-1128, "Combination of optional parameters invalid.")
    limit = int(query.get("limit") or 500)
    if not 1 <= limit <= 1000:
        return _binance_error(-1130, "Data sent for parameter 'limit' is not valid.")
    width = TRADE_WINDOWS[path]
    if start is not None and end is not None and int(end) - int(start) > width:
        return _binance_error(
            -1127, f"More than {TRADE_WINDOW_TEXT[path]} between startTime and endTime."
        )
    kind = "spot" if spot else "linear"
    rows = sorted(
        (t for t in state.trades if t.kind == kind and t.symbol == symbol),
        key=lambda t: int(t.trade_id),
    )
    if from_id is not None:
        rows = [t for t in rows if int(t.trade_id) >= int(from_id)]
    else:
        if start is None and end is None:
            end = max((t.time_ms for t in rows), default=0)
        low = int(start) if start is not None else int(end) - width
        high = int(end) if end is not None else int(start) + width
        rows = [t for t in rows if low <= t.time_ms <= high]
    return 200, [_binance_trade(t, spot) for t in rows[:limit]]


def _binance_trade(t, spot: bool) -> dict:
    from decimal import Decimal

    quote = str(Decimal(t.qty) * Decimal(t.price))
    common = {"symbol": t.symbol, "id": int(t.trade_id), "orderId": int(t.order_id),
              "price": t.price, "qty": t.qty, "quoteQty": quote, "commission": t.fee,
              "commissionAsset": t.fee_currency, "time": t.time_ms}  # fmt: skip
    if spot:
        return {**common, "orderListId": -1, "isBuyer": t.side == "buy", "isMaker": t.maker,
                "isBestMatch": True}  # fmt: skip
    return {**common, "side": t.side.upper(), "realizedPnl": "0", "marginAsset": "USDT",
            "positionSide": "BOTH", "maker": t.maker, "buyer": t.side == "buy"}  # fmt: skip


def _binance_tickers(state: VenueState, path: str, query: dict) -> tuple[int, object]:
    import json

    kind = "spot" if path.startswith("/api/") else "linear"
    wanted = json.loads(query["symbols"]) if query.get("symbols") else None
    if query.get("symbol"):
        wanted = [query["symbol"]]
    rows = [t for t in state.tickers if t.kind == kind and (wanted is None or t.symbol in wanted)]
    if path == "/fapi/v1/premiumIndex":
        body = [{"symbol": t.symbol, "markPrice": t.mark or t.last, "indexPrice": t.last,
                 "estimatedSettlePrice": t.last, "lastFundingRate": "0.0001",
                 "interestRate": "0.0001", "nextFundingTime": t.time_ms + 8 * HOUR_MS,
                 "time": t.time_ms} for t in rows]  # fmt: skip
    else:
        body = [{"symbol": t.symbol, "priceChange": "0", "priceChangePercent": "0",
                 "weightedAvgPrice": t.last, "lastPrice": t.last, "lastQty": "1",
                 "openPrice": t.last, "highPrice": t.last, "lowPrice": t.last, "volume": "1",
                 "quoteVolume": t.last, "openTime": t.time_ms - 24 * HOUR_MS,
                 "closeTime": t.time_ms, "count": 1} for t in rows]  # fmt: skip
    if query.get("symbol"):
        return 200, body[0] if body else {}
    return 200, body
