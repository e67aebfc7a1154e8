import logging

import pytest
from django.db import OperationalError
from django.db.models.query import QuerySet

from killswitch import services
from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.selectors import killswitch_state, killswitch_status
from killswitch.services import (
    ALREADY_ACTIVE,
    ALREADY_INACTIVE,
    STATE_UNAVAILABLE,
    killswitch_activate,
    killswitch_deactivate,
    order_guard,
    order_register_guarded,
    trading_allowed,
)
from tests.audit import assert_audited
from tests.factories import AccountFactory
from tradingstate.errors import TradingHalted, ValidationFailed
from tradingstate.models import AuditEntry, Order
from tradingstate.services.audit import REASON_REQUIRED

pytestmark = pytest.mark.django_db

REASON = "Manual position correction in progress"


def global_row():
    return KillSwitch.objects.get(account__isnull=True)


def order_kwargs(account, actor, coid="abc123"):
    return {
        "account": account,
        "client_order_id": coid,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.05",
        "price": "50000",
        "actor": actor,
    }


# --- activate / deactivate ------------------------------------------------------------------
def test_activate_sets_state_writes_event_and_audit(staff_actor):
    # when
    result = killswitch_activate(reason=REASON, actor=staff_actor)
    # then
    assert result.changed and result.active and result.scope == "global"
    row = global_row()
    assert row.active and row.reason == REASON and row.activated_by == "alice"
    assert row.activated_at is not None and row.version == 2
    event = KillSwitchEvent.objects.get()
    assert event.action == "activate" and event.account is None
    assert (event.actor_type, event.actor_name, event.reason) == ("user", "alice", REASON)
    assert_audited(
        row,
        action="killswitch.activate",
        actor=staff_actor,
        reason=REASON,
        before={"active": False, "reason": ""},
        after={"active": True, "reason": REASON, "activated_by": "alice"},
    )


def test_activate_logs_critical_contract_line(staff_actor, caplog):
    with caplog.at_level(logging.INFO, logger="killswitch"):
        killswitch_activate(reason=REASON, actor=staff_actor)
    records = [r for r in caplog.records if r.name == "killswitch"]
    assert any(
        r.levelno == logging.CRITICAL
        and r.getMessage() == f"KILL SWITCH ACTIVATED: reason={REASON} triggered_by=alice"
        for r in records
    ), [r.getMessage() for r in records]


