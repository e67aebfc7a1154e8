"""The product's URLs plus ``/bench/bare/``: a bare Django JSON view served by the same
process, through the same middleware, as the ceiling for the kill-switch read."""

from django.http import JsonResponse
from django.urls import path

from tradingstate.web.urls import handler400, handler403, handler404, handler500  # noqa: F401
from tradingstate.web.urls import urlpatterns as product_urlpatterns


def bare(request):
    return JsonResponse({"active": False, "reason": "", "activated_by": "", "activated_at": None})


urlpatterns = [path("bench/bare/", bare), *product_urlpatterns]
