"""The HTTP session each ccxt client sends its calls through.

ccxt calls ``session.request(method, url, data=…, headers=…, timeout=…, proxies=…,
verify=…, files=…)`` once per venue call. ``requests`` spends most of a call's Python on
machinery such a call never uses: the ``Request`` object and the session merge (cookies,
hooks, parameters, auth, environment settings), the adapter, urllib3's pool, retry and
timeout objects and its response wrapper. In the 1,000-account bench that was a third of
the workers' Python, and it is what keeps a host from reconciling more accounts.

``LeanSession`` sends a plain call (no proxies, files, cookies, auth, hooks, parameters,
client certificate or streaming, nothing from the environment, the stock adapters) itself,
over ``http.client`` connections it keeps per origin, and answers with a
``requests.Response`` built as requests builds it. What it sends is what requests sends:
the same request line (the URL prepared and quoted by requests' rules), the same headers
(the session's under the call's, ``Content-Length`` by requests' rule, urllib3's
``User-Agent`` where none is given) and body. What it answers is what requests answers: the
status, reason, headers (repeated ones joined), the body decoded from ``gzip`` or
``deflate``, the encoding, cookies in the response and the session, redirects followed by
requests itself, and requests' own exceptions, with the texts ccxt reads to tell a
timeout or a dropped connection from an exchange error. A connection the venue closed
while it sat idle is noticed before it is used (as urllib3 does); a call is never sent
twice. Anything else goes the ``requests`` way unchanged.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import ssl
import threading
import time
import zlib
from datetime import timedelta
from functools import partial
from types import SimpleNamespace

import requests
import urllib3
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests.exceptions import (
    ChunkedEncodingError,
    ConnectTimeout,
    ContentDecodingError,
    ReadTimeout,
    SSLError,
)
from requests.structures import CaseInsensitiveDict
from requests.utils import (
    DEFAULT_CA_BUNDLE_PATH,
    check_header_validity,
    get_encoding_from_headers,
)
from urllib3.util import create_urllib3_context

# a URL requests would send as it is: a lower-case http(s) origin, a path, and only characters
# that urllib3's parsing and requests' quoting leave alone (no "%": requests unquotes
# unreserved escapes; no brackets: urllib3 escapes them; no dot segments or empty query:
# it removes them)
_AS_IS = re.compile(
    r"(?P<scheme>https?)://(?P<host>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<target>/[A-Za-z0-9\-._~!$&'()*+,/:;=?@]*)\Z"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_DECODABLE = frozenset({"gzip", "x-gzip", "deflate", "identity"})
_URLLIB3_AGENT = f"python-urllib3/{urllib3.__version__}"  # urllib3's own, where none is given
MAX_IDLE = 10  # connections kept per origin: requests' default pool size


class LeanSession(requests.Session):
    def __init__(self):
        super().__init__()
        self._stock_adapters = tuple(self.adapters.items())
        self._pool = _Pool()

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        cookies=None,
        files=None,
        auth=None,
        timeout=None,
        allow_redirects=True,
        proxies=None,
        hooks=None,
        stream=None,
        verify=None,
        cert=None,
        json=None,
    ):
        target = _target(url) if isinstance(url, str) else None
        if target is None or not self._plain(
            params, data, cookies, files, auth, proxies, hooks, stream, cert, json
        ):
            return super().request(
                method, url, params=params, data=data, headers=headers, cookies=cookies,
                files=files, auth=auth, timeout=timeout, allow_redirects=allow_redirects,
                proxies=proxies, hooks=hooks, stream=stream, verify=verify, cert=cert, json=json,
            )  # fmt: skip
        method = method.upper()
        merged = CaseInsensitiveDict(self.headers)  # the session's, the call's over them
        for name, value in (headers or {}).items():
            if value is None:
                merged.pop(name, None)  # as requests' merge: None removes a session header
            else:
                merged[name] = value
        for header in merged.items():
            check_header_validity(header)  # requests' InvalidHeader for a bad name or value
        body = data or None  # requests sends no body for b"" or ""
        if isinstance(body, str):
            body = body.encode("utf-8")  # as urllib3 2 sends a str body
        if body is not None:
            merged["Content-Length"] = str(len(body))
        elif method not in ("GET", "HEAD") and merged.get("Content-Length") is None:
            merged["Content-Length"] = "0"
        verify = self.verify if verify is None else verify
        prepared = requests.PreparedRequest()  # response.request, redirects and cookies
        prepared.method, prepared.url, prepared.headers = method, target.url, merged
        prepared.body = body
        prepared._cookies = RequestsCookieJar()  # none: ccxt clears them every call
        if not _decodable(merged.get("Accept-Encoding")):
            return self.send(
                prepared, timeout=timeout, allow_redirects=allow_redirects, stream=False,
                verify=verify, cert=None, proxies={},
            )  # fmt: skip
        start = time.perf_counter()
        response = self._exchange(prepared, target, timeout, verify)
        response.elapsed = timedelta(seconds=time.perf_counter() - start)
        if "set-cookie" in response.headers:
            extract_cookies_to_jar(self.cookies, prepared, response.raw)
        if response.is_redirect:  # requests' own steps, with the arguments this call had
            redirects = partial(
                self.resolve_redirects, response, prepared, stream=False, timeout=timeout,
                verify=verify, cert=None, proxies={},
            )  # fmt: skip
            if allow_redirects:
                history = [response, *redirects()]
                response = history.pop()
                response.history = history
            else:  # not followed: where it leads, as requests keeps it
                response._next = next(redirects(yield_requests=True), None)
        return response

    def close(self):
        self._connections().close()
        super().close()

    def _plain(self, params, data, cookies, files, auth, proxies, hooks, stream, cert, json):
        """Nothing in the call or the session that ``requests``' merging would act on (the
        URL is a str ``_target`` has read)."""
        return not (
            params or cookies or files or auth or proxies or hooks or stream or cert
            or json is not None
            or not (data is None or isinstance(data, bytes | str))
            or self.trust_env or self.auth or self.proxies or self.params or self.cert
            or self.stream or len(self.cookies) or any(self.hooks.values())
            or tuple(self.adapters.items()) != getattr(self, "_stock_adapters", ())
        )  # fmt: skip

    # --- the exchange on the wire -----------------------------------------------------------

    def _exchange(self, prepared, target, timeout, verify) -> requests.Response:
        connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout,) * 2
        key = (target.scheme, target.host, target.port, _verify_key(verify))
        pool = self._connections()
        conn = pool.take(key)
        where = f"HTTPConnectionPool(host='{target.host}', port={target.port})"
        if conn is None:
            conn = self._connect(target, verify, connect_timeout, where, prepared)
        try:
            conn.sock.settimeout(read_timeout)
            try:
                agent = "user-agent" in prepared.headers
                conn.putrequest(
                    prepared.method, target.request_target,
                    skip_host="host" in prepared.headers,
                    skip_accept_encoding="accept-encoding" in prepared.headers,
                )  # fmt: skip
                if not agent:
                    conn.putheader("User-Agent", _URLLIB3_AGENT)
                for name, value in prepared.headers.items():
                    conn.putheader(name, value)
                conn.endheaders(prepared.body)
                answer = conn.getresponse()
            except ssl.SSLError as e:
                raise SSLError(f"{where}: {e!r}", request=prepared) from e
            except TimeoutError as e:
                raise ReadTimeout(
                    f"{where}: Read timed out. (read timeout={read_timeout})", request=prepared
                ) from e
            except (OSError, http.client.HTTPException) as e:
                raise requests.ConnectionError(
                    f"('Connection aborted.', {e!r})", request=prepared
                ) from e
            try:
                content = answer.read()
            except TimeoutError as e:
                # (requests raises what the body's read failed with without the request)
                raise requests.ConnectionError(f"{where}: Read timed out.") from e
            except (OSError, http.client.HTTPException) as e:  # IncompleteRead among them
                raise ChunkedEncodingError(f"('Connection broken: {e!r}', {e!r})") from e
        except BaseException:
            conn.close()
            raise
        if answer.will_close:
            conn.close()
        else:
            pool.give_back(key, conn)
        return _response(prepared, answer, content)

    def _connect(self, target, verify, timeout, where, prepared) -> http.client.HTTPConnection:
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout, context=_tls_context(verify)
            )
        else:
            conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        try:
            conn.connect()
        except TimeoutError as e:
            conn.close()
            raise ConnectTimeout(
                f"{where}: Connection to {target.host} timed out. (connect timeout={timeout})",
                request=prepared,
            ) from e
        except ssl.SSLError as e:
            conn.close()
            raise SSLError(f"{where}: {e!r}", request=prepared) from e
        except OSError as e:
            conn.close()
            raise requests.ConnectionError(
                f"{where}: Failed to establish a new connection: {e!r}", request=prepared
            ) from e
        return conn

    def _connections(self) -> _Pool:
        pool = getattr(self, "_pool", None)
        if pool is None or pool.pid != os.getpid():  # unpickled, or a forked worker's own
            pool = self._pool = _Pool()
        return pool


class _Pool:
    """Idle connections per origin, for one session, in one process."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.idle: dict = {}

    def take(self, key):
        while True:
            with self.lock:
                connections = self.idle.get(key)
                conn = connections.pop() if connections else None
            if conn is None:
                return None
            if not _dropped(conn):
                return conn
            conn.close()  # the venue closed it while it sat idle

    def give_back(self, key, conn) -> None:
        with self.lock:
            connections = self.idle.setdefault(key, [])
            if len(connections) < MAX_IDLE:
                connections.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, {}
        for connections in idle.values():
            for conn in connections:
                conn.close()


