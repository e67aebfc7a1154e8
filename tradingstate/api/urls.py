"""``/api/v1/`` (paths are a contract: DESIGN §6)."""

from __future__ import annotations

from django.urls import path

from reconciliation.api import views as reconciliations
from tradingstate.api.views import accounts, books, orders
from tradingstate.web import health

app_name = "api"

ACCOUNT = "accounts/<str:account>/"

urlpatterns = [
    path("health/", health.HealthApi.as_view(), name="health"),
    path("accounts/", accounts.AccountListApi.as_view(), name="account-list"),
    path(f"{ACCOUNT}orders/", orders.OrderListRegisterApi.as_view(), name="order-list"),
    path(
        f"{ACCOUNT}orders/bulk-transition/",
        orders.OrderBulkTransitionApi.as_view(),
        name="order-bulk-transition",
    ),
    path(
        f"{ACCOUNT}orders/<str:client_order_id>/",
        orders.OrderDetailApi.as_view(),
        name="order-detail",
    ),
    path(
        f"{ACCOUNT}orders/<str:client_order_id>/transition/",
        orders.OrderTransitionApi.as_view(),
        name="order-transition",
    ),
    path(f"{ACCOUNT}fills/", books.FillRecordApi.as_view(), name="fill-record"),
    path(f"{ACCOUNT}positions/", books.PositionListApi.as_view(), name="position-list"),
    # <path:...> because Django decodes BTC%2FUSDT to BTC/USDT before routing
    path(f"{ACCOUNT}positions/<path:symbol>/", books.PositionSetApi.as_view(), name="position"),
    path(f"{ACCOUNT}balances/", books.BalanceListApi.as_view(), name="balance-list"),
    path(f"{ACCOUNT}balances/<str:currency>/", books.BalanceSetApi.as_view(), name="balance"),
    path(
        f"{ACCOUNT}reconciliations/",
        reconciliations.ReconciliationListTriggerApi.as_view(),
        name="reconciliation-list",
    ),
    path(
        f"{ACCOUNT}discrepancies/",
        reconciliations.DiscrepancyListApi.as_view(),
        name="discrepancy-list",
    ),
]
