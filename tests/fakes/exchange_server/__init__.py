"""A loopback fake exchange speaking enough Binance, Bybit v5 and OKX v5 for the adapters.

The real ccxt client talks to it over HTTP (``ccxt_options`` point ``urls.api`` here); nothing
in ccxt is patched. One server serves the three venues: Binance paths (``/api/v3``, ``/fapi``,
``/dapi``, ``/sapi``), Bybit paths (``/v5``) and OKX paths (``/api/v5``) do not overlap.

State is scriptable (``server.binance`` / ``server.bybit`` / ``server.okx`` hold markets,
orders, positions, balances, trades and tickers in a neutral form rendered into each venue's
wire shape by ``binance.py``, ``bybit.py``, ``okx.py``), faults are injected per path
(``server.fail(path, kind)``) and raw bodies can be served as they are
(``server.respond(path, body)``) to replay recorded exchange responses. Each venue's trade
list enforces the venue's window limits and parameter rules and answers as the venue does.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.fakes.exchange_server.binance import _binance_route
from tests.fakes.exchange_server.bybit import _bybit_error, _bybit_route
from tests.fakes.exchange_server.okx import _okx_error, _okx_route
from tests.fakes.exchange_server.state import (
    NOW_MS,
    FakeBalance,
    FakeMarket,
    FakeOrder,
    FakePosition,
    FakeTicker,
    FakeTrade,
    VenueState,
    default_markets,
    okx_markets,
)

__all__ = [
    "NOW_MS",
    "FakeBalance",
    "FakeExchangeServer",
    "FakeMarket",
    "FakeOrder",
    "FakePosition",
    "FakeTicker",
    "FakeTrade",
    "VenueState",
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
    "not_found",  # Binance -2013 / Bybit 110001 / OKX 51603
    "truncated",  # 200 whose JSON body is cut off mid-way (a dropped connection)
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
    times: int | None = None  # served this many times, then the state answers again


# --- The server --------------------------------------------------------------------------
class FakeExchangeServer:
    def __init__(self) -> None:
        self.binance = VenueState(markets=default_markets())
        self.bybit = VenueState(markets=default_markets())
        self.okx = VenueState(markets=okx_markets())
        self.passphrase = "test-passphrase"
        self.faults: dict[str, Fault] = {}
        self.canned: dict[str, list[Canned]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.api_key = "test-api-key"
        # also accept any key starting with this (many accounts, each its own key: bench)
        self.api_key_prefix: str | None = None
        self.latency = 0.0  # seconds slept before each answer (a distant venue: bench)
        self.keep_requests = True
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

    def respond(self, path: str, body: object, *, status=200, query=None, headers=None, times=None):
        """Serve ``body`` (JSON-encoded unless str) for ``path`` instead of the state."""
        canned = Canned(body, status, headers or {}, query, times)
        self.canned.setdefault(path, []).append(canned)

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
        if exchange == "okx":
            return {"api": {"rest": base}}
        raise ValueError(f"the fake server does not speak {exchange}")

    # request handling (called from the handler thread)
    def key_ok(self, key: str | None) -> bool:
        if key == self.api_key:
            return True
        return bool(key and self.api_key_prefix and key.startswith(self.api_key_prefix))

    def handle(self, method: str, path: str, query: dict, headers) -> tuple[int, dict, str]:
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self.keep_requests:
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
        venue = _venue(path)
        if fault is not None and fault.kind not in ("endless_cursor", "truncated"):
            return self._fault(fault, venue, path)
        if canned is not None:
            body = canned.body if isinstance(canned.body, str) else json.dumps(canned.body)
            return canned.status, {"Content-Type": "application/json", **canned.headers}, body
        with self._lock:
            if venue == "bybit":
                status, body = _bybit_route(self, method, path, query, headers, fault)
            elif venue == "okx":
                status, body = _okx_route(self, method, path, query, headers)
            else:
                status, body = _binance_route(self, method, path, query, headers)
        text = json.dumps(body)
        if fault is not None and fault.kind == "truncated":
            text = text[: max(1, len(text) // 2)]
        return status, {"Content-Type": "application/json"}, text

    def _take_canned(self, path: str, query: dict) -> Canned | None:
        items = self.canned.get(path, [])
        for item in items:
            if item.query is None or all(query.get(k) == v for k, v in item.query.items()):
                if item.times is not None:
                    item.times -= 1
                    if item.times <= 0:
                        items.remove(item)
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
            if venue == "okx":
                return 429, headers, _okx_error("50011", "Too Many Requests")
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
            if venue == "okx":
                return 401, json_ct, _okx_error("50102", "Timestamp request expired")
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
            if venue == "okx":
                return 401, json_ct, _okx_error("50111", "Invalid OK-ACCESS-KEY")
            if venue == "bybit":
                return 401, json_ct, _bybit_error(10003, "API key is invalid.")
            body = {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}
            return 401, json_ct, json.dumps(body)
        if kind == "not_found":
            if venue == "okx":
                return 200, json_ct, _okx_error("51603", "Order does not exist")
            if venue == "bybit":
                return 200, json_ct, _bybit_error(110001, "Order does not exist.")
            return 400, json_ct, json.dumps({"code": -2013, "msg": "Order does not exist."})
        if kind == "missing_keys":
            if venue == "okx":
                return 200, json_ct, json.dumps({"code": "0", "msg": ""})
            if venue == "bybit":
                body = {"retCode": 0, "retMsg": "OK", "result": {}, "time": NOW_MS}
                return 200, json_ct, json.dumps(body)
            return 200, json_ct, json.dumps({"code": 200, "msg": "ok"})
        raise AssertionError(kind)


def _venue(path: str) -> str:
    if path.startswith("/api/v5/"):
        return "okx"
    return "bybit" if path.startswith("/v5/") else "binance"


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
