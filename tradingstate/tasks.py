"""django-q2 tasks of the core. They take ids and call a service; safe to deliver twice."""

from __future__ import annotations

from tradingstate.services.notifications import notification_send


def notification_send_task(notification_id: int) -> str:
    return notification_send(notification_id=notification_id)
