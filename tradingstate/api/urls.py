"""The state of record's ``/api/v1/`` routes: accounts, orders, fills, positions, balances
(paths are a contract: DESIGN §6), P&L and exposure, and the paper venue's trades.
``tradingstate.web.urls`` mounts them under the ``api`` namespace beside the other apps'
routes."""

from __future__ import annotations

from django.urls import path

from tradingstate.api.views import accounts, books, orders, paper, pnl

ACCOUNT = "accounts/<str:account>/"

urlpatterns = [
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
    path(f"{ACCOUNT}pnl/", pnl.PnlApi.as_view(), name="pnl"),
    path(f"{ACCOUNT}pnl/history/", pnl.PnlHistoryApi.as_view(), name="pnl-history"),
    path("exposure/", pnl.ExposureApi.as_view(), name="exposure"),
    path(f"{ACCOUNT}paper/trades/", paper.PaperTradeListApi.as_view(), name="paper-trade-list"),
]
