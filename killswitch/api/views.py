"""Kill switch API: GET the state, POST activate (bots and staff), POST deactivate (staff
with ``killswitch.deactivate_killswitch``; bots never). Errors use the API's one shape via
the project's EXCEPTION_HANDLER: ``{"error", "detail", "fields"}``.

Scope rule (issue 13, D2; README "Security model"):
- a bot may halt only accounts it is granted; without ``account`` it halts its own accounts;
- the global switch needs a staff user or a bot with ``killswitch.activate_global``;
- cancel-all touches only accounts the actor may act on;
- no response shows a bot anything about accounts it is not granted.
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from killswitch.api.serializers import (
    ActivateInputSerializer,
    ChangeOutputSerializer,
    DeactivateInputSerializer,
    TradingViewSerializer,
)
from killswitch.selectors import (
    killswitch_view,
    view_rows_from_json,
    view_rows_with_token_sql,
)
from killswitch.services import (
    killswitch_activate,
    killswitch_activate_accounts,
    killswitch_deactivate,
)
from tradingstate.actors import Actor
from tradingstate.api.access import account_get_visible, account_list_visible
from tradingstate.api.serializers import represent
from tradingstate.errors import PermissionRefused, ValidationFailed
from tradingstate.rules.values import SLUG_PATTERN
from tradingstate.web import permissions as api_permissions
from tradingstate.web.permissions import is_bot

BOTS_AND_STAFF_ONLY = "Only bots and staff may use the kill switch."
DEACTIVATE_DENIED = (
    "Deactivating the kill switch needs a staff user with the "
    "'killswitch.deactivate_killswitch' permission; bots may not."
)
GLOBAL_DENIED = (
    "Activating the global kill switch needs staff with 'killswitch.activate_killswitch' (or "
    "'killswitch.activate_global'), or a bot granted 'killswitch.activate_global'; a bot "
    "halts its own accounts (omit 'scope', or name one 'account')."
)
NO_ACCOUNTS = "This bot is granted no accounts: there is nothing it may halt."
SCOPE_WITH_ACCOUNT = "Give either 'account' or 'scope', not both."
GLOBAL_PERMISSION = "killswitch.activate_global"
STAFF_ACTIVATE_PERMISSION = "killswitch.activate_killswitch"  # the admin's control page too


def may_halt_globally(user) -> bool:
    """Staff with the admin's activate permission (or activate_global); a bot only when its
    user is explicitly granted ``killswitch.activate_global``."""
    if _acts_as_bot(user):
        return user.has_perm(GLOBAL_PERMISSION)
    return user.has_perm(GLOBAL_PERMISSION) or user.has_perm(STAFF_ACTIVATE_PERMISSION)


RULE = (
    "Who may halt what: a bot halts only accounts it is granted; without `account` (and "
    "without `scope`) a bot halts all of its own accounts. The global switch (`scope` "
    "'global', staff's default) needs staff with `killswitch.activate_killswitch` (the "
    "admin's permission) or `killswitch.activate_global`, or a bot explicitly granted "
    "`killswitch.activate_global`. `cancel_open_orders` cancels only on accounts the "
    "caller may act on, and the response (`state`, `cancel_summary`) names only those."
)


class IsBotOrStaff(api_permissions.IsBotOrStaff):
    message = BOTS_AND_STAFF_ONLY


class CanDeactivateKillSwitch(BasePermission):
    message = DEACTIVATE_DENIED

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and user.is_staff
            and not is_bot(user)
            and user.has_perm("killswitch.deactivate_killswitch")
        )


def _acts_as_bot(user) -> bool:
    return is_bot(user) and not user.is_staff


def _view_for(request, account: str | None = None):
    """The state as this caller may see it: a bot sees only its own accounts."""
    user = request.user
    if not _acts_as_bot(user):
        return killswitch_view(account=account)
    prefetched = getattr(user, "with_bot", None)  # read with the token (token_with_bot_sql)
    rows = view_rows_from_json(prefetched) if prefetched is not None else None
    return killswitch_view(bot=user.bot, account=account, rows=rows)


def _change_response(request, results, *, scope: str, account=None) -> Response:
    summaries = [r.cancel_summary for r in results if r.cancel_summary is not None]
    data = {
        "changed": any(r.changed for r in results),
        "message": " ".join(r.message for r in results) if results else "",
        "scope": scope,
        "account": account.name if account is not None else None,
        "accounts": [r.account for r in results if r.account],
        "active": all(r.active for r in results) if results else False,
        "cancel_summary": _merge_summaries(summaries),
        "state": _view_for(request),
    }
    return Response(ChangeOutputSerializer(data).data)


def _merge_summaries(summaries: list[dict]) -> dict | None:
    if not summaries:
        return None
    if len(summaries) == 1:
        return summaries[0]
    accounts: dict = {}
    for s in summaries:
        accounts.update(s.get("accounts") or {})
    return {
        "scope": "accounts",
        "complete": all(s.get("complete") for s in summaries),
        "cancelled": sum(s.get("cancelled") or 0 for s in summaries),
        "remaining": sum(s.get("remaining") or 0 for s in summaries),
        "accounts": accounts,
    }


class KillSwitchStatusApi(APIView):
    """The kill switch state. Bots are told to read it before every order, so it is not
    counted against the bot rate limit: a 429 on the safety check would leave a bot to
    choose between trading blind and stalling, and the read (one statement with the token
    check on PostgreSQL) costs no more than the throttle's own bookkeeping would."""

    permission_classes = [IsBotOrStaff]
    throttle_classes: list = []

    @staticmethod
    def token_with_bot_sql() -> str | None:
        """The switch rows the bot may see, read in its token's statement (PostgreSQL): the
        read bots make before every order is one round trip."""
        return view_rows_with_token_sql()

    @extend_schema(
        responses=TradingViewSerializer,
        parameters=[
            OpenApiParameter(
                "account",
                OpenApiTypes.STR,
                description="Ask about this one account (one the caller may see; else 404).",
                pattern=SLUG_PATTERN,
            )
        ],
        description=(
            "`trading_allowed` is the field a bot should read before each order. `active` is "
            "true whenever any of the caller's accounts is halted by any scope, and `scope` "
            "says which. A bot sees only its granted accounts."
        ),
    )
    def get(self, request):
        name = request.query_params.get("account")
        if name is not None:
            name = account_get_visible(request.user, name).name
        return Response(represent(TradingViewSerializer, _view_for(request, name)))


