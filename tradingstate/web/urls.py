from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from reconciliation.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/killswitch/", include("killswitch.api.urls")),
    path("api/v1/", include("tradingstate.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("metrics", metrics_view, name="metrics"),
]

# JSON errors for /api/ paths that never reach a DRF view; HTML elsewhere.
handler400 = "tradingstate.web.errors.handler400"
handler403 = "tradingstate.web.errors.handler403"
handler404 = "tradingstate.web.errors.handler404"
handler500 = "tradingstate.web.errors.handler500"
