"""Exchange accounts: created from the configuration (``recover``) or by staff.

One rule set for ``enabled``: every change of it goes through ``account_set_enabled`` (actor,
reason, an ``account.enable`` / ``account.disable`` audit entry, and the "resumed" message that
closes an ``account.stopped`` alert). ``account_upsert`` (the configuration, the admin's add
form, the demo) sets ``enabled`` itself only on the account it creates; on an existing account
it asks ``account_set_enabled``, and it re-enables only an account its settings disabled
(``settings_may_enable``): one stopped for an authentication failure stays stopped until staff
re-enable it in the admin (docs/runbooks/desync.md, "Account stopped").
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from tradingstate.actors import Actor
from tradingstate.config import AppConfig, ExchangeConfig
from tradingstate.errors import ValidationFailed
from tradingstate.locks import account_qs_select_for_update
from tradingstate.models import ExchangeAccount
from tradingstate.services import events
from tradingstate.services.audit import require_reason
from tradingstate.services.events import ACCOUNT_AUDIT_FIELDS  # noqa: F401 (re-exported)
from tradingstate.services.notifications import notification_emit

log = logging.getLogger("tradingstate")

# why an account whose settings say ``enabled = false`` is disabled
DISABLED_BY_SETTINGS = "disabled in its settings (enabled = false)"
STAYS_DISABLED = (
    "Account %s stays disabled (%s): its settings say enabled = true, but an account stopped "
    "for this reason is re-enabled by staff: fix the cause, then re-enable it in the admin "
    "(Accounts -> Re-enable reconciliation)"
)


def settings_may_enable(account: ExchangeAccount) -> bool:
    """Whether the account's settings (the configuration) may re-enable it: only when they
    disabled it themselves (or no reason was ever recorded). An account the reconciler stopped
    (authentication failed, credentials unset) waits for staff to re-enable it."""
    return account.disabled_reason in ("", DISABLED_BY_SETTINGS)


def account_values_from_config(item: ExchangeConfig, app: AppConfig) -> dict:
    return {
        "exchange": item.exchange,
        "market_type": item.market_type,
        "api_key_env": item.api_key_env,
        "secret_env": item.secret_env,
        "password_env": item.password_env,
        "ccxt_options": item.ccxt_options,
        "sandbox": item.testnet or item.demo,
        "enabled": item.enabled,
        "auto_repair": app.auto_repair if item.auto_repair is None else item.auto_repair,
        "reconciliation_interval_seconds": item.reconciliation_interval_seconds
        or app.reconciliation_interval_seconds,
        "balance_tolerance": app.balance_tolerance
        if item.balance_tolerance is None
        else item.balance_tolerance,
        "balance_tolerances": {k: str(v) for k, v in app.balance_tolerances.items()},
        "stale_order_grace_seconds": app.stale_order_grace_seconds
        if item.stale_order_grace_seconds is None
        else item.stale_order_grace_seconds,
    }


@transaction.atomic
def account_upsert(*, name: str, values: dict, actor: Actor, reason: str = "") -> ExchangeAccount:
    """Create or update an account; audited only when something changed.

    ``values["enabled"]`` is the account's setting: a new account is created with it; an
    existing one changes only through ``account_set_enabled`` (see the module's docstring).
    ``disabled_reason`` is never taken from ``values``: the enable service writes it.
    """
    values = dict(values)
    enabled = values.pop("enabled", None)
    values.pop("disabled_reason", None)
    account = account_qs_select_for_update().filter(name=name).first()
    before = events.account_snapshot(account) if account else None
    if account is None:
        account = ExchangeAccount(name=name)
        if enabled is not None:
            account.enabled = bool(enabled)
            account.disabled_reason = "" if enabled else DISABLED_BY_SETTINGS
    for key, value in values.items():
        setattr(account, key, value)
    account.full_clean()
    if before != events.account_snapshot(account):
        account.save()
        events.account_saved(account=account, before=before, actor=actor, reason=reason)
    if before is not None and enabled is not None:
        account = _apply_enabled_setting(account, bool(enabled), actor, reason)
    return account


def _apply_enabled_setting(
    account: ExchangeAccount, enabled: bool, actor: Actor, reason: str
) -> ExchangeAccount:
    if account.enabled == enabled:
        return account
    reason = reason or "account settings"
    if not enabled:
        return account_set_enabled(account=account, enabled=False, actor=actor, reason=reason,
                                   disabled_reason=DISABLED_BY_SETTINGS)  # fmt: skip
    if settings_may_enable(account):
        return account_set_enabled(account=account, enabled=True, actor=actor, reason=reason)
    log.warning(STAYS_DISABLED, account.name, account.disabled_reason)
    return account


def account_sync_from_config(*, app: AppConfig, actor: Actor) -> list[ExchangeAccount]:
    return [
        account_upsert(
            name=item.name,
            values=account_values_from_config(item, app),
            actor=actor,
            reason="loaded from configuration",
        )
        for item in app.exchanges
    ]


@transaction.atomic
def account_set_enabled(
    *, account: ExchangeAccount, enabled: bool, actor: Actor, reason: str, disabled_reason: str = ""
) -> ExchangeAccount:
    """The one way ``enabled`` changes (staff, the reconciler's auth stop, the settings):
    audited with the actor and reason; enabling sends the "resumed" message that closes an
    ``account.stopped`` alert (so the next stop is alerted again)."""
    account = account_qs_select_for_update().get(pk=account.pk)
    before = events.account_snapshot(account)
    account.enabled = enabled
    account.disabled_reason = "" if enabled else (disabled_reason or reason)
    account.save(update_fields=["enabled", "disabled_reason", "updated_at"])
    events.account_enabled_changed(account=account, before=before, actor=actor, reason=reason)
    if enabled:  # closes an "account.stopped" alert, if one was sent
        notification_emit(
            event="account.stopped", key=account.name, state="running", quiet_if_new=True,
            title=f"tradingstate: reconciliation resumed for {account.name}",
            body=f"Account {account.name} re-enabled by {actor.name}: {reason}",
        )  # fmt: skip
    return account


@transaction.atomic
def account_recovery_begin(*, account: ExchangeAccount, actor: Actor) -> ExchangeAccount:
    """Close the account's order gate until its next completed reconciliation pass."""
    from django.utils import timezone

    account = account_qs_select_for_update().get(pk=account.pk)
    before = {
        "recovery_started_at": None
        if account.recovery_started_at is None
        else str(account.recovery_started_at)
    }
    account.recovery_started_at = timezone.now()
    account.save(update_fields=["recovery_started_at", "updated_at"])
    events.account_recovery_begun(
        account=account,
        before=before,
        actor=actor,
        reason="restart recovery: orders refused until the first pass completes",
    )
    return account


AUTO_REPAIR_PAUSE_MAX = timedelta(days=7)
PAUSE_IN_PAST = "must be in the future"
PAUSE_TOO_LONG = "must be at most 7 days ahead"


@transaction.atomic
def account_auto_repair_pause(
    *, account: ExchangeAccount, until: datetime | None, actor: Actor, reason: str
) -> ExchangeAccount:
    """Pause the account's auto-repair until ``until`` (at most 7 days ahead), or resume it
    now (``until`` None). Passes meanwhile still find and record every discrepancy; they
    apply no repair (``ExchangeAccount.auto_repair_active``). Audited with the reason."""
    reason = require_reason(reason)
    now = timezone.now()
    if until is not None and until <= now:
        raise ValidationFailed(f"until: {PAUSE_IN_PAST}", fields={"until": [PAUSE_IN_PAST]})
    if until is not None and until - now > AUTO_REPAIR_PAUSE_MAX:
        raise ValidationFailed(f"until: {PAUSE_TOO_LONG}", fields={"until": [PAUSE_TOO_LONG]})
    account = account_qs_select_for_update().get(pk=account.pk)
    before = events.auto_repair_pause_snapshot(account)
    account.auto_repair_paused_until = until
    account.auto_repair_paused_reason = reason if until is not None else ""
    account.save(
        update_fields=["auto_repair_paused_until", "auto_repair_paused_reason", "updated_at"]
    )
    events.account_auto_repair_paused(account=account, before=before, actor=actor, reason=reason)
    return account
