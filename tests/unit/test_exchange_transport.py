"""LeanSession sends what requests.Session sends, and answers and fails as it does: the
same request on the wire (method, path and query, headers, body), the same redirects,
cookies, errors and Response, against a loopback HTTP server."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

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
        with pytest.raises(requests.ConnectionError) as caught:
            session.request("GET", f"http://127.0.0.1:{port}/", timeout=2)
        assert caught.value.request.url == f"http://127.0.0.1:{port}/"  # as requests tells it
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(requests.Timeout):
            LeanSession().request("GET", url, timeout=0.2)
    finally:
        listener.close()


def test_anything_else_goes_the_requests_way(server, monkeypatch, lean):
    # given: calls with what requests merges (parameters, proxies, cookies, files, ...)
    session = lean
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


# --- the direct path: the wire, codings, connections and failures ---------------------------


class _Scripted:
    """A loopback server whose every connection is handled by ``script(conn, n)``
    (``n``: how many connections came before); it counts connections and requests."""

    def __init__(self, script):
        self.script = script
        self.connections = 0
        self.requests = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            n, self.connections = self.connections, self.connections + 1
            threading.Thread(target=self._handle, args=(conn, n), daemon=True).start()

    def _handle(self, conn, n):
        with conn:
            self.script(self, conn, n)

    def read_request(self, conn) -> bytes | None:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            rest += conn.recv(65536)
        self.requests.append(head + b"\r\n\r\n" + rest)
        return head

    def close(self):
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept
        self.listener.close()


@pytest.fixture
def scripted():
    servers = []

    def make(script):
        servers.append(_Scripted(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _answer(status=b"200 OK", headers=(), body=b"{}"):
    head = [b"HTTP/1.1 " + status, *headers]
    if not any(h.lower().startswith((b"content-length", b"transfer-encoding")) for h in headers):
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def _keep_answering(*answers):
    """Answer each request on a connection with the next of ``answers`` (the last again)."""

    def script(server, conn, n):
        i = 0
        while server.read_request(conn) is not None:
            answer = answers[min(i, len(answers) - 1)]
            conn.sendall(answer)
            if b"Connection: close" in answer:
                return
            i += 1

    return script


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data)


def _zlib(data: bytes, raw: bool = False) -> bytes:
    c = zlib.compressobj(wbits=-15 if raw else 15)
    return c.compress(data) + c.flush()


PAYLOAD = json.dumps({"result": {"list": [{"orderId": str(i)} for i in range(50)]}}).encode()

ANSWERS = {
    "gzip": _answer(headers=[b"Content-Encoding: gzip"], body=_gzip(PAYLOAD)),
    "two gzip members": _answer(
        headers=[b"Content-Encoding: gzip"], body=_gzip(PAYLOAD[:40]) + _gzip(PAYLOAD[40:])
    ),
    "deflate": _answer(headers=[b"Content-Encoding: deflate"], body=_zlib(PAYLOAD)),
    "raw deflate": _answer(headers=[b"Content-Encoding: deflate"], body=_zlib(PAYLOAD, True)),
    "gzip over deflate": _answer(
        headers=[b"Content-Encoding: deflate, gzip"], body=_gzip(_zlib(PAYLOAD))
    ),
    "a coding nobody asked for": _answer(headers=[b"Content-Encoding: br"], body=b"\x0b\x02"),
    "chunked": _answer(
        headers=[b"Transfer-Encoding: chunked"],
        body=b"%x\r\n%b\r\n%x\r\n%b\r\n0\r\n\r\n"
        % (10, PAYLOAD[:10], len(PAYLOAD) - 10, PAYLOAD[10:]),
    ),
    "repeated headers": _answer(
        headers=[b"X-Limit: 1", b"X-Limit: 2", b"Set-Cookie: a=1; Path=/", b"Set-Cookie: b=2"]
    ),
    "charset": _answer(headers=[b"Content-Type: text/plain; charset=latin-1"], body=b"caf\xe9"),
    "no length, closes": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + PAYLOAD,
    "204": b"HTTP/1.1 204 No Content\r\n\r\n",
    "503 with retry-after": _answer(b"503 Service Unavailable", [b"Retry-After: 2"], b"busy"),
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_answers_read_as_requests_reads_them(scripted, name):
    server = scripted(_keep_answering(ANSWERS[name]))
    plain, lean = _both(lambda s: s.request("GET", server.url + "/x?a=1", timeout=5))
    assert (lean.status_code, lean.reason, lean.url) == (plain.status_code, plain.reason, plain.url)
    assert lean.content == plain.content
    assert lean.text == plain.text and lean.encoding == plain.encoding
    assert dict(lean.headers) == dict(plain.headers)
    assert dict(lean.cookies) == dict(plain.cookies)
    assert lean.ok == plain.ok
    # the same bytes reached the server
    assert server.requests[0] == server.requests[1]


@pytest.fixture
def adapter_sends(monkeypatch):
    """The requests that went through requests' adapter (and so urllib3)."""
    sent = []
    original = requests.adapters.HTTPAdapter.send
    monkeypatch.setattr(
        requests.adapters.HTTPAdapter,
        "send",
        lambda self, *a, **k: sent.append(a) or original(self, *a, **k),
    )
    return sent


