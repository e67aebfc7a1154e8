"""The one shared assertion every write-service test uses for its audit entry."""

from __future__ import annotations

from tradingstate.actors import Actor
from tradingstate.models import AuditEntry


def assert_audited(
    target,
    *,
    action: str,
    actor: Actor,
    reason: str | None = None,
    before: dict | None = None,
    after: dict | None = None,
    count: int = 1,
) -> AuditEntry:
    """Assert ``target`` has ``count`` entries for ``action`` by ``actor``; return the last."""
    assert action in AuditEntry.Action.values, f"'{action}' is not an AuditEntry.Action"
    entries = list(
        AuditEntry.objects.filter(
            target_type=target._meta.model_name, target_id=str(target.pk), action=action
        ).order_by("id")
    )
    assert len(entries) == count, f"expected {count} '{action}' entries, found {len(entries)}"
    entry = entries[-1]
    assert entry.actor_type == actor.type
    assert entry.actor_name == actor.name
    assert entry.actor_user_id == actor.user_id
    assert entry.correlation_id == actor.correlation_id
    if hasattr(target, "account_id"):
        assert entry.account_id == target.account_id
    if reason is not None:
        assert entry.reason == reason
    if before is not None:
        assert entry.before is not None
        for key, value in before.items():
            assert entry.before.get(key) == value, (key, entry.before.get(key), value)
    if after is not None:
        assert entry.after is not None
        for key, value in after.items():
            assert entry.after.get(key) == value, (key, entry.after.get(key), value)
    return entry


def assert_not_audited() -> None:
    assert AuditEntry.objects.count() == 0
