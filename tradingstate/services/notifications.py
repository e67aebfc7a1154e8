"""Notifications: one message per alert state change, sent by a django-q2 task after commit.

``notification_emit(event=..., key=..., state=..., title=..., body=...)`` runs in the
caller's transaction (a pass, a kill-switch change): it compares ``state`` with the last state
recorded for ``(event, key)`` and, only when it changed, records the new state and one
``Notification`` row per channel subscribed to the event; once the transaction commits, a
django-q2 task sends each. Nothing is sent for a rolled-back change, and a broker that is down
never fails the caller: the row stays due and the periodic sweep (``notifications_send_due``)
sends it.

``notification_send`` claims a row in a short transaction, sends with no transaction open,
and records the outcome: ``sent``, or ``retrying`` with a backoff (30 s, 1, 2, 4 … min, at
most 1 h) until ``[alerts] retry_max_attempts``, then ``failed``. Each channel sends at most
``rate_limit_per_minute`` messages a minute; the rest wait. Channel URLs (with their secrets)
are read from the configuration and the environment at send time and are never stored or
logged: rows name the channel, errors never quote the URL.

How a message goes out (``_deliver``): apprise parses every channel URL. A JSON webhook
(``json://`` / ``jsons://``) is then posted here, with apprise's payload and the URL's
headers, query and payload options, so that the answer's real status is known: only a 2xx is
``sent``; a redirect (3xx) is never followed (requests would repeat a redirected POST as a GET
without its body) and is a failure that is retried; a receiver that does not answer within
the channel's ``timeout_seconds`` is recorded "timed out (may have been delivered)". Every
attempt of a message carries the same idempotency key, the notification's id: the
``Idempotency-Key`` header and ``notification_id`` in the JSON body, so a receiver can drop a
message it already has. Other apprise services are sent by apprise, with redirects refused
and the channel's timeout.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from tradingstate.config import ENV_PLACEHOLDER, NotificationChannelConfig
from tradingstate.models import Notification, NotificationState

log = logging.getLogger("tradingstate")

CLAIM_STALE_SECONDS = 300  # a "sending" row older than this was lost with its worker
BACKOFF_FIRST_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
SEND_TASK = "tradingstate.tasks.notification_send_task"
CHANNEL_GONE = "channel {name!r} is no longer configured"
ENV_MISSING = "environment variable {name} is not set"
URL_REFUSED = "channel {name!r}: apprise does not accept its URL"
NOT_ACCEPTED = "channel {name!r}: the service did not accept the message"
NOT_ACCEPTED_STATUS = "channel {name!r}: the service did not accept the message (HTTP {status})"
REDIRECT_REFUSED = (
    "channel {name!r}: HTTP {status} redirect not followed (the message was not delivered): "
    "set the channel's URL to the address it redirects to"
)
TIMED_OUT = (
    "channel {name!r}: timed out after {seconds} s waiting for the answer (may have been "
    "delivered; a retry carries the same Idempotency-Key)"
)
CONNECT_TIMED_OUT = "channel {name!r}: could not connect within {seconds} s (not delivered)"
CONNECTION_FAILED = "channel {name!r}: connection failed ({kind})"
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_FIELD = "notification_id"
CONNECT_TIMEOUT_SECONDS = 4


@dataclass(frozen=True)
class Change:
    key: str
    state: str
    title: str
    body: str


def notification_emit(
    *, event: str, key: str, state: str, title: str, body: str, quiet_if_new: bool = False
) -> list[Notification]:
    """Record ``(event, key)`` in ``state``; queue messages if that is a change."""
    return notifications_emit(
        event=event, changes=[Change(key, state, title, body)], quiet_if_new=quiet_if_new
    )


def notifications_emit(
    *, event: str, changes: list[Change], quiet_if_new: bool = False
) -> list[Notification]:
    """Several keys of one event at once (one read of their states; no statement at all
    when there is nothing to emit, so a clean pass pays nothing).

    ``quiet_if_new``: a key seen for the first time in this state records it without a
    message (an "ok" or "closed" state nobody was told was wrong).
    """
    if not changes:
        return []
    return _emit(event, changes, quiet_if_new)


@transaction.atomic
def _emit(event: str, changes: list[Change], quiet_if_new: bool) -> list[Notification]:
    now = timezone.now()
    keys = [c.key[:200] for c in changes]
    current = {
        s.key: s
        for s in NotificationState.objects.select_for_update()
        .filter(event=event, key__in=keys)
        .order_by("pk")
    }
    changed: list[Change] = []
    for change, key in zip(changes, keys, strict=True):
        row = current.get(key)
        if row is None:
            if not _create_state(event, key, change.state, now):
                continue  # another process recorded it first: theirs is the message
            if not quiet_if_new:
                changed.append(change)
        elif row.state != change.state:
            row.state, row.changed_at = change.state, now
            row.save(update_fields=["state", "changed_at"])
            changed.append(change)
    channels = [c for c in settings.TRADINGSTATE.notifications if event in c.events]
    rows = [
        Notification(
            event=event,
            key=change.key[:200],
            state=change.state,
            channel=channel.name,
            title=change.title[:250],
            body=change.body,
            next_attempt_at=now,
        )
        for change in changed
        for channel in channels
    ]
    for change in changed:
        log.info(
            "Notification: %s %s %s (%d channel(s))",
            event,
            change.key,
            change.state,
            len(channels),
            extra={
                "structured": {"event": event, "key": change.key, "state": change.state},
                "with_message": True,
            },
        )
    if not rows:
        return []
    Notification.objects.bulk_create(rows)
    ids = [r.pk for r in rows]  # bulk_create returns the ids (PostgreSQL, SQLite >= 3.35)
    transaction.on_commit(lambda: _enqueue(ids), robust=True)
    return rows


def _create_state(event: str, key: str, state: str, now) -> bool:
    try:
        with transaction.atomic():
            NotificationState.objects.create(event=event, key=key, state=state, changed_at=now)
    except IntegrityError:
        return False
    return True


def _enqueue(ids: list[int]) -> None:
    from django_q.tasks import async_task

    for pk in ids:
        async_task(SEND_TASK, pk, task_name=f"notification-{pk}", group="notifications")


# --- sending --------------------------------------------------------------------------------
def notification_send(*, notification_id: int) -> str:
    """Send one due notification (idempotent: a sent or claimed row is left alone)."""
    claimed = _claim(notification_id)
    if isinstance(claimed, str):
        return claimed
    row, channel = claimed
    error = _deliver(channel, row) if channel is not None else CHANNEL_GONE.format(name=row.channel)
    return _record(row, error, give_up=channel is None)


def _claim(notification_id: int) -> tuple[Notification, NotificationChannelConfig | None] | str:
    now = timezone.now()
    with transaction.atomic():
        row = (
            Notification.objects.select_for_update()
            .filter(pk=notification_id, outcome__in=Notification.OPEN_OUTCOMES)
            .first()
        )
        if row is None:
            return f"notification {notification_id}: nothing to send"
        if row.outcome == Notification.Outcome.SENDING and row.last_attempt_at > now - timedelta(
            seconds=CLAIM_STALE_SECONDS
        ):
            return f"notification {notification_id}: being sent"
        if row.next_attempt_at and row.next_attempt_at > now:
            return f"notification {notification_id}: not due before {row.next_attempt_at}"
        channel = channel_config(row.channel)
        if channel is not None:
            _lock_channel(row.channel)
            window = now - timedelta(seconds=60)
            recent = list(
                Notification.objects.filter(
                    channel=row.channel,
                    last_attempt_at__gte=window,
                    outcome__in=[Notification.Outcome.SENT, Notification.Outcome.SENDING],
                )
                .order_by("last_attempt_at")
                .values_list("last_attempt_at", flat=True)[: channel.rate_limit_per_minute]
            )
            if len(recent) >= channel.rate_limit_per_minute:
                row.next_attempt_at = recent[0] + timedelta(seconds=60)
                row.last_error = f"rate limited ({channel.rate_limit_per_minute}/min)"
                row.save(update_fields=["next_attempt_at", "last_error"])
                return f"notification {notification_id}: rate limited"
        row.outcome = Notification.Outcome.SENDING
        row.attempts += 1
        row.last_attempt_at = now
        row.save(update_fields=["outcome", "attempts", "last_attempt_at"])
    return row, channel


def _lock_channel(name: str) -> None:
    """Serialize the rate-limit check per channel (SQLite's write lock already does)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            key = zlib.crc32(f"notification-channel:{name}".encode()) - 2**31
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def channel_config(name: str) -> NotificationChannelConfig | None:
    return next((c for c in settings.TRADINGSTATE.notifications if c.name == name), None)


def channel_url(channel: NotificationChannelConfig, environ=None) -> str:
    """The channel's URL with its secrets, from the environment. Raises KeyError(NAME)."""
    environ = os.environ if environ is None else environ
    if channel.url_env:
        if not environ.get(channel.url_env):
            raise KeyError(channel.url_env)
        return environ[channel.url_env]

    def value(match) -> str:
        name = match.group(1)
        if name not in environ:
            raise KeyError(name)
        return environ[name]

    return ENV_PLACEHOLDER.sub(value, channel.url)


def _deliver(channel: NotificationChannelConfig, row: Notification) -> str:
    """Send one message; '' on success, else the reason (no URL, no secret in it)."""
    import apprise
    from apprise.plugins.custom_json import NotifyJSON

    try:
        url = channel_url(channel)
    except KeyError as exc:
        return ENV_MISSING.format(name=exc.args[0])
    sender = apprise.Apprise(asset=apprise.AppriseAsset(http_redirects=False))
    if not sender.add(url):
        return URL_REFUSED.format(name=channel.name)
    plugins = list(sender)
    for plugin in plugins:  # the URL's own redirect=/rto= do not override the channel's
        plugin.redirects = False
        plugin.socket_connect_timeout = min(CONNECT_TIMEOUT_SECONDS, channel.timeout_seconds)
        plugin.socket_read_timeout = channel.timeout_seconds
    if len(plugins) == 1 and isinstance(plugins[0], NotifyJSON):
        return _post_json(channel, plugins[0], row)
    try:
        ok = sender.notify(title=row.title, body=row.body)
    except Exception as exc:  # a plugin's own failure: recorded and retried, never raised
        return f"{type(exc).__name__}: {exc}"[:500]
    return "" if ok else NOT_ACCEPTED.format(name=channel.name)


def webhook_payload(plugin, row: Notification) -> dict:
    """apprise's JSON webhook body (``NotifyJSON.send``) plus the idempotency key, with the
    URL's ``:key=value`` payload options applied the way apprise applies them (rename, drop
    with an empty value, or add)."""
    payload = {
        "version": plugin.json_version,
        "title": row.title,
        "message": row.body,
        "attachments": [],
        "type": "info",
        IDEMPOTENCY_FIELD: row.pk,
    }
    for key, value in plugin.payload_extras.items():
        if key not in payload:
            payload[key] = value
        elif value:
            payload[value] = payload.pop(key)
        else:
            del payload[key]
    return payload


def _post_json(channel: NotificationChannelConfig, plugin, row: Notification) -> str:
    """POST a JSON webhook without following redirects, and classify the answer."""
    import requests

    name = channel.name
    headers = {
        "User-Agent": plugin.app_id,
        "Content-Type": "application/json",
        IDEMPOTENCY_HEADER: str(row.pk),
        **plugin.headers,
    }
    port = f":{plugin.port}" if isinstance(plugin.port, int) else ""
    target = f"{'https' if plugin.secure else 'http'}://{plugin.host}{port}{plugin.fullpath}"
    try:
        response = requests.request(
            plugin.method,
            target,
            data=json.dumps(webhook_payload(plugin, row)),
            params=plugin.params,
            headers=headers,
            auth=(plugin.user, plugin.password) if plugin.user else None,
            verify=plugin.verify_certificate,
            timeout=(plugin.socket_connect_timeout, plugin.socket_read_timeout),
            allow_redirects=False,
        )
    except requests.ConnectTimeout:
        return CONNECT_TIMED_OUT.format(name=name, seconds=_secs(plugin.socket_connect_timeout))
    except requests.ReadTimeout:
        return TIMED_OUT.format(name=name, seconds=_secs(plugin.socket_read_timeout))
    except requests.RequestException as exc:  # its text quotes the URL: only its kind
        return CONNECTION_FAILED.format(name=name, kind=type(exc).__name__)
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return ""
    if 300 <= status < 400:
        return REDIRECT_REFUSED.format(name=name, status=status)
    return NOT_ACCEPTED_STATUS.format(name=name, status=status)


def _secs(value: float) -> str:
    return f"{value:g}"


def _record(row: Notification, error: str, *, give_up: bool = False) -> str:
    now = timezone.now()
    if not error:
        row.outcome, row.sent_at, row.last_error = Notification.Outcome.SENT, now, ""
        log.info("Notification sent: %s %s %s -> %s", row.event, row.key, row.state, row.channel)
    elif give_up or row.attempts >= settings.TRADINGSTATE.alerts.retry_max_attempts:
        row.outcome, row.last_error = Notification.Outcome.FAILED, error
        log.error(
            "Notification failed for good after %d attempt(s): %s %s -> %s: %s",
            row.attempts, row.event, row.key, row.channel, error,
        )  # fmt: skip
    else:
        delay = min(BACKOFF_FIRST_SECONDS * 2 ** (row.attempts - 1), BACKOFF_MAX_SECONDS)
        row.outcome, row.last_error = Notification.Outcome.RETRYING, error
        row.next_attempt_at = now + timedelta(seconds=delay)
        log.warning(
            "Notification send failed (attempt %d, retry in %ds): %s %s -> %s: %s",
            row.attempts, delay, row.event, row.key, row.channel, error,
        )  # fmt: skip
    row.save(update_fields=["outcome", "sent_at", "last_error", "next_attempt_at"])
    return f"notification {row.pk}: {row.outcome}"


def notifications_send_due(*, limit: int = 100) -> int:
    """The sweep: queue the rows due now (retries, rate-limited ones, ones whose enqueue was
    lost, claims lost with their worker). Called by the periodic checks."""
    now = timezone.now()
    stale = now - timedelta(seconds=CLAIM_STALE_SECONDS)
    due = (
        list(
            Notification.objects.filter(
                outcome__in=[Notification.Outcome.PENDING, Notification.Outcome.RETRYING],
                next_attempt_at__lte=now - timedelta(seconds=5),  # fresh rows: their task is queued
            ).values_list("pk", flat=True)[:limit]
        )
        + list(
            Notification.objects.filter(
                outcome=Notification.Outcome.SENDING, last_attempt_at__lt=stale
            ).values_list("pk", flat=True)[:limit]
        )
    )
    if due:
        _enqueue(due)
    return len(due)


def notifications_prune_queryset(before) -> tuple[type, object]:
    """What retention may delete: records sent or given up before ``before`` (never the ones
    still due; the alert states in NotificationState are kept)."""
    return Notification, Notification.objects.filter(
        created_at__lt=before,
        outcome__in=[Notification.Outcome.SENT, Notification.Outcome.FAILED],
    )
