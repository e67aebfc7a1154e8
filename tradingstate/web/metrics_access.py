"""Who may read ``/metrics`` (issue 13, D10): it names every account and its halt state.

Allowed: a bearer token equal to the secret in the environment variable named by
``[metrics] token_env`` (what Prometheus' ``authorization`` / ``bearer_token_file`` send), or
a client address inside ``[metrics] allow_networks`` (default: loopback only). Everyone else
gets 403 (401 with a wrong or missing token when a token is configured).
"""

from __future__ import annotations

import hmac
import os
from functools import wraps

from django.conf import settings

from tradingstate.web.errors import error_response
from tradingstate.web.network import address_in, client_address

METRICS_DENIED = (
    "/metrics needs a scrape token (Authorization: Bearer ...) or a client address in "
    "[metrics] allow_networks."
)


def _token() -> str:
    name = settings.TRADINGSTATE.metrics.token_env
    return os.environ.get(name, "") if name else ""


def metrics_allowed(request) -> bool:
    config = settings.TRADINGSTATE.metrics
    secret = _token()
    header = request.META.get("HTTP_AUTHORIZATION", "")
    offered = header[len("Bearer ") :].strip() if header.startswith("Bearer ") else ""
    if secret and offered and hmac.compare_digest(offered.encode(), secret.encode()):
        return True
    return address_in(client_address(request), config.allow_networks)


def metrics_guard(view):
    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not metrics_allowed(request):
            status = 401 if _token() else 403
            code = "not_authenticated" if status == 401 else "permission_denied"
            response = error_response(code, METRICS_DENIED, status)
            if status == 401:
                response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return view(request, *args, **kwargs)

    return guarded
