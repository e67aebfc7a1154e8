"""The product's URLs plus two ceilings served by the same process, through the same
middleware:

- ``/bench/bare/``: a bare Django JSON view (the baseline of every ``ratio=``);
- ``/bench/bare-token/``: the same view after the one statement the kill-switch read cannot
  skip (the bot's token read, prepared, as ``tradingstate.db.auth`` runs it): what any
  endpoint that checks a token in the database per request can reach at most
  (``api endpoint=ceiling-one-statement``)."""

from django.http import JsonResponse
from django.urls import path

from tradingstate.web.urls import handler400, handler403, handler404, handler500  # noqa: F401
from tradingstate.web.urls import urlpatterns as product_urlpatterns


def bare(request):
    return JsonResponse({"active": False, "reason": "", "activated_by": "", "activated_at": None})


def bare_token(request):
    from knox.settings import CONSTANTS

    from tradingstate.db.auth import token_rows

    token = request.headers.get("Authorization", "").removeprefix("Token ")
    rows = token_rows(token[: CONSTANTS.TOKEN_KEY_LENGTH])
    return JsonResponse(
        {"active": False, "reason": "", "activated_by": "", "activated_at": None, "n": len(rows)}
    )


urlpatterns = [
    path("bench/bare/", bare),
    path("bench/bare-token/", bare_token),
    *product_urlpatterns,
]
