"""The URL root (``ROOT_URLCONF``): every app's routes, mounted at their contract paths.

``/api/v1/`` is one ``api`` namespace (``api:order-list``, ``api:reconciliation-list``,
``api:health``, …) assembled from each app's own ``api/urls.py``; the kill switch keeps
its ``killswitch-api`` namespace under ``/api/v1/killswitch/``.
"""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reconciliation.api import urls as reconciliation_api
from reconciliation.metrics import metrics_view
from tradingstate.api import urls as tradingstate_api
from tradingstate.web.health import HealthApi
from tradingstate.web.metrics_access import metrics_guard

api_v1 = [
    path("health/", HealthApi.as_view(), name="health"),
    *tradingstate_api.urlpatterns,
    *reconciliation_api.urlpatterns,
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/killswitch/", include("killswitch.api.urls")),
    path("api/v1/", include((api_v1, "api"))),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_guard(metrics_view), name="metrics"),
]

# JSON errors for /api/ paths that never reach a DRF view; HTML elsewhere.
handler400 = "tradingstate.web.errors.handler400"
handler403 = "tradingstate.web.errors.handler403"
handler404 = "tradingstate.web.errors.handler404"
handler500 = "tradingstate.web.errors.handler500"
