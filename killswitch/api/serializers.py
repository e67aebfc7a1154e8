from __future__ import annotations

from rest_framework import serializers

from killswitch.selectors import KillSwitchStatus
from tradingstate.api.fields import StrictBooleanField, StrictCharField
from tradingstate.api.serializers import InputSerializer

SCOPES = ["global", "account", "accounts"]


class HaltedAccountSerializer(serializers.Serializer):
    account = serializers.CharField()
    reason = serializers.CharField()
    activated_by = serializers.CharField()
    activated_at = serializers.DateTimeField(allow_null=True)


class AccountTradingSerializer(serializers.Serializer):
    account = serializers.CharField()
    trading_allowed = serializers.BooleanField(
        help_text="False while this account is halted by any scope: do not send new orders."
    )
    halted_by = serializers.ChoiceField(
        choices=["global", "account", ""], help_text="Which scope halts it; '' when allowed."
    )
    reason = serializers.CharField(allow_blank=True)


class KillSwitchStatusSerializer(serializers.Serializer):
    """The contract fields (DESIGN §6) for a change's ``state``."""

    active = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    activated_by = serializers.CharField(allow_blank=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    halted_accounts = HaltedAccountSerializer(many=True)


class TradingViewSerializer(KillSwitchStatusSerializer):
    """GET /api/v1/killswitch/: the contract fields, as the caller's accounts see them."""

    active = serializers.BooleanField(
        help_text="True whenever any of the caller's accounts is halted, by any scope."
    )
    scope = serializers.ChoiceField(
        choices=["global", "account", ""],
        help_text="The scope of the halt that `active` reports ('' when nothing is halted).",
    )
    trading_allowed = serializers.BooleanField(
        help_text=(
            "The field a bot can trust: true only when every one of the caller's accounts "
            "(or the `?account=` one) may register new orders."
        )
    )
    accounts = AccountTradingSerializer(
        many=True, help_text="Per account the caller may act on: may it trade, and why not."
    )


class ActivateInputSerializer(InputSerializer):
    # blank passes here so the service's REASON_REQUIRED is the one message
    reason = StrictCharField(allow_blank=True, max_length=2000)
    account = StrictCharField(
        required=False,
        allow_null=True,
        allow_blank=True,
        max_length=64,
        help_text="Halt this account only (one the caller may act on).",
    )
    scope = serializers.ChoiceField(
        choices=["global", "accounts"],
        required=False,
        help_text=(
            "Without `account`: 'global' halts every account (staff or a bot granted "
            "killswitch.activate_global); 'accounts' halts the caller's own accounts. "
            "Default: 'accounts' for a bot, 'global' for staff."
        ),
    )
    cancel_open_orders = StrictBooleanField(required=False, default=False)


class DeactivateInputSerializer(InputSerializer):
    reason = StrictCharField(required=False, allow_blank=True, default="", max_length=2000)
    account = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=64)


class ChangeOutputSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    message = serializers.CharField()
    scope = serializers.ChoiceField(choices=SCOPES)
    account = serializers.CharField(allow_null=True)
    accounts = serializers.ListField(
        child=serializers.CharField(), help_text="The accounts this change halted or resumed."
    )
    active = serializers.BooleanField()
    cancel_summary = serializers.JSONField(allow_null=True)
    state = TradingViewSerializer()


def status_data(status: KillSwitchStatus) -> dict:
    return KillSwitchStatusSerializer(status).data