@pytest.fixture
def lean():
    session = LeanSession()
    session.trust_env = False  # as ccxt sets it
    yield session
    session.close()


def test_a_plain_call_goes_around_urllib3_and_reuses_its_connection(scripted, adapter_sends, lean):
    server = scripted(_keep_answering(_answer(body=PAYLOAD)))
    for i in range(20):
        r = lean.request("POST", server.url + f"/order?i={i}", data=b'{"a":1}', timeout=5)
        assert r.json() == json.loads(PAYLOAD)
    assert adapter_sends == []  # nothing through requests' adapter (urllib3)
    assert server.connections == 1  # one connection, kept alive
    assert len(server.requests) == 20


def test_an_undecodable_coding_offered_goes_the_requests_way(scripted, adapter_sends, lean):
    server = scripted(_keep_answering(_answer(body=PAYLOAD)))
    r = lean.request("GET", server.url + "/x", headers={"Accept-Encoding": "br"}, timeout=5)
    assert r.content == PAYLOAD and len(adapter_sends) == 1
    lean.mount("http://", requests.adapters.HTTPAdapter(max_retries=3))
    lean.request("GET", server.url + "/x", timeout=5)
    assert len(adapter_sends) == 2  # a mounted adapter is used, as requests would use it


def test_a_connection_the_venue_closed_while_idle_is_not_used(scripted, lean):
    # given: a server that answers one request per connection, then closes it without saying
    def one_per_connection(server, conn, n):
        if server.read_request(conn) is not None:
            conn.sendall(_answer(body=b'{"n": %d}' % n))

    server = scripted(one_per_connection)
    # when: calls follow each other after the server closed the connection
    for i in range(3):
        assert lean.request("POST", server.url + "/o", data=b"x", timeout=5).json() == {"n": i}
        time.sleep(0.05)  # the close reaches us
    # then: each went out once, on a new connection, and none failed
    assert server.connections == 3 and len(server.requests) == 3


def _failing(script):
    """Run one call on each session against a server running ``script``; the exceptions."""

    def call(session):
        with pytest.raises(requests.RequestException) as caught:
            session.request("POST", server.url + "/order", data=b'{"a":1}', timeout=0.5)
        return caught.value

    server = _Scripted(script)
    try:
        return _both(call), server
    finally:
        server.close()


def _close_after_request(server, conn, n):
    server.read_request(conn)


def _close_mid_body(server, conn, n):
    server.read_request(conn)
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"partial"')


def _never_answer(server, conn, n):
    server.read_request(conn)
    time.sleep(2)