class KillSwitchActivateApi(APIView):
    permission_classes = [IsBotOrStaff]

    @extend_schema(
        request=ActivateInputSerializer, responses=ChangeOutputSerializer, description=RULE
    )
    def post(self, request):
        serializer = ActivateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        actor = Actor.from_request(request)
        name = data.get("account")
        scope = data.get("scope")
        if name and scope:
            raise ValidationFailed(SCOPE_WITH_ACCOUNT, fields={"scope": [SCOPE_WITH_ACCOUNT]})
        cancel = data["cancel_open_orders"]
        visible = list(account_list_visible(user))
        if name:
            account = account_get_visible(user, name)
            result = killswitch_activate(
                reason=data["reason"], actor=actor, account=account, cancel_open_orders=cancel
            )
            return _change_response(request, [result], scope="account", account=account)
        if (scope or ("accounts" if _acts_as_bot(user) else "global")) == "accounts":
            if not visible:
                raise ValidationFailed(NO_ACCOUNTS, fields={"account": [NO_ACCOUNTS]})
            results = killswitch_activate_accounts(
                reason=data["reason"], actor=actor, accounts=visible, cancel_open_orders=cancel
            )
            return _change_response(request, results, scope="accounts")
        if not may_halt_globally(user):
            raise PermissionRefused(GLOBAL_DENIED)
        result = killswitch_activate(
            reason=data["reason"],
            actor=actor,
            cancel_open_orders=cancel,
            # staff act on every account; a bot only on its own, even when it may halt all
            cancel_accounts=visible if _acts_as_bot(user) else None,
        )
        return _change_response(request, [result], scope="global")


class KillSwitchDeactivateApi(APIView):
    permission_classes = [CanDeactivateKillSwitch]

    @extend_schema(request=DeactivateInputSerializer, responses=ChangeOutputSerializer)
    def post(self, request):
        serializer = DeactivateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        name = data.get("account")
        account = account_get_visible(request.user, name) if name else None
        result = killswitch_deactivate(
            actor=Actor.from_request(request), reason=data["reason"], account=account
        )
        return _change_response(
            request, [result], scope="account" if account else "global", account=account
        )
