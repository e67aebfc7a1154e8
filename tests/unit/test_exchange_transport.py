"""LeanSession sends what requests.Session sends, and answers and fails as it does: the
same request on the wire (method, path and query, headers, body), the same redirects,
cookies, errors and Response, against a loopback HTTP server."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from tradingstate.exchanges.transport import LeanSession


class _Echo(BaseHTTPRequestHandler):
    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "/echo?from=redirect")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status = 418 if self.path.startswith("/teapot") else 200
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": sorted((k.lower(), v) for k, v in self.headers.items()),
                "body": body,
            }
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "venue=1; Path=/")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_DELETE = do_PUT = _answer

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _both(call):
    """The call on a plain requests.Session and on a LeanSession, ccxt's way (trust_env off,
    cookies cleared before each call)."""
    out = []
    for session in (requests.Session(), LeanSession()):
        session.trust_env = False
        session.cookies.clear()
        out.append(call(session))
    return out


CALLS = [
    ("GET", "/echo?symbol=BTCUSDT&timestamp=1&signature=ab", None, {"X-MBX-APIKEY": "k"}),
    ("GET", '/echo?symbols=["BTCUSDT","ETHUSDT"]&x=a b|c', None, None),
    ("POST", "/echo", b'{"instId":"BTC-USDT"}', {"Content-Type": "application/json"}),
    ("POST", "/echo", "a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("DELETE", "/echo?orderId=5", None, {"User-Agent": "ccxt", "Accept-Encoding": None}),
    ("get", "/redirect", None, None),
    ("GET", "/teapot", None, None),
]


@pytest.mark.parametrize(("method", "path", "body", "headers"), CALLS)
def test_the_same_request_and_response_as_requests(server, method, path, body, headers):
    def call(session):
        r = session.request(method, server + path, data=body, headers=headers, timeout=5)
        return r

    plain, lean = _both(call)
    assert isinstance(lean, requests.Response)
    assert lean.json() == plain.json()  # what reached the server, byte for byte
    assert (lean.status_code, lean.reason, lean.url) == (plain.status_code, plain.reason, plain.url)
    assert dict(lean.headers) == {**dict(plain.headers), "Date": lean.headers["Date"]}
    assert [r.status_code for r in lean.history] == [r.status_code for r in plain.history]
    assert lean.cookies.get("venue") == plain.cookies.get("venue") == "1"
    if plain.status_code >= 400:
        with pytest.raises(requests.HTTPError):
            lean.raise_for_status()


def test_errors_are_requests_own(server):
    # a refused connection and a timeout raise what requests raises (ccxt maps these)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for session in _both(lambda session: session):
        with pytest.raises(requests.ConnectionError):
            session.request("GET", f"http://127.0.0.1:{port}/", timeout=2)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(requests.Timeout):
            LeanSession().request("GET", url, timeout=0.2)
    finally:
        listener.close()


def test_anything_else_goes_the_requests_way(server, monkeypatch):
    # given: calls with what requests merges (parameters, proxies, cookies, files, ...)
    session = LeanSession()
    session.trust_env = False
    taken = []
    original = requests.Session.request

    def spy(self, *args, **kwargs):
        taken.append(kwargs)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    # when / then: each goes through requests.Session.request, with the same result
    r = session.request("GET", server + "/echo", params={"a": "1"}, timeout=5)
    assert r.json()["path"] == "/echo?a=1"
    r = session.request("POST", server + "/echo", json={"a": 1}, timeout=5)
    assert r.json()["body"] == '{"a": 1}'
    session.cookies.clear()
    session.cookies.set("kept", "1")
    r = session.request("GET", server + "/echo", timeout=5)
    assert ("cookie", "kept=1") in [tuple(h) for h in r.json()["headers"]]
    assert len(taken) == 3
    # and a plain call does not
    session.cookies.clear()
    session.request("GET", server + "/echo", timeout=5)
    assert len(taken) == 3
