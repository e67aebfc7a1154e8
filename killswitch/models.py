"""Kill switch state (one global row, one row per account from its creation) and history.

Writes go through ``killswitch.services``; reads through ``killswitch.selectors``.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Coalesce

from tradingstate.models import AuditEntry, ExchangeAccount


class KillSwitch(models.Model):
    """Halt state. ``account`` NULL is the global switch; otherwise one account's halt.

    One row per scope (global included): the unique index is on ``COALESCE(account_id, 0)``
    because a plain unique constraint treats NULLs as distinct.
    """

    # CASCADE: the row is the account's switch state (it exists from the account's creation);
    # the history (KillSwitchEvent) is PROTECTed, so an account ever halted cannot be deleted.
    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="kill_switches",
    )
    active = models.BooleanField(default=False)
    reason = models.TextField(blank=True)
    activated_by = models.CharField(max_length=150, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveBigIntegerField(default=1)

    class Meta:
        ordering = ["account__name"]
        verbose_name = "kill switch"
        verbose_name_plural = "kill switches"
        constraints = [
            models.UniqueConstraint(Coalesce("account", Value(0)), name="killswitch_unique_scope"),
            models.CheckConstraint(
                condition=Q(active=False) | ~Q(reason=""), name="killswitch_active_has_reason"
            ),
        ]
        permissions = [
            ("activate_killswitch", "Can activate the kill switch"),
            ("deactivate_killswitch", "Can deactivate the kill switch"),
            # the global switch halts every account: staff with this permission, or a bot
            # explicitly granted it (a bot otherwise halts only its own accounts)
            ("activate_global", "Can activate the global kill switch"),
        ]

    def __str__(self) -> str:
        return f"{self.scope_label}: {'ACTIVE' if self.active else 'inactive'}"

    @property
    def is_global(self) -> bool:
        return self.account_id is None

    @property
    def scope_label(self) -> str:
        return "global" if self.account_id is None else f"account {self.account.name}"


class KillSwitchEvent(models.Model):
    """Append-only history: every activation, deactivation and cancel-all, with who and why."""

    class Action(models.TextChoices):
        ACTIVATE = "activate", "Activate"
        DEACTIVATE = "deactivate", "Deactivate"
        CANCEL_ORDERS = "cancel_orders", "Cancel open orders"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    action = models.CharField(max_length=16, choices=Action.choices)
    account = models.ForeignKey(
        ExchangeAccount,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="kill_switch_events",
    )
    actor_type = models.CharField(max_length=8, choices=AuditEntry.ActorType.choices)
    actor_name = models.CharField(max_length=150)
    actor_user_id = models.BigIntegerField(null=True, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True)
    cancel_open_orders = models.BooleanField(default=False)
    cancel_summary = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "kill switch event"

    def __str__(self) -> str:
        scope = "global" if self.account_id is None else self.account.name
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {scope} by {self.actor_name}"
