"""Shared base classes: authentication, permission, throttling, and the account in the URL."""

from __future__ import annotations

from rest_framework import generics
from rest_framework.views import APIView

from tradingstate.api.access import ACCOUNT_NOT_FOUND, account_get_visible
from tradingstate.errors import NotFound
from tradingstate.models import ExchangeAccount
from tradingstate.web.pagination import ApiCursorPagination
from tradingstate.web.permissions import IsBotOrStaff
from tradingstate.web.throttling import BotRateThrottle


class BaseApi(APIView):
    permission_classes = [IsBotOrStaff]
    throttle_classes = [BotRateThrottle]


class AccountScopedMixin:
    """Resolves ``{account}`` after authentication: an account the caller may not see is
    reported as not found (404), never forbidden."""

    account: ExchangeAccount

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        name = kwargs["account"]
        # a bot's token check already read the account it names, if granted to it
        # (tradingstate.web.auth); staff sessions, and anything else, look it up here
        read = getattr(request.user, "visible_account", None)
        if read is not None and read[0] == name and read[1] is not None:
            self.account = read[1]
        elif read is not None and read[0] == name and not request.user.is_staff:
            raise NotFound(ACCOUNT_NOT_FOUND.format(name=name[:100]), fields={})
        else:
            self.account = account_get_visible(request.user, name)


class AccountApi(AccountScopedMixin, BaseApi):
    pass


class AccountListApi(AccountScopedMixin, BaseApi, generics.ListAPIView):
    """A read-only, cursor-paginated list of one account's rows."""

    pagination_class = ApiCursorPagination
    model = None  # for schema generation
    selector = None  # staticmethod(<entity>_list): (*, account) -> the account's rows

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return self.model.objects.none()
        return self.selector(account=self.account)
