"""The audit trail's low level: snapshots, the one AuditEntry constructor, the bulk insert.

Services do not call these to write: they call the typed writers in
``tradingstate.services.events`` (one per event family), which are the only callers of
``audit_build``. Every write records who, what, before, after and why in the same
transaction. Never a signal."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.db import models

from tradingstate.actors import Actor
from tradingstate.amounts import amount_str
from tradingstate.errors import ValidationFailed
from tradingstate.models import AuditEntry
from tradingstate.services.bulk import RowFactory, rows_bulk_insert

REASON_REQUIRED = "A reason is required."

_new_entry = RowFactory(AuditEntry)


def audit_snapshot(obj: models.Model, fields: Iterable[str]) -> dict:
    return {name: _jsonable(getattr(obj, name)) for name in fields}


def _jsonable(value: object) -> object:
    if isinstance(value, Decimal):
        return amount_str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    return value


UNDECLARED_ACTION = "audit action {action!r} is not an AuditEntry.Action member"


def audit_build(
    *,
    actor: Actor,
    action: AuditEntry.Action,
    target: models.Model | None = None,
    target_type: str = "",
    target_id: object = "",
    account=None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str = "",
    run_id: int | None = None,
    discrepancy_id: int | None = None,
) -> AuditEntry:
    """An unsaved AuditEntry (for bulk_create on bulk paths).

    ``action`` must be an ``AuditEntry.Action`` member: a free-text action is a bug."""
    if not isinstance(action, AuditEntry.Action):
        raise TypeError(UNDECLARED_ACTION.format(action=action))
    if target is not None:
        target_type = target_type or target._meta.model_name
        target_id = target.pk
        if account is None:
            account = getattr(target, "account", None) if hasattr(target, "account_id") else None
    return _new_entry(
        actor_type=actor.type,
        actor_name=actor.name[:150],
        actor_user_id=actor.user_id,
        correlation_id=(actor.correlation_id or "")[:64],
        action=action,
        account=account,
        target_type=target_type,
        target_id=str(target_id or ""),
        target_repr=str(target)[:200] if target is not None else "",
        before=before,
        after=after,
        reason=reason,
        run_id=run_id,
        discrepancy_id=discrepancy_id,
    )


def audit_bulk_record(entries: list[AuditEntry]) -> list[AuditEntry]:
    """Insert many audit rows in one statement (COPY on PostgreSQL, where their ``pk``
    stay unset; ``bulk_create`` within the backend's parameter limit elsewhere)."""
    rows_bulk_insert(AuditEntry, entries)
    return entries


# not seen on a page: format characters (zero-width space, joiners, marks), separators and
# control characters; a reason made only of these reads as none
_INVISIBLE = {"Cf", "Cc", "Zs", "Zl", "Zp", "Mn", "Me"}


def require_reason(reason: str | None) -> str:
    """The reason, stripped; refused when nothing of it can be read (empty, spaces, or only
    invisible characters such as a zero-width space). The one rule for every reason that is
    required: the services and the console's forms."""
    text = (reason or "").strip()
    if not any(unicodedata.category(ch) not in _INVISIBLE for ch in text):
        raise ValidationFailed(REASON_REQUIRED, fields={"reason": [REASON_REQUIRED]})
    return text
