"""A loopback fake exchange speaking enough Binance and Bybit v5 for the adapters.

The real ccxt client talks to it over HTTP (``ccxt_options`` point ``urls.api`` here); nothing
in ccxt is patched. One server serves both venues: Binance paths (``/api/v3``, ``/fapi``,
``/dapi``, ``/sapi``) and Bybit paths (``/v5``) do not overlap.

State is scriptable (``server.binance`` / ``server.bybit`` hold markets, orders, positions,
balances in a neutral form rendered into each venue's wire shape), faults are injected per
path (``server.fail(path, kind)``) and raw bodies can be served as they are
(``server.respond(path, body)``) to replay recorded exchange responses.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NOW_MS = 1_700_000_000_000

# --- Neutral state -----------------------------------------------------------------------


@dataclass
class FakeMarket:
    """One instrument. ``kind`` is spot, linear (USDT/USDC-settled) or inverse."""

    base: str
    quote: str
    kind: str = "linear"
    amount_step: str = "0.001"
    price_step: str = "0.1"
    contract_size: str = "1"
    min_qty: str = "0.001"

    @property
    def settle(self) -> str:
        if self.kind == "spot":
            return ""
        return self.base if self.kind == "inverse" else self.quote

    @property
    def unified(self) -> str:
        if self.kind == "spot":
            return f"{self.base}/{self.quote}"
        return f"{self.base}/{self.quote}:{self.settle}"


@dataclass
class FakeOrder:
    order_id: str
    symbol: str  # exchange id, e.g. BTCUSDT
    side: str  # buy | sell
    amount: str
    price: str | None = "50000"
    filled: str = "0"
    status: str = "open"  # open | closed | canceled | expired | rejected
    type: str = "limit"  # market | limit | stop | stop_limit | take_profit | ... (local)
    client_order_id: str = ""
    average: str | None = None
    kind: str = "linear"
    timestamp: int = NOW_MS


@dataclass
class FakePosition:
    symbol: str  # exchange id
    qty: str  # signed, in base units
    entry_price: str = "50000"
    kind: str = "linear"


@dataclass
class FakeBalance:
    currency: str
    free: str
    used: str = "0"

    @property
    def total(self) -> str:
        from decimal import Decimal

        return str(Decimal(self.free) + Decimal(self.used))


@dataclass
class VenueState:
    markets: list[FakeMarket] = field(default_factory=list)
    orders: list[FakeOrder] = field(default_factory=list)
    positions: list[FakePosition] = field(default_factory=list)
    balances: list[FakeBalance] = field(default_factory=list)  # spot / unified wallet
    futures_balances: list[FakeBalance] = field(default_factory=list)  # binance USDⓈ-M

    def market_by_id(self, symbol_id: str, kind: str) -> FakeMarket | None:
        for market in self.markets:
            if market.kind != kind:
                continue
            if market.base + market.quote == symbol_id or _inverse_id(market) == symbol_id:
                return market
        return None


def _inverse_id(market: FakeMarket) -> str:
    return f"{market.base}{market.quote}_PERP" if market.kind == "inverse" else ""


def default_markets() -> list[FakeMarket]:
    return [
        FakeMarket("BTC", "USDT", "spot", amount_step="0.00001", price_step="0.01"),
        FakeMarket("ETH", "USDT", "spot", amount_step="0.0001", price_step="0.01"),
        FakeMarket("BTC", "USDT", "linear", amount_step="0.001", price_step="0.1"),
        FakeMarket("ETH", "USDT", "linear", amount_step="0.01", price_step="0.01"),
    ]


# --- Faults ------------------------------------------------------------------------------
FAULT_KINDS = (
    "timeout",  # sleep past the client timeout
    "429",  # 429 with Retry-After
    "418",  # Binance IP ban
    "503_html",  # maintenance page
    "timestamp",  # Binance -1021 / Bybit 10002
    "auth",  # Binance -2015 / Bybit 10003
    "html",  # 200 with an HTML body
    "empty_object",  # 200 {}
    "null",  # 200 null
    "missing_keys",  # 200 with the right envelope but without the data keys
    "endless_cursor",  # Bybit: every page carries a next cursor
    "not_found",  # Binance -2013 / Bybit 110001
)


@dataclass
class Fault:
    kind: str
    times: int | None = None  # None: every time
    after: int = 0  # let this many requests through first (fail page 2, ...)
    retry_after: str = "7"
    sleep: float = 2.0


@dataclass
class Canned:
    body: object
    status: int = 200
    headers: dict = field(default_factory=dict)
    query: dict | None = None  # only when these query params match


# --- The server --------------------------------------------------------------------------
class FakeExchangeServer:
    def __init__(self) -> None:
        self.binance = VenueState(markets=default_markets())
        self.bybit = VenueState(markets=default_markets())
        self.faults: dict[str, Fault] = {}
        self.canned: dict[str, list[Canned]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.api_key = "test-api-key"
        self.page_size = 50
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle
    def start(self) -> FakeExchangeServer:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # scripting
    def fail(self, path: str, kind: str, *, times: int | None = None, **kwargs) -> None:
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {FAULT_KINDS}")
        self.faults[path] = Fault(kind, times, **kwargs)

    def respond(self, path: str, body: object, *, status: int = 200, query=None, headers=None):
        """Serve ``body`` (JSON-encoded unless str) for ``path`` instead of the state."""
        self.canned.setdefault(path, []).append(Canned(body, status, headers or {}, query))

    def reset(self) -> None:
        self.faults.clear()
        self.canned.clear()
        self.requests.clear()

    def paths(self) -> list[str]:
        return [path for _method, path, _query in self.requests]

    # ccxt configuration pointing here
    def ccxt_urls(self, exchange: str) -> dict:
        base = self.url
        if exchange == "binance":
            names = {
                "public": "/api/v3",
                "private": "/api/v3",
                "v1": "/api/v1",
                "sapi": "/sapi/v1",
                "sapiV2": "/sapi/v2",
                "sapiV3": "/sapi/v3",
                "sapiV4": "/sapi/v4",
                "fapiPublic": "/fapi/v1",
                "fapiPublicV2": "/fapi/v2",
                "fapiPublicV3": "/fapi/v3",
                "fapiPrivate": "/fapi/v1",
                "fapiPrivateV2": "/fapi/v2",
                "fapiPrivateV3": "/fapi/v3",
                "fapiData": "/futures/data",
                "dapiPublic": "/dapi/v1",
                "dapiPrivate": "/dapi/v1",
                "dapiPrivateV2": "/dapi/v2",
                "dapiData": "/futures/data",
                "eapiPublic": "/eapi/v1",
                "eapiPrivate": "/eapi/v1",
                "papi": "/papi/v1",
                "papiV2": "/papi/v2",
            }
            return {"api": {name: base + path for name, path in names.items()}}
        if exchange == "bybit":
            return {"api": {name: base for name in ("spot", "futures", "v2", "public", "private")}}
        raise ValueError(f"the fake server does not speak {exchange}")

    # request handling (called from the handler thread)
    def handle(self, method: str, path: str, query: dict, headers) -> tuple[int, dict, str]:
        with self._lock:
            self.requests.append((method, path, query))
            fault = self.faults.get(path)
            if fault is not None and fault.after > 0:
                fault.after -= 1
                fault = None
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times < 0:
                    del self.faults[path]
                    fault = None
            canned = self._take_canned(path, query)
        venue = "bybit" if path.startswith("/v5/") else "binance"
        if fault is not None and fault.kind != "endless_cursor":
            return self._fault(fault, venue, path)
        if canned is not None:
            body = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
            return canned.status, {"Content-Type": "application/json", **canned.headers}, body
        with self._lock:
            if venue == "bybit":
                status, body = _bybit_route(self, method, path, query, headers, fault)
            else:
                status, body = _binance_route(self, method, path, query, headers)
        return status, {"Content-Type": "application/json"}, json.dumps(body)

    def _take_canned(self, path: str, query: dict) -> Canned | None:
        for item in self.canned.get(path, []):
            if item.query is None or all(query.get(k) == v for k, v in item.query.items()):
                return item
        return None

    def _fault(self, fault: Fault, venue: str, path: str) -> tuple[int, dict, str]:
        json_ct = {"Content-Type": "application/json"}
        html_ct = {"Content-Type": "text/html"}
        kind = fault.kind
        if kind == "timeout":
            time.sleep(fault.sleep)
            return 200, json_ct, "{}"
        if kind == "429":
            headers = {**json_ct, "Retry-After": fault.retry_after}
            if venue == "bybit":
                return 429, headers, json.dumps({"retCode": 10006, "retMsg": "Too many visits!"})
            return 429, headers, json.dumps({"code": -1003, "msg": "Too many requests."})
        if kind == "418":
            body = {"code": -1003, "msg": "Way too many requests; IP banned."}
            return 418, {**json_ct, "Retry-After": fault.retry_after}, json.dumps(body)
        if kind == "503_html":
            return 503, html_ct, "<html><body><h1>503 Service Unavailable</h1></body></html>"
        if kind == "html":
            return 200, html_ct, "<!DOCTYPE html><html><body>Maintenance</body></html>"
        if kind == "empty_object":
            return 200, json_ct, "{}"
        if kind == "null":
            return 200, json_ct, "null"
        if kind == "timestamp":
            if venue == "bybit":
                return (
                    200,
                    json_ct,
                    _bybit_error(10002, "invalid request, please check your timestamp"),
                )
            body = {
                "code": -1021,
                "msg": "Timestamp for this request is outside of the recvWindow.",
            }
            return 400, json_ct, json.dumps(body)
        if kind == "auth":
            if venue == "bybit":
                return 401, json_ct, _bybit_error(10003, "API key is invalid.")
            body = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
            return 401, json_ct, json.dumps(body)
        if kind == "not_found":
            if venue == "bybit":
                return 200, json_ct, _bybit_error(110001, "Order does not exist.")
            return 400, json_ct, json.dumps({"code": -2013, "msg": "Order does not exist."})
        if kind == "missing_keys":
            if venue == "bybit":
                body = {"retCode": 0, "retMsg": "OK", "result": {}, "time": NOW_MS}
                return 200, json_ct, json.dumps(body)
            return 200, json_ct, json.dumps({"code": 200, "msg": "ok"})
        raise AssertionError(kind)


class _Handler(BaseHTTPRequestHandler):
    fake: FakeExchangeServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls between header and body

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            raw = self.rfile.read(length).decode()
            if raw.startswith("{"):
                query.update({k: str(v) for k, v in json.loads(raw).items()})
            else:
                query.update({k: v[-1] for k, v in parse_qs(raw).items()})
        try:
            status, headers, body = self.fake.handle(self.command, parts.path, query, self.headers)
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            status, headers, body = 500, {"Content-Type": "text/plain"}, f"fake error: {exc!r}"
        data = body.encode()
        try:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout fault)

    do_GET = do_POST = do_DELETE = do_PUT = _serve

    def log_message(self, format, *args):  # quiet
        pass


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
    if headers.get("X-MBX-APIKEY") != fake.api_key or "signature" not in query:
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
    return _binance_error(-1121, f"fake: no route for {method} {path}", 404)


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


def _bybit_page(fake: FakeExchangeServer, rows: list, query: dict, fault, key="list"):
    """Cursor pagination as Bybit v5 does it; ``endless_cursor`` never ends."""
    limit = int(query.get("limit") or fake.page_size)
    limit = min(limit, fake.page_size)
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
    return 404, json.loads(_bybit_error(10001, f"fake: no route for {method} {path}"))
