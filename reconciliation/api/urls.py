"""Reconciliation's ``/api/v1/`` routes (paths are a contract: DESIGN §6). Mounted by
``tradingstate.web.urls`` under the ``api`` namespace."""

from __future__ import annotations

from django.urls import path

from reconciliation.api import views

ACCOUNT = "accounts/<str:account>/"

urlpatterns = [
    path(
        f"{ACCOUNT}reconciliations/",
        views.ReconciliationListTriggerApi.as_view(),
        name="reconciliation-list",
    ),
    path(f"{ACCOUNT}state/", views.AccountStateApi.as_view(), name="account-state"),
    path("discrepancies/stats/", views.DiscrepancyStatsApi.as_view(), name="discrepancy-stats"),
    path(
        f"{ACCOUNT}discrepancies/",
        views.DiscrepancyListApi.as_view(),
        name="discrepancy-list",
    ),
]
