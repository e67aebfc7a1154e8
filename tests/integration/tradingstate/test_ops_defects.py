"""Operations defects found by the pre-release hunt (D4-D8): each test fails on the code
before its fix.

- D4: restart recovery (``recover``: the accounts loaded from the configuration) re-enabled an
  account stopped for an authentication failure behind everyone's back, so the next stop sent
  no alert.
- D5: a webhook answering 301/302 was recorded ``sent`` (requests followed it as a GET).
- D6: a slow receiver got the same alert on every retry, each recorded as "did not accept".
- D8: ``reconcile`` with bad arguments exited 2, the code documented for "incomplete".

Notifications reach a real loopback HTTP receiver (the one of test_notifications.py, and a
variant here that can redirect or answer late); django-q2 runs its tasks inline.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.utils import timezone
from django_q.conf import Conf

from reconciliation.models import ReconciliationRun
from reconciliation.services import run_reconciliation
from tests.audit import assert_audited
from tradingstate.actors import Actor
from tradingstate.config import BASE_DIR, ConfigError, NotificationChannelConfig, load_config
from tradingstate.models import ExchangeAccount, Notification, NotificationState
from tradingstate.services import account_set_enabled, account_sync_from_config
from tradingstate.services import accounts as account_services
from tradingstate.services.notifications import notification_emit, notifications_send_due

pytestmark = pytest.mark.django_db(transaction=True)

RECOVER = Actor.system("recover")


def write_config(tmp_path: Path, *, enabled: bool = True) -> Path:
    path = tmp_path / "auth.toml"
    path.write_text(
        'mode = "live"\n[[exchanges]]\nname = "authx"\nexchange = "binance"\n'
        'market_type = "swap"\napi_key_env = "OPS_AUTHX_KEY"\nsecret_env = "OPS_AUTHX_SECRET"\n'
        f"enabled = {str(enabled).lower()}\n"
    )
    return path


def recover_accounts(path: Path) -> ExchangeAccount:
    """What ``recover`` does with the accounts of its configuration."""
    (account,) = account_sync_from_config(app=load_config(path), actor=RECOVER)
    return account


def stopped_state(name: str) -> str:
    return NotificationState.objects.get(event="account.stopped", key=name).state


# --- D4 ------------------------------------------------------------------------------------
def test_d4_recovery_leaves_an_auth_stopped_account_to_staff_and_the_next_stop_alerts(
    receiver, tmp_path, monkeypatch, caplog
):
    # given: the account's credentials are not set: its first pass stops it, one alert
    monkeypatch.delenv("OPS_AUTHX_KEY", raising=False)
    monkeypatch.delenv("OPS_AUTHX_SECRET", raising=False)
    path = write_config(tmp_path)
    account = recover_accounts(path)
    assert run_reconciliation(account).status == ReconciliationRun.Status.FAILED
    assert receiver.titles() == ["tradingstate: reconciliation stopped for authx"]
    account.refresh_from_db()
    stop_reason = account.disabled_reason
    assert not account.enabled and "OPS_AUTHX_KEY" in stop_reason

    # when: the credentials are fixed and the process restarts (recovery loads the config)
    monkeypatch.setenv("OPS_AUTHX_KEY", "k")
    monkeypatch.setenv("OPS_AUTHX_SECRET", "s")
    with caplog.at_level(logging.WARNING, logger="tradingstate"):
        account = recover_accounts(path)
    # then: the account stays stopped, with its reason, for staff to re-enable (runbook,
    # "Account stopped"); nothing was sent, the alert state still says stopped
    account.refresh_from_db()
    assert (account.enabled, account.disabled_reason) == (False, stop_reason)
    assert stopped_state("authx") == "stopped"
    assert len(receiver.messages) == 1
    assert "authx stays disabled" in caplog.text and "re-enable" in caplog.text

    # when: staff re-enable it: one "resumed" message, the alert state is back to running
    staff = Actor.system("staff-test")
    account_set_enabled(account=account, enabled=True, actor=staff, reason="key rotated")
    assert receiver.titles("resumed") == ["tradingstate: reconciliation resumed for authx"]
    assert stopped_state("authx") == "running"

    # when: the key fails again: the account stops and this stop is alerted too
    monkeypatch.delenv("OPS_AUTHX_KEY")
    account.refresh_from_db()
    assert run_reconciliation(account).status == ReconciliationRun.Status.FAILED
    assert receiver.titles("stopped") == ["tradingstate: reconciliation stopped for authx"] * 2
    assert stopped_state("authx") == "stopped"


def test_d4_config_enabled_changes_go_through_the_audited_enable_service(receiver, tmp_path):
    # given: an account loaded enabled from the configuration
    account = recover_accounts(write_config(tmp_path, enabled=True))
    assert account.enabled
    # when: the configuration disables it
    account = recover_accounts(write_config(tmp_path, enabled=False))
    # then: disabled through the service, audited as a disable with the loader as actor
    account.refresh_from_db()
    assert (account.enabled, account.disabled_reason) == (
        False,
        account_services.DISABLED_BY_SETTINGS,
    )
    assert_audited(account, action="account.disable", actor=RECOVER,
                   reason="loaded from configuration", after={"enabled": False})  # fmt: skip
    # when: the configuration enables it again: it disabled it, so it may enable it
    account = recover_accounts(write_config(tmp_path, enabled=True))
    account.refresh_from_db()
    assert (account.enabled, account.disabled_reason) == (True, "")
    assert_audited(account, action="account.enable", actor=RECOVER,
                   reason="loaded from configuration", after={"enabled": True})  # fmt: skip
    # no stop was ever alerted, so nothing is sent and the alert state is "running"
    assert receiver.messages == []
    assert stopped_state("authx") == "running"


def test_d4_a_new_account_disabled_in_the_config_records_why(tmp_path):
    account = recover_accounts(write_config(tmp_path, enabled=False))
    assert (account.enabled, account.disabled_reason) == (
        False,
        account_services.DISABLED_BY_SETTINGS,
    )
    assert_audited(account, action="account.create", actor=RECOVER, after={"enabled": False})


# --- D5 / D6: webhooks ---------------------------------------------------------------------
class WebhookReceiver:
    """A loopback webhook like test_notifications.Receiver that records every request
    (method, path, headers, body) and answers by path: ``/hook`` 200, ``/moved/<code>`` a
    redirect to ``/landing``; each entry of ``delays`` holds one answer back that long."""

    def __init__(self):
        self.requests: list[dict] = []
        self.delays: list[float] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def handle_any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                receiver.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(body) if body else None,
                    }
                )
                if receiver.delays:
                    time.sleep(receiver.delays.pop(0))
                if self.path.startswith("/moved/"):
                    self.send_response(int(self.path.rsplit("/", 1)[1]))
                    self.send_header("Location", "/landing")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            do_GET = do_POST = handle_any

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def webhook(monkeypatch):
    monkeypatch.setattr(Conf, "SYNC", True)
    rx = WebhookReceiver()
    yield rx
    rx.close()


def use_channel(settings, url: str, **fields) -> None:
    # model_copy: set fields without validation (the test of a field the model gained)
    channel = NotificationChannelConfig(name="hook", url=url).model_copy(update=fields)
    settings.TRADINGSTATE = settings.TRADINGSTATE.model_copy(update={"notifications": [channel]})


def emit_one(state: str = "active") -> Notification:
    notification_emit(event="killswitch", key="global", state=state, title="halt", body="b")
    return Notification.objects.get(state=state)


def retry_now(row: Notification) -> None:
    Notification.objects.filter(pk=row.pk).update(
        next_attempt_at=timezone.now() - timedelta(seconds=10)
    )
    assert notifications_send_due() == 1
    row.refresh_from_db()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_d5_a_redirect_is_a_retried_failure_never_sent(webhook, settings, status):
    # given: a webhook that answers with a redirect
    use_channel(settings, f"json://127.0.0.1:{webhook.port}/moved/{status}")
    # when: a message is sent
    row = emit_one()
    # then: not "sent": a failure to retry, saying what happened; the redirect was not
    # followed (no bodiless GET to the new address)
    row.refresh_from_db()
    assert (row.outcome, row.attempts) == ("retrying", 1)
    assert f"HTTP {status}" in row.last_error and "redirect" in row.last_error
    assert [(r["method"], r["path"]) for r in webhook.requests] == [("POST", f"/moved/{status}")]
    # and again on the retry, then given up: never recorded as sent
    retry_now(row)
    assert row.outcome == "retrying" and row.attempts == 2 and row.sent_at is None


def test_d6_a_late_answer_is_recorded_as_timed_out_and_resent_with_the_same_key(webhook, settings):
    # given: a channel that waits 1 s, and a receiver that answers after 2 s the first time
    use_channel(settings, f"json://127.0.0.1:{webhook.port}/hook", timeout_seconds=1)
    webhook.delays = [2.0]
    # when: the message is sent
    started = time.monotonic()
    row = emit_one()
    # then: the send gave up after the channel's timeout, recorded as what it may be
    assert time.monotonic() - started < 1.9
    row.refresh_from_db()
    assert row.outcome == "retrying"
    assert "timed out after 1 s" in row.last_error
    assert "may have been delivered" in row.last_error
    # when: the retry is answered in time
    retry_now(row)
    assert row.outcome == "sent"
    # then: both deliveries carry the notification's id as the idempotency key, in the
    # headers and in the body, so the receiver can drop the duplicate
    assert len(webhook.requests) == 2
    for request in webhook.requests:
        assert request["headers"]["Idempotency-Key"] == str(row.pk)
        assert request["body"]["notification_id"] == row.pk
        assert request["body"]["title"] == "halt" and request["body"]["message"] == "b"
        assert request["body"]["version"] == "1.0" and request["body"]["type"] == "info"


def test_d6_channel_timeout_is_configured_in_toml_and_bounded(tmp_path):
    path = tmp_path / "hooks.toml"
    channel = '[[notifications]]\nname = "h"\nurl = "json://127.0.0.1/h"\n'
    path.write_text(channel)
    assert load_config(path).notifications[0].timeout_seconds == 10
    path.write_text(channel + "timeout_seconds = 20\n")
    assert load_config(path).notifications[0].timeout_seconds == 20
    path.write_text(channel + "timeout_seconds = 0\n")
    with pytest.raises(ConfigError, match=r"notifications\.0\.timeout_seconds"):
        load_config(path)


def test_webhook_failures_never_record_the_url_secret(webhook, settings):
    # given: a channel whose URL carries a secret query parameter, on a port nobody serves
    webhook.close()
    use_channel(settings, f"json://127.0.0.1:{webhook.port}/hook?-token=SUPERSECRET123")
    row = emit_one()
    row.refresh_from_db()
    assert row.outcome == "retrying" and row.last_error
    assert "SUPERSECRET123" not in row.last_error


# --- D8: exit codes of `reconcile` -----------------------------------------------------------
EX_USAGE = 64  # docs/runbooks/desync.md, "Force a pass now"
EX_UNAVAILABLE = 69


def manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=BASE_DIR, capture_output=True,
                          text=True, timeout=120)  # fmt: skip


@pytest.mark.parametrize(
    "args", [["--account", "paper-demo", "--all"], ["--acount", "paper-demo"], ["--interval", "x"]]
)
def test_d8_bad_arguments_exit_64_not_a_pass_status(args):
    result = manage("reconcile", *args)
    assert result.returncode == EX_USAGE, result.stderr
    assert "usage: manage.py reconcile" in result.stderr and "error:" in result.stderr


def test_d8_no_account_named_an_unknown_or_a_disabled_account():
    from django.core.management import CommandError, call_command

    stopped = ExchangeAccount.objects.create(
        name="stopped", enabled=False, disabled_reason="authentication failed: x"
    )
    for kwargs, code, text in [
        ({}, EX_USAGE, "--account NAME, or use --all"),
        ({"account": "nope"}, EX_USAGE, "no account named 'nope'"),
        ({"account": "paper-demo", "all": True}, EX_USAGE, "not allowed with argument"),
        ({"account": stopped.name}, EX_UNAVAILABLE, "is disabled"),
    ]:
        with pytest.raises(CommandError, match=text) as exc:
            call_command("reconcile", **kwargs)
        assert exc.value.returncode == code, (kwargs, exc.value.returncode)
