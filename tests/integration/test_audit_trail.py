from decimal import Decimal

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from tests.factories import OrderFactory
from tests.pg import requires_postgres
from tradingstate.models import AuditEntry, Order
from tradingstate.services import order_transition, position_set

pytestmark = pytest.mark.django_db

# Every model must be audited (written only by services that record an AuditEntry) or be
# listed here with the reason it is exempt. A new model fails this test until it is classified.
AUDITED = {
    "tradingstate.exchangeaccount",
    "tradingstate.order",
    "tradingstate.fill",
    "tradingstate.position",
    "tradingstate.balance",
    "killswitch.killswitch",
    "reconciliation.discrepancy",
}
EXEMPT = {
    "reconciliation.reconciliationrun": "the record of a pass itself; its repairs are audited",
    "reconciliation.repair": "the record of a repair; the repaired row's AuditEntry says it",
    "reconciliation.workerheartbeat": "liveness bookkeeping, no trading state",
    "tradingstate.auditentry": "the audit trail itself (append-only)",
    "tradingstate.notification": "a record of a message sent about an audited change",
    "tradingstate.notificationstate": "alert bookkeeping: the last state notified per alert",
    "reconciliation.metricsrollup": "counter totals folded from runs/discrepancies/repairs",
    "reconciliation.rollupwatermark": "the rollups' bookkeeping",
    "tradingstate.instrument": "market metadata copied from the exchange; not trading state",
    "tradingstate.botprofile": "credentials/grants; user management is Django auth's concern",
    "tradingstate.paperorder": "the simulated exchange's side, not our state of record",
    "tradingstate.paperposition": "the simulated exchange's side, not our state of record",
    "tradingstate.paperbalance": "the simulated exchange's side, not our state of record",
    "killswitch.killswitchevent": "the kill switch's own append-only history, written beside "
    "the killswitch.* AuditEntry in the same transaction",
}
THIRD_PARTY = {"admin", "auth", "contenttypes", "sessions", "django_q", "knox", "axes"}


def test_every_model_is_audited_or_exempt():
    ours = {m._meta.label_lower for m in apps.get_models() if m._meta.app_label not in THIRD_PARTY}
    unclassified = ours - set(AUDITED) - set(EXEMPT)
    assert not unclassified, f"classify these models as audited or exempt: {unclassified}"
    assert not (set(AUDITED) & set(EXEMPT))


def test_audit_update_refused_by_database(account, bot_actor):
    position_set(account=account, symbol="BTC/USDT", qty="1", actor=bot_actor)
    entry = AuditEntry.objects.get()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(reason="tampered")
    entry.refresh_from_db()
    assert entry.reason == ""


@requires_postgres
def test_audit_delete_refused_on_postgres(account, bot_actor):
    position_set(account=account, symbol="BTC/USDT", qty="1", actor=bot_actor)
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cur,
    ):
        cur.execute("DELETE FROM tradingstate_auditentry")
    assert AuditEntry.objects.count() == 1


def test_write_and_audit_share_one_transaction(account, bot_actor, monkeypatch):
    OrderFactory(account=account, client_order_id="o1", status="pending")

    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(AuditEntry, "save", broken)
    with pytest.raises(RuntimeError):
        order_transition(
            account=account, client_order_id="o1", to_status="submitted", actor=bot_actor
        )
    assert Order.objects.get().status == "pending"  # rolled back with the failed audit


def test_decimal_round_trip_full_precision(account):
    big = Decimal("12345678901234567890.123456789012345678")
    tiny = Decimal("0.000000000000000001")
    order = OrderFactory(
        account=account, client_order_id="p", quantity=big, price=tiny, filled_qty=tiny
    )
    order.refresh_from_db()
    assert order.quantity == big and order.price == tiny and order.filled_qty == tiny
    assert isinstance(order.quantity, Decimal)
    assert order.remaining_qty == big - tiny