def _stall_mid_body(server, conn, n):
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
    time.sleep(2)


def _garbage(server, conn, n):
    server.read_request(conn)
    conn.sendall(b"SMTP ready\r\n\r\n")


def _bad_gzip(server, conn, n):
    server.read_request(conn)
    conn.sendall(_answer(headers=[b"Content-Encoding: gzip"], body=b"not gzip at all"))


@pytest.mark.parametrize(
    ("script", "kind", "says"),
    [
        (_close_after_request, requests.ConnectionError, "Connection aborted."),
        (_close_mid_body, requests.exceptions.ChunkedEncodingError, "Connection broken:"),
        (_never_answer, requests.exceptions.ReadTimeout, "Read timed out"),
        (_stall_mid_body, requests.ConnectionError, "Read timed out"),
        (_garbage, requests.ConnectionError, "Connection aborted."),
        (_bad_gzip, requests.exceptions.ContentDecodingError, "failed to decode"),
    ],
)
def test_failures_raise_what_requests_raises_with_the_words_ccxt_reads(script, kind, says):
    (plain, lean), server = _failing(script)
    assert type(plain) is kind  # the control: requests itself
    assert isinstance(lean, kind) and says in str(lean) and says in str(plain)
    assert getattr(lean.request, "url", None) == getattr(plain.request, "url", None)
    assert len(server.requests) == 2  # sent once each: a failed call is never sent again


def test_ccxt_maps_the_failures_as_it_maps_requests(scripted):
    # given: a ccxt client on a LeanSession, as the product builds them
    import ccxt

    from tradingstate.exchanges.ccxt import client_clone

    def client(url):
        template = ccxt.binance({"enableRateLimit": False, "timeout": 500})
        c = client_clone(template, {"apiKey": "k", "secret": "s"}, template.logger)
        c.urls["api"] = {k: url for k in template.urls["api"]}
        return c

    cases = [
        (_never_answer, ccxt.RequestTimeout),
        (_stall_mid_body, ccxt.RequestTimeout),
        (_close_after_request, ccxt.NetworkError),
        (_close_mid_body, ccxt.NetworkError),
    ]
    for script, kind in cases:
        server = scripted(script)
        with pytest.raises(kind):
            client(server.url).fetch_time()
    # and a refused connection
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ccxt.NetworkError):
        client(f"http://127.0.0.1:{port}").fetch_time()


