"""Who changed state: a user, a bot, or the system (the reconciler, a command)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    type: str  # "user" | "bot" | "system"
    name: str
    user_id: int | None = None
    correlation_id: str = field(default="")

    @classmethod
    def system(cls, name: str, correlation_id: object = "") -> Actor:
        return cls(type="system", name=f"system:{name}", correlation_id=str(correlation_id))

    @classmethod
    def for_user(cls, user, correlation_id: str = "") -> Actor:
        kind = "bot" if _is_bot(user) else "user"
        return cls(
            type=kind,
            name=user.get_username(),
            user_id=user.pk,
            correlation_id=correlation_id or uuid.uuid4().hex,
        )

    @classmethod
    def from_request(cls, request) -> Actor:
        request_id = request.META.get("HTTP_X_REQUEST_ID", "")[:64] or uuid.uuid4().hex
        return cls.for_user(request.user, correlation_id=request_id)

    @property
    def is_system(self) -> bool:
        return self.type == "system"

    def __str__(self) -> str:
        return self.name


def _is_bot(user) -> bool:
    # RelatedObjectDoesNotExist is an AttributeError, so hasattr() is the check
    return bool(getattr(user, "is_authenticated", False)) and hasattr(user, "bot")
