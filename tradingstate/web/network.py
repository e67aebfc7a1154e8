"""Where a request comes from, and whether it came over TLS (issue 13, D10/D13).

``[web] tls`` decides which forwarded headers are believed: only in "proxy" mode, and only
from ``trusted_proxies``. ``TrustedProxyMiddleware`` (first in MIDDLEWARE) removes
``X-Forwarded-Proto`` / ``X-Forwarded-For`` from every other request before Django's
``SecurityMiddleware`` reads them, so a client cannot claim HTTPS or another address.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings

FORWARDED = ("HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST")


@lru_cache(maxsize=32)
def _networks(items: tuple[str, ...]):
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def address_in(address: str, networks: list[str] | tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip().strip("[]"))
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(networks)))


def tls_mode() -> str:
    return settings.TRADINGSTATE.web.tls


def from_trusted_proxy(request) -> bool:
    web = settings.TRADINGSTATE.web
    return web.tls == "proxy" and address_in(
        request.META.get("REMOTE_ADDR", ""), web.trusted_proxies
    )


def client_address(request) -> str:
    """The client's address: the peer, or behind a trusted proxy the last address the
    proxies did not add themselves (X-Forwarded-For, read right to left)."""
    peer = request.META.get("REMOTE_ADDR", "")
    if not from_trusted_proxy(request):
        return peer
    proxies = settings.TRADINGSTATE.web.trusted_proxies
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not address_in(hop, proxies):
            return hop
    return peer


class TrustedProxyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not from_trusted_proxy(request):
            for key in FORWARDED:
                request.META.pop(key, None)
        return self.get_response(request)