def test_deactivate_logs_warning_contract_line(staff_actor, caplog):
    killswitch_activate(reason=REASON, actor=staff_actor)
    with caplog.at_level(logging.INFO, logger="killswitch"):
        killswitch_deactivate(actor=staff_actor, reason="fixed")
    [line] = [r for r in caplog.records if "KILL SWITCH DEACTIVATED" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage().startswith("KILL SWITCH DEACTIVATED")
    assert "reason=fixed triggered_by=alice" in line.getMessage()


def test_log_line_stays_on_one_line(staff_actor, caplog):
    with caplog.at_level(logging.INFO, logger="killswitch"):
        killswitch_activate(reason="a\nFAKE LINE", actor=staff_actor)
    [line] = [r for r in caplog.records if "ACTIVATED" in r.getMessage()]
    assert "\n" not in line.getMessage()


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_activate_requires_reason(staff_actor, reason):
    with pytest.raises(ValidationFailed) as exc:
        killswitch_activate(reason=reason, actor=staff_actor)
    assert exc.value.message == REASON_REQUIRED
    assert not KillSwitch.objects.filter(active=True).exists()
    assert not KillSwitchEvent.objects.exists() and not AuditEntry.objects.exists()


def test_activate_twice_is_a_clear_noop(staff_actor, caplog):
    killswitch_activate(reason=REASON, actor=staff_actor)
    caplog.clear()
    # when
    with caplog.at_level(logging.INFO, logger="killswitch"):
        again = killswitch_activate(reason="another", actor=staff_actor)
    # then
    assert not again.changed and again.active
    assert again.message == ALREADY_ACTIVE.format(scope="global")
    assert global_row().reason == REASON
    assert KillSwitchEvent.objects.count() == 1
    assert AuditEntry.objects.filter(action="killswitch.activate").count() == 1
    assert not any(r.exc_info for r in caplog.records)
    assert not any("ACTIVATED" in r.getMessage() for r in caplog.records)


def test_deactivate_inactive_is_a_clear_noop(staff_actor):
    result = killswitch_deactivate(actor=staff_actor)
    assert not result.changed and not result.active
    assert result.message == ALREADY_INACTIVE.format(scope="global")
    assert not KillSwitchEvent.objects.exists() and not AuditEntry.objects.exists()


def test_deactivate_clears_state_and_audits(staff_actor, bot_actor):
    killswitch_activate(reason=REASON, actor=bot_actor)
    # when
    result = killswitch_deactivate(actor=staff_actor, reason="position fixed")
    # then
    assert result.changed and not result.active
    row = global_row()
    assert not row.active and row.reason == "" and row.version == 3
    assert list(KillSwitchEvent.objects.order_by("id").values_list("action", "actor_name")) == [
        ("activate", "alpha-bot"),
        ("deactivate", "alice"),
    ]
    assert_audited(row, action="killswitch.activate", actor=bot_actor, reason=REASON)
    assert_audited(
        row,
        action="killswitch.deactivate",
        actor=staff_actor,
        reason="position fixed",
        before={"active": True, "reason": REASON},
        after={"active": False},
    )


def test_deactivate_without_reason_is_allowed(staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    assert killswitch_deactivate(actor=staff_actor).changed
    assert KillSwitchEvent.objects.filter(action="deactivate", reason="").exists()


def test_account_halt_is_separate_from_global(account, staff_actor):
    other = AccountFactory(name="other")
    # when
    result = killswitch_activate(reason="venue incident", actor=staff_actor, account=account)
    # then
    assert result.scope == "account" and result.account == "test-acct"
    row = KillSwitch.objects.get(account=account)
    assert row.active and not global_row().active
    assert_audited(row, action="killswitch.activate", actor=staff_actor, reason="venue incident")
    assert not trading_allowed(account).allowed
    assert trading_allowed(other).allowed
    status = killswitch_state()
    assert not status.active and [h.account for h in status.halted_accounts] == ["test-acct"]
    assert killswitch_status(account).active
    assert killswitch_status(account).reason == "venue incident"
    assert not killswitch_status(other).active


def test_one_row_per_scope(account, staff_actor):
    killswitch_activate(reason="x", actor=staff_actor, account=account)
    killswitch_deactivate(actor=staff_actor, account=account)
    killswitch_activate(reason="y", actor=staff_actor, account=account)
    killswitch_activate(reason="z", actor=staff_actor)
    assert KillSwitch.objects.filter(account=account).count() == 1
    assert KillSwitch.objects.filter(account__isnull=True).count() == 1


# --- the guard ------------------------------------------------------------------------------
def test_guard_allows_when_inactive(account):
    decision = trading_allowed(account)
    assert decision.allowed and decision.reason == ""


def test_guard_refuses_globally(account, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    decision = trading_allowed(account)
    assert (decision.allowed, decision.reason, decision.scope) == (False, REASON, "global")
    assert not trading_allowed(None).allowed


def test_guard_prefers_global_reason(account, staff_actor):
    killswitch_activate(reason="acct", actor=staff_actor, account=account)
    killswitch_activate(reason="everything", actor=staff_actor)
    decision = trading_allowed(account)
    assert (decision.reason, decision.scope) == ("everything", "global")


def test_guard_sees_deactivation_immediately(account, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    assert not trading_allowed(account).allowed
    killswitch_deactivate(actor=staff_actor)
    assert trading_allowed(account).allowed


def test_guard_uses_one_statement(account, staff_actor, django_assert_max_num_queries):
    killswitch_activate(reason=REASON, actor=staff_actor, account=account)
    with django_assert_max_num_queries(1):
        trading_allowed(account)
    with django_assert_max_num_queries(2):
        trading_allowed(account.pk)


def test_guard_accepts_account_id(account, staff_actor):
    killswitch_activate(reason="acct", actor=staff_actor, account=account)
    assert not trading_allowed(account.pk).allowed


def test_guard_fails_closed_when_query_raises(account, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise OperationalError("could not connect to server")

    monkeypatch.setattr(QuerySet, "_fetch_all", boom)
    # when
    with caplog.at_level(logging.ERROR, logger="killswitch"):
        decision = trading_allowed(account)
    # then
    assert not decision.allowed and decision.scope == "unavailable"
    assert decision.reason == STATE_UNAVAILABLE.format(error="OperationalError")
    assert decision.reason.startswith("kill switch state unavailable: ")
    assert any(r.levelno == logging.ERROR for r in caplog.records if r.name == "killswitch")


def test_guard_fails_closed_on_any_error(account, monkeypatch):
    monkeypatch.setattr(services, "_halt_rows", lambda *a, **k: 1 / 0)
    decision = trading_allowed(account)
    assert not decision.allowed and "ZeroDivisionError" in decision.reason


def test_order_guard_raises_trading_halted(account, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor)
    with pytest.raises(TradingHalted) as exc:
        order_guard(account)
    assert exc.value.code == "kill_switch_active" and exc.value.http_status == 423
    assert exc.value.message == REASON and exc.value.extra["reason"] == REASON


def test_order_guard_passes_when_inactive(account):
    assert order_guard(account).allowed


def test_order_register_guarded_registers_when_allowed(account, bot_actor):
    order, created = order_register_guarded(**order_kwargs(account, bot_actor))
    assert created and order.client_order_id == "abc123"
    assert_audited(order, action="order.register", actor=bot_actor)


def test_order_register_guarded_refuses_when_active(account, bot_actor, staff_actor):
    killswitch_activate(reason=REASON, actor=staff_actor, account=account)
    with pytest.raises(TradingHalted):
        order_register_guarded(**order_kwargs(account, bot_actor))
    assert not Order.objects.exists()
    assert not AuditEntry.objects.filter(action="order.register").exists()


def test_retry_of_an_order_accepted_before_the_halt_gets_it_back(account, bot_actor, staff_actor):
    # given an order registered before the halt
    first, _ = order_register_guarded(**order_kwargs(account, bot_actor))
    killswitch_activate(reason=REASON, actor=staff_actor)
    # when the bot retries the same registration (its first answer was lost)
    again, created = order_register_guarded(**order_kwargs(account, bot_actor))
    # then it learns the order exists; a new client_order_id is still refused
    assert not created and again.pk == first.pk
    other = {**order_kwargs(account, bot_actor), "client_order_id": "new-one"}
    with pytest.raises(TradingHalted):
        order_register_guarded(**other)
    assert Order.objects.count() == 1


def test_order_register_guarded_refuses_when_state_unreadable(account, bot_actor, monkeypatch):
    def boom(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "_halt_rows", boom)
    # the one-statement guard (PostgreSQL) cannot read the state either
    monkeypatch.setattr(services, "_guard_sql", lambda: "SELECT active FROM no_such_table")
    with pytest.raises(TradingHalted) as exc:
        order_register_guarded(**order_kwargs(account, bot_actor))
    assert exc.value.message.startswith("kill switch state unavailable: ")
    assert not Order.objects.exists()


def test_status_updates_and_fills_go_on_while_active(account, bot_actor, staff_actor):
    # given an order registered before the halt
    order, _ = order_register_guarded(**order_kwargs(account, bot_actor))
    killswitch_activate(reason=REASON, actor=staff_actor)
    # when the bot reports its progress
    from tradingstate.services import order_transition

    order_transition(
        account=account,
        client_order_id=order.client_order_id,
        to_status="submitted",
        actor=bot_actor,
    )
    # then
    order.refresh_from_db()
    assert order.status == "submitted"
