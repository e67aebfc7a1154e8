"""Who may use the API: bots (token) and staff (session). Everyone else: 403."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

BOTS_AND_STAFF_ONLY = "Only bots and staff may use this API."


def is_bot(user) -> bool:
    # RelatedObjectDoesNotExist is an AttributeError, so hasattr() is the check
    return bool(user and user.is_authenticated and hasattr(user, "bot"))


class IsBotOrStaff(BasePermission):
    message = BOTS_AND_STAFF_ONLY

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_staff or is_bot(user)))