class _Target:
    __slots__ = ("host", "port", "request_target", "scheme", "url")

    def __init__(self, url, scheme, host, port, request_target):
        self.url, self.scheme, self.host = url, scheme, host
        self.port, self.request_target = port, request_target


def _target(url: str) -> _Target | None:
    """Where the call goes and the request line's target, as requests prepares the URL;
    None where requests would do more than send it (credentials in the URL: basic auth;
    another scheme or a URL it refuses: its own error)."""
    m = _AS_IS.match(url)
    if m is None or "/." in url or url[-1] == "?" or (m["port"] and int(m["port"]) > 65535):
        prepared = requests.PreparedRequest()
        try:
            prepared.prepare_url(url, None)  # requests' rules: IDNA, dot segments, quoting
        except requests.RequestException:
            return None
        parts = requests.utils.urlparse(prepared.url)
        if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
            return None
        try:
            port = parts.port or _DEFAULT_PORTS[parts.scheme]
        except ValueError:
            return None
        return _Target(prepared.url, parts.scheme, parts.hostname, port, prepared.path_url)
    scheme, port = m["scheme"], m["port"]
    return _Target(
        url, scheme, m["host"], int(port) if port else _DEFAULT_PORTS[scheme], m["target"]
    )


def _response(prepared, answer: http.client.HTTPResponse, content: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    headers = CaseInsensitiveDict()
    for name, value in answer.getheaders():  # repeated headers joined, as urllib3 joins them
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response.headers = headers
    response.encoding = get_encoding_from_headers(headers)
    response.reason = answer.reason
    response.url = prepared.url
    response.raw = SimpleNamespace(_original_response=answer)  # cookies read its headers
    response._content = _decoded(content, headers.get("Content-Encoding"))
    response._content_consumed = True
    if "set-cookie" in headers:
        extract_cookies_to_jar(response.cookies, prepared, response.raw)
    response.request = prepared
    return response


def _decodable(accept_encoding: str | None) -> bool:
    """Whether every coding the request offers is one this transport decodes (requests
    offers brotli and zstd too where their packages are installed)."""
    if accept_encoding is None:
        return True
    return all(
        part.split(";")[0].strip().lower() in _DECODABLE
        for part in accept_encoding.split(",")
        if part.strip()
    )


def _decoded(content: bytes, encoding: str | None) -> bytes:
    if not encoding or not content:
        return content
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    if not all(c in _DECODABLE for c in codings):
        return content  # as urllib3: a coding it cannot decode is passed on as sent
    try:
        for coding in reversed(codings):  # the last applied is undone first
            if coding in ("gzip", "x-gzip"):
                content = _gunzip(content)
            elif coding == "deflate":
                content = _inflate(content)
    except zlib.error as e:
        raise ContentDecodingError(
            f"('Received response with content-encoding: {encoding}, but failed to decode "
            f"it.', {e!r})"
        ) from e
    return content


def _gunzip(content: bytes) -> bytes:
    out = []
    while content:  # one member after another, as urllib3's decoder reads them
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out.append(d.decompress(content))
        out.append(d.flush())
        if not d.eof:
            raise zlib.error("incomplete gzip stream")
        content = d.unused_data
    return b"".join(out)


def _inflate(content: bytes) -> bytes:
    try:
        return zlib.decompress(content)  # zlib-wrapped, as the standard says
    except zlib.error:
        return zlib.decompress(content, -zlib.MAX_WBITS)  # raw deflate, as some servers send


def _dropped(conn) -> bool:
    """The venue closed the idle connection (or sent something unasked): readable now."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        poller = select.poll()  # not select(): a worker with many accounts has fds past 1024
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _verify_key(verify):
    return verify if isinstance(verify, str) else bool(verify)


_contexts: dict = {}


def _tls_context(verify) -> ssl.SSLContext:
    """urllib3's client context, verifying against requests' CA bundle (or the path given),
    or not at all when ``verify`` is false. One per setting, shared."""
    key = _verify_key(verify)
    context = _contexts.get(key)
    if context is None:
        if key is False:
            context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
            context.check_hostname = False
        else:
            context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
            path = DEFAULT_CA_BUNDLE_PATH if key is True else key
            if os.path.isdir(path):
                context.load_verify_locations(capath=path)
            else:
                context.load_verify_locations(cafile=path)
            context.check_hostname = True
        _contexts[key] = context
    return context