def test_many_threads_share_a_session(scripted, lean):
    server = scripted(_keep_answering(_answer(body=PAYLOAD)))
    errors, done = [], []

    def work(t):
        try:
            for i in range(40):
                r = lean.request("GET", server.url + f"/t{t}?i={i}", timeout=5)
                assert r.json() == json.loads(PAYLOAD)
                done.append(1)
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(done) == 480
    assert server.connections <= 12  # reused, never more than one per thread at a time
    assert all(len(v) <= 10 for v in lean._connections().idle.values())  # as requests


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS echo server with a self-signed certificate for 127.0.0.1; yields its URL and
    the certificate's path."""
    import datetime
    import ipaddress
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    d = tmp_path_factory.mktemp("tls")
    (d / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(d / "cert.pem", d / "key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}", str(d / "cert.pem")
    httpd.shutdown()


def test_tls_verifies_as_requests_does(tls_server):
    url, cert = tls_server
    # trusted through the bundle given
    plain, lean = _both(lambda s: s.request("GET", url + "/echo?a=1", verify=cert, timeout=5))
    assert lean.json() == plain.json() and lean.status_code == 200
    # an unknown issuer is refused
    for session in _both(lambda s: s):
        with pytest.raises(requests.exceptions.SSLError):
            session.request("GET", url + "/echo", timeout=5)
    # not verified when told so
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain, lean = _both(lambda s: s.request("GET", url + "/echo", verify=False, timeout=5))
    assert lean.json() == plain.json()


URLS = [
    "http://127.0.0.1:8080/fapi/v1/openOrders?timestamp=1&signature=ab12",
    "https://api.binance.com/api/v3/order?symbol=BTCUSDT&side=BUY&quantity=0.1",
    "https://api.bybit.com/v5/order/realtime?category=linear&settleCoin=USDT",
    "https://www.okx.com/api/v5/trade/orders-pending?instType=SWAP&after=123",
    "https://API.Binance.com/x",
    "HTTPS://api.binance.com/x",
    "https://api.binance.com",
    "https://api.binance.com:443/x",
    "https://api.binance.com:8443/x?a=1",
    "https://api.binance.com/a/./b/../c?x=1",
    "https://api.binance.com/x?path=/./y",
    'https://api.binance.com/x?symbols=["BTCUSDT","ETHUSDT"]',
    "https://api.binance.com/x?a=[1]&b=(2)&c=*!$'+,;:@~",
    "https://api.binance.com/x?a=b%20c&d=%41&e=%zz",
    "https://api.binance.com/x?q=a b|c^d`e{f}",
    "https://api.binance.com/x?e=\u00e9&f=\u20ac",
    "https://api.b\u00efnance.com/x",
    "https://api.binance.com/x#fragment",
    "https://api.binance.com/x?#",
    "http://[::1]:8080/x",
    "http://localhost/x",
    "https://user:pw@api.binance.com/x",
    "ftp://api.binance.com/x",
    "https:///x",
    "https://api.binance.com:99999/x",
    "api.binance.com/x",
]


@pytest.mark.parametrize("url", URLS)
def test_the_url_goes_out_as_requests_prepares_it(url):
    from tradingstate.exchanges.transport import _target

    target = _target(url)
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except requests.RequestException:
        assert target is None  # requests refuses it: the call goes its way, to its error
        return
    if target is None:  # requests' own way: credentials, another scheme
        assert "@" in url or not url.lower().startswith(("http://", "https://"))
        return
    assert target.url == prepared.url
    assert target.request_target == prepared.path_url
    parts = requests.utils.urlparse(prepared.url)
    assert (target.scheme, target.host) == (parts.scheme, parts.hostname)
    assert target.port == (parts.port or {"http": 80, "https": 443}[parts.scheme])


@settings(max_examples=1000, deadline=None)
@given(
    st.sampled_from(["http://127.0.0.1:8080", "https://api.bybit.com", "https://API.okx.com:443"]),
    st.lists(
        st.characters(min_codepoint=32, max_codepoint=126)  # URL punctuation above all
        | st.sampled_from(["/.", "/..", "%41", "%2F", "%", "\u00e9", "\u20ac", "\t"]),
        max_size=30,
    ).map("".join),
)
def test_any_path_and_query_go_out_as_requests_prepares_them(origin, rest):
    # the class of bug: the fast path sending a URL requests would have changed
    from tradingstate.exchanges.transport import _target

    url = f"{origin}/{rest}"
    prepared = requests.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except requests.RequestException:
        assert _target(url) is None
        return
    target = _target(url)
    assert target is not None
    assert (target.url, target.request_target) == (prepared.url, prepared.path_url)


def test_credentials_in_the_url_go_the_requests_way(server):
    # requests sends them as basic auth: the same Authorization header reaches the server
    url = server.replace("http://", "http://u:p@") + "/echo"
    plain, lean = _both(lambda s: s.request("GET", url, timeout=5))
    assert lean.json() == plain.json()
    assert ("authorization", "Basic dTpw") in [tuple(h) for h in lean.json()["headers"]]


def test_a_redirect_not_followed_is_answered_as_requests_answers_it(server):
    plain, lean = _both(
        lambda s: s.request("GET", server + "/redirect", allow_redirects=False, timeout=5)
    )
    assert (lean.status_code, lean.is_redirect, lean.history) == (302, True, [])
    assert lean.next.url == plain.next.url == server + "/echo?from=redirect"
