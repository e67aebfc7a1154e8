"""Kill switch API: GET the state, POST activate (bots and staff), POST deactivate (staff
with ``killswitch.deactivate_killswitch``; bots never). Errors use the API's one shape via
the project's EXCEPTION_HANDLER: ``{"error", "detail", "fields"}``."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from killswitch.api.serializers import (
    ActivateInputSerializer,
    ChangeOutputSerializer,
    DeactivateInputSerializer,
    KillSwitchStatusSerializer,
)
from killswitch.selectors import killswitch_state
from killswitch.services import killswitch_activate, killswitch_deactivate
from tradingstate.actors import Actor
from tradingstate.errors import NotFound
from tradingstate.models import ExchangeAccount
from tradingstate.web import permissions as api_permissions
from tradingstate.web.permissions import is_bot

BOTS_AND_STAFF_ONLY = "Only bots and staff may use the kill switch."
DEACTIVATE_DENIED = (
    "Deactivating the kill switch needs a staff user with the "
    "'killswitch.deactivate_killswitch' permission; bots may not."
)
UNKNOWN_ACCOUNT = "Unknown account '{name}'."


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


def _account_for(request, name: str | None) -> ExchangeAccount | None:
    """The named account, if this caller may act on it (a bot: only its granted accounts)."""
    if not name:
        return None
    qs = ExchangeAccount.objects.filter(name=name)
    user = request.user
    if is_bot(user) and not user.is_staff:
        qs = qs.filter(bots=user.bot)
    account = qs.first()
    if account is None:
        message = UNKNOWN_ACCOUNT.format(name=name[:100])
        raise NotFound(message, fields={"account": [message]})
    return account


def _change_response(request, result) -> Response:
    data = {
        "changed": result.changed,
        "message": result.message,
        "scope": result.scope,
        "account": result.account,
        "active": result.active,
        "cancel_summary": result.cancel_summary,
        "state": _state_for(request),
    }
    return Response(ChangeOutputSerializer(data).data)


def _state_for(request):
    """The state as this caller may see it: a bot sees only its own accounts' halts."""
    user = request.user
    bot = user.bot if is_bot(user) and not user.is_staff else None
    return killswitch_state(bot=bot)


class KillSwitchStatusApi(APIView):
    """The kill switch state. Bots are told to read it before every order, so it is not
    counted against the bot rate limit: a 429 on the safety check would leave a bot to
    choose between trading blind and stalling, and the read (two indexed statements with
    the token check) costs no more than the throttle's own bookkeeping would."""

    permission_classes = [IsBotOrStaff]
    throttle_classes: list = []

    @extend_schema(responses=KillSwitchStatusSerializer)
    def get(self, request):
        return Response(KillSwitchStatusSerializer(_state_for(request)).data)


class KillSwitchActivateApi(APIView):
    permission_classes = [IsBotOrStaff]

    @extend_schema(request=ActivateInputSerializer, responses=ChangeOutputSerializer)
    def post(self, request):
        serializer = ActivateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = killswitch_activate(
            reason=data["reason"],
            actor=Actor.from_request(request),
            account=_account_for(request, data.get("account")),
            cancel_open_orders=data["cancel_open_orders"],
        )
        return _change_response(request, result)


class KillSwitchDeactivateApi(APIView):
    permission_classes = [CanDeactivateKillSwitch]

    @extend_schema(request=DeactivateInputSerializer, responses=ChangeOutputSerializer)
    def post(self, request):
        serializer = DeactivateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = killswitch_deactivate(
            actor=Actor.from_request(request),
            reason=data["reason"],
            account=_account_for(request, data.get("account")),
        )
        return _change_response(request, result)
