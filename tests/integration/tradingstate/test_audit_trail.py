import ast
from decimal import Decimal
from pathlib import Path

import pytest
from django.apps import apps
from django.db import DatabaseError, connection, transaction

from tests.factories import OrderFactory
from tests.pg import requires_postgres
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Order
from tradingstate.services import order_transition, position_set
from tradingstate.services.audit import audit_build

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
    "tradingstate.papermarkprice",
}
EXEMPT = {
    "reconciliation.reconciliationrun": "the record of a pass itself; its repairs are audited",
    "reconciliation.repair": "the record of a repair; the repaired row's AuditEntry says it",
    "reconciliation.workerheartbeat": "liveness bookkeeping, no trading state",
    "tradingstate.auditentry": "the audit trail itself (append-only)",
    "tradingstate.ratecounter": "the API rate limit's request counts, no trading state",
    "tradingstate.notification": "a record of a message sent about an audited change",
    "tradingstate.notificationstate": "alert bookkeeping: the last state notified per alert",
    "reconciliation.metricsrollup": "counter totals folded from runs/discrepancies/repairs",
    "reconciliation.rollupwatermark": "the rollups' bookkeeping",
    "tradingstate.instrument": "market metadata copied from the exchange; not trading state",
    "tradingstate.botprofile": "credentials/grants; user management is Django auth's concern",
    "tradingstate.paperorder": "the simulated exchange's side, not our state of record",
    "tradingstate.paperposition": "the simulated exchange's side, not our state of record",
    "tradingstate.paperbalance": "the simulated exchange's side, not our state of record",
    "tradingstate.markprice": "market data (the venue's prices), refreshed by every pass",
    "tradingstate.pnlsnapshot": "derived figures recorded hourly from the audited rows",
    "tradingstate.papertrade": "the simulated exchange's side; each is written with its "
    "paper.trade AuditEntry by tradingstate.services.paper",
    "killswitch.killswitchevent": "the kill switch's own append-only history, written beside "
    "the killswitch.* AuditEntry in the same transaction",
}
THIRD_PARTY = {"admin", "auth", "contenttypes", "sessions", "django_q", "knox", "axes"}


def test_every_model_is_audited_or_exempt():
    ours = {m._meta.label_lower for m in apps.get_models() if m._meta.app_label not in THIRD_PARTY}
    unclassified = ours - set(AUDITED) - set(EXEMPT)
    assert not unclassified, f"classify these models as audited or exempt: {unclassified}"
    assert not (set(AUDITED) & set(EXEMPT))


# --- every action is a declared AuditEntry.Action, written by a typed writer ----------------
ROOT = Path(__file__).resolve().parents[3]
APPS = ("tradingstate", "killswitch", "reconciliation")
WRITERS = "tradingstate/services/events.py"  # the typed writers: one per event family
# the only modules that may construct an AuditEntry or call the low-level builder
BUILDERS = {"tradingstate/services/audit.py", WRITERS}
DECLARATION = "tradingstate/models.py"


def _sources():
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if "/migrations/" not in rel:
                yield rel, ast.parse(path.read_text(), filename=rel)


def _called_name(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")


def test_audit_entries_are_built_only_by_the_typed_writers():
    offenders = []
    for rel, tree in _sources():
        if rel in BUILDERS:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _called_name(node) in ("AuditEntry", "audit_build"):
                offenders.append(f"{rel}:{node.lineno} {_called_name(node)}(...)")
            if isinstance(node, ast.Attribute) and node.attr in ("audit_build", "audit_record"):
                offenders.append(f"{rel}:{node.lineno} .{node.attr}")
    assert not offenders, "write audit entries through tradingstate.services.events: " + str(
        offenders
    )


def _audit_action_refs(tree: ast.Module):
    """``AuditEntry.Action.NAME``, and ``Action.NAME`` where the module binds
    ``Action = AuditEntry.Action`` (other models' Action choices are not the audit's)."""
    aliased = any(
        isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["Action"]
        and ast.unparse(node.value) == "AuditEntry.Action"
        for node in tree.body
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.isupper():
            owner = ast.unparse(node.value)
            if owner == "AuditEntry.Action" or (aliased and owner == "Action"):
                yield node


def test_every_action_used_is_a_declared_choice_and_every_choice_is_written():
    declared = {member.name: member.value for member in AuditEntry.Action}
    used, undeclared, literals = set(), [], []
    for rel, tree in _sources():
        for node in _audit_action_refs(tree):
            if node.attr not in declared:
                undeclared.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
            elif rel == WRITERS:
                used.add(node.attr)
        for node in ast.walk(tree):
            # a free-text action: the value of a declared action written as a string
            if (
                rel != DECLARATION
                and isinstance(node, ast.Constant)
                and node.value in declared.values()
            ):
                literals.append(f"{rel}:{node.lineno} {node.value!r}")
    assert not undeclared, f"not AuditEntry.Action members: {undeclared}"
    assert not literals, f"use AuditEntry.Action members, not strings: {literals}"
    assert used == set(declared), f"declared but no writer records: {set(declared) - used}"


def test_an_undeclared_action_is_refused_before_it_is_written(account):
    actor = Actor.system("tests")
    for action in ("order.register", "order.cancel"):  # a declared value as text; a new one
        with pytest.raises(TypeError, match=r"not an AuditEntry\.Action member"):
            audit_build(actor=actor, action=action, target=account)
    entry = audit_build(actor=actor, action=AuditEntry.Action.ACCOUNT_UPDATE, target=account)
    assert entry.action == "account.update" and AuditEntry.objects.count() == 0


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
