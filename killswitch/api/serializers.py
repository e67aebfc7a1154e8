from __future__ import annotations

from rest_framework import serializers

from killswitch.selectors import KillSwitchStatus


class HaltedAccountSerializer(serializers.Serializer):
    account = serializers.CharField()
    reason = serializers.CharField()
    activated_by = serializers.CharField()
    activated_at = serializers.DateTimeField(allow_null=True)


class KillSwitchStatusSerializer(serializers.Serializer):
    active = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    activated_by = serializers.CharField(allow_blank=True)
    activated_at = serializers.DateTimeField(allow_null=True)
    halted_accounts = HaltedAccountSerializer(many=True)


class ActivateInputSerializer(serializers.Serializer):
    # blank passes here so the service's REASON_REQUIRED is the one message
    reason = serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=2000)
    account = serializers.CharField(required=False, allow_null=True, allow_blank=True)
    cancel_open_orders = serializers.BooleanField(required=False, default=False)


class DeactivateInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    account = serializers.CharField(required=False, allow_null=True, allow_blank=True)


class ChangeOutputSerializer(serializers.Serializer):
    changed = serializers.BooleanField()
    message = serializers.CharField()
    scope = serializers.ChoiceField(choices=["global", "account"])
    account = serializers.CharField(allow_null=True)
    active = serializers.BooleanField()
    cancel_summary = serializers.JSONField(allow_null=True)
    state = KillSwitchStatusSerializer()


def status_data(status: KillSwitchStatus) -> dict:
    return KillSwitchStatusSerializer(status).data
