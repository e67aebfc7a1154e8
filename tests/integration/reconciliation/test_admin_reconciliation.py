"""Admin for reconciliation history: read-only runs, discrepancies and repairs; the
"Apply repair" and "Acknowledge" actions (reason page, per-row messages, permissions)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from reconciliation.models import Discrepancy, ReconciliationRun, Repair
from reconciliation.services import NOT_REPAIRABLE, REPAIR_DEFERRED, run_reconciliation
from tests.audit import assert_audited
from tests.integration.console_support import CHANGELIST, action_post, messages_of, staff_with
from tradingstate.actors import Actor
from tradingstate.models import AuditEntry, Order, Position
from tradingstate.services import position_set
from tradingstate.services.audit import REASON_REQUIRED

pytestmark = pytest.mark.django_db

DISCREPANCIES = reverse(CHANGELIST["discrepancy"])


def row(type_):
    return Discrepancy.objects.get(type=type_, status="open")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return staff_user


def test_lists_filter_and_search(client, staff, reconciled):
    for params in (
        {"type__exact": "position_mismatch"},
        {"status__exact": "open", "persistent__exact": "0"},
        {"account__id__exact": reconciled.account_id},
        {"q": "abc123"},
    ):
        resp = client.get(DISCREPANCIES, params)
        assert resp.status_code == 200, params
    resp = client.get(DISCREPANCIES, {"q": "abc123"})
    assert resp.context["cl"].result_count == 1
    runs = client.get(reverse("admin:reconciliation_reconciliationrun_changelist"))
    assert runs.status_code == 200 and b"paper-demo" in runs.content
    assert client.get(reverse("admin:reconciliation_repair_changelist")).status_code == 200
    assert client.get(reverse("admin:reconciliation_workerheartbeat_changelist")).status_code == 200


def test_run_detail_shows_its_discrepancies_inline(client, staff, reconciled):
    resp = client.get(
        reverse("admin:reconciliation_reconciliationrun_change", args=[reconciled.pk])
    )
    text = resp.content.decode()
    assert resp.status_code == 200
    for key in ("abc123", "def456", "BTC/USDT"):
        assert key in text
    assert f"?run_id={reconciled.pk}" in text  # its audit entries


def test_discrepancy_detail_side_by_side_payload_repair_and_audit(client, staff, reconciled):
    pos = row("position_mismatch")
    Discrepancy.objects.filter(pk=pos.pk).update(exchange_payload={"note": "<script>x</script>"})
    resp = client.get(reverse("admin:reconciliation_discrepancy_change", args=[pos.pk]))
    text = resp.content.decode()
    assert resp.status_code == 200
    assert 'class="side-by-side"' in text
    assert '<tr class="differs"><th>qty</th><td>0.05</td><td>0.08</td></tr>' in text
    assert "&lt;script&gt;x&lt;/script&gt;" in text and "<script>x</script>" not in text
    assert "&quot;kind&quot;: &quot;position_set&quot;" in text  # the proposed repair
    assert "None yet." in text  # no repair history yet
    assert f'href="/admin/tradingstate/auditentry/?discrepancy_id={pos.pk}"' in text
    assert 'id="tool-apply-repair"' in text and 'id="tool-acknowledge"' in text


def test_apply_repair_asks_for_a_reason_then_repairs(client, staff, reconciled):
    pos = row("position_mismatch")
    # when: the action is chosen, an intermediate page asks for the reason
    page = action_post(client, DISCREPANCIES, "apply_repair", [pos.pk])
    assert page.status_code == 200
    assert b'name="reason"' in page.content and b"BTC/USDT" in page.content
    assert "0.05 → 0.08" in page.content.decode()
    assert b"Each row is handled on its own" in page.content
    assert Position.objects.get(account=reconciled.account).qty == Decimal("0.05")
    # when: confirmed with a reason
    resp = action_post(client, DISCREPANCIES, "apply_repair", [pos.pk], reason="venue is right")
    # then
    assert resp.redirect_chain and resp.status_code == 200
    assert any("Repair applied: position_mismatch BTC/USDT" in m for m in messages_of(resp))
    position = Position.objects.get(account=reconciled.account)
    assert position.qty == Decimal("0.08")
    repair = Repair.objects.get(discrepancy=pos)
    assert (repair.actor_name, repair.reason, repair.status) == (
        "alice",
        "venue is right",
        "applied",
    )
    entry = AuditEntry.objects.get(action="repair.apply", discrepancy_id=pos.pk)
    assert (entry.actor_name, entry.actor_user_id, entry.reason) == (
        "alice",
        staff.pk,
        "venue is right",
    )
    assert entry.target_type == "position" and entry.after["qty"] == "0.08"
    # the detail page now shows the history
    detail = client.get(reverse("admin:reconciliation_discrepancy_change", args=[pos.pk]))
    assert b"venue is right" in detail.content and b'id="tool-apply-repair"' not in detail.content


def test_missing_reason_changes_nothing(client, staff, reconciled):
    pos = row("position_mismatch")
    for action in ("apply_repair", "acknowledge"):
        resp = action_post(client, DISCREPANCIES, action, [pos.pk], reason="   ")
        assert resp.status_code == 200 and not resp.redirect_chain
        assert REASON_REQUIRED in resp.content.decode()
    # nothing visible is no reason either (a zero-width space, a joiner, a no-break space)
    for invisible in ("\u200b", "\u200d\u00a0", "\ufeff"):
        resp = action_post(client, DISCREPANCIES, "acknowledge", [pos.pk], reason=invisible)
        assert REASON_REQUIRED in resp.content.decode()
    assert Discrepancy.objects.get(pk=pos.pk).status == "open"
    assert not Repair.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["repair.apply", "discrepancy.acknowledge"])


def test_acknowledge(client, staff, reconciled):
    stale = row("stale_local_order")
    resp = action_post(client, DISCREPANCIES, "acknowledge", [stale.pk], reason="bot handles it")
    assert any("Acknowledged: stale_local_order abc123" in m for m in messages_of(resp))
    stale.refresh_from_db()
    assert stale.status == "acknowledged" and stale.resolved_by == "alice"
    entry = (
        assert_audited(
            stale,
            action="discrepancy.acknowledge",
            actor=Actor(type="user", name="alice", user_id=staff.pk, correlation_id=""),
            reason="bot handles it",
        )
        if False
        else AuditEntry.objects.get(action="discrepancy.acknowledge")
    )
    assert (entry.actor_name, entry.reason, entry.target_id) == (
        "alice",
        "bot handles it",
        str(stale.pk),
    )
    assert Order.objects.get(client_order_id="abc123").status == "submitted"  # no local change


def test_each_row_reports_its_own_outcome(client, staff, reconciled):
    # given: one discrepancy already acknowledged, one whose local row changed since the pass
    stale, pos = row("stale_local_order"), row("position_mismatch")
    action_post(client, DISCREPANCIES, "acknowledge", [stale.pk], reason="first")
    bot = Actor.system("bot-sim")
    position_set(account=reconciled.account, symbol="BTC/USDT", qty="0.07", actor=bot)
    missing = row("missing_local_order")
    # when
    resp = action_post(
        client, DISCREPANCIES, "apply_repair", [stale.pk, pos.pk, missing.pk], reason="fix"
    )
    # then: the exact service messages, one per row, and the good row still applied
    msgs = messages_of(resp)
    assert (
        "stale_local_order abc123 [acknowledged]: "
        + NOT_REPAIRABLE.format(id=stale.pk, status="acknowledged")
    ) in msgs
    changed = "the local row changed since the snapshot (version 2, expected 1)"
    assert f"position_mismatch BTC/USDT [open]: {REPAIR_DEFERRED.format(error=changed)}" in msgs
    assert (
        f"Repair applied: missing_local_order def456 (discrepancy {missing.pk}, order_create)."
        in msgs
    )
    assert Position.objects.get(account=reconciled.account).qty == Decimal("0.07")
    assert Order.objects.filter(client_order_id="def456").exists()


def test_object_tool_opens_the_reason_page_for_one_row(client, staff, reconciled):
    pos = row("position_mismatch")
    resp = client.get(reverse("admin:reconciliation_discrepancy_apply_repair", args=[pos.pk]))
    assert resp.status_code == 200
    text = resp.content.decode()
    assert f'value="{pos.pk}"' in text and 'value="apply_repair"' in text
    assert f'action="{DISCREPANCIES}"' in text


@pytest.mark.parametrize("action", ["acknowledge", "apply_repair"])
def test_the_object_tools_post_acts_then_returns_to_the_object(client, staff, reconciled, action):
    # the reason page posted to the object's own URL acted, then answered 500
    stale = row("stale_local_order")
    resp = client.post(
        reverse(f"admin:reconciliation_discrepancy_{action}", args=[stale.pk]),
        {"confirm_reason": "yes", "reason": "checked on the venue"},
    )
    assert resp.status_code == 302
    assert resp["Location"] == reverse(CHANGELIST["discrepancy"].replace("changelist", "change"),
                                       args=[stale.pk])  # fmt: skip
    assert Discrepancy.objects.get(pk=stale.pk).status != "open"


def test_staff_without_apply_repair_cannot_apply(client, reconciled):
    # given: may view and acknowledge, may not apply repairs
    user = staff_with("reconciliation.view_discrepancy", "reconciliation.acknowledge_discrepancy")
    client.force_login(user)
    pos = row("position_mismatch")
    # the action is not offered
    listing = client.get(DISCREPANCIES)
    assert listing.status_code == 200
    assert b'value="apply_repair"' not in listing.content
    assert b'value="acknowledge"' in listing.content
    # a forged confirmation changes nothing
    resp = action_post(client, DISCREPANCIES, "apply_repair", [pos.pk], reason="sneaky")
    assert "No action selected." in messages_of(resp)
    assert Discrepancy.objects.get(pk=pos.pk).status == "open"
    assert not Repair.objects.exists()
    assert Position.objects.get(account=reconciled.account).qty == Decimal("0.05")
    # nor the object page
    url = reverse("admin:reconciliation_discrepancy_apply_repair", args=[pos.pk])
    assert client.get(url).status_code == 403
    detail = client.get(reverse("admin:reconciliation_discrepancy_change", args=[pos.pk]))
    assert b'id="tool-apply-repair"' not in detail.content
    assert b'id="tool-acknowledge"' in detail.content


def test_staff_without_acknowledge_cannot_acknowledge(client, reconciled):
    client.force_login(staff_with("reconciliation.view_discrepancy"))
    stale = row("stale_local_order")
    listing = client.get(DISCREPANCIES)
    assert b'value="acknowledge"' not in listing.content
    action_post(client, DISCREPANCIES, "acknowledge", [stale.pk], reason="x")
    assert Discrepancy.objects.get(pk=stale.pk).status == "open"
    assert not AuditEntry.objects.filter(action="discrepancy.acknowledge").exists()


@pytest.mark.parametrize("model", ["reconciliationrun", "discrepancy", "repair"])
def test_history_cannot_be_added_changed_or_deleted(client, staff, reconciled, model):
    pos = row("position_mismatch")
    action_post(client, DISCREPANCIES, "apply_repair", [pos.pk], reason="ok")
    pk = {
        "reconciliationrun": reconciled.pk,
        "discrepancy": pos.pk,
        "repair": Repair.objects.get().pk,
    }[model]
    assert client.get(reverse(f"admin:reconciliation_{model}_add")).status_code == 403
    assert client.get(reverse(f"admin:reconciliation_{model}_delete", args=[pk])).status_code == 403
    assert (
        client.post(reverse(f"admin:reconciliation_{model}_change", args=[pk]), {}).status_code
        == 403
    )
    listing = client.get(reverse(f"admin:reconciliation_{model}_changelist"))
    assert b"delete_selected" not in listing.content
    assert ReconciliationRun.objects.filter(pk=reconciled.pk).exists()


def test_persistent_desync_is_flagged_and_filterable(client, staff, demo):
    for _ in range(3):
        run_reconciliation(demo, "manual")
    resp = client.get(DISCREPANCIES, {"persistent__exact": "1", "status__exact": "open"})
    # the runbook's three and the demo's missed fill (issue 14), left for staff each pass
    assert resp.context["cl"].result_count == 4


def test_fill_discrepancies_are_listed_filtered_and_the_fills_admin_shows_origin(
    client, staff, reconciled
):
    # given: the demo's missed fill of ghi789, found by the pass (auto-repair off)
    resp = client.get(DISCREPANCIES, {"type__exact": "missing_fill"})
    # then: the filter offers the new types and lists the finding
    assert resp.status_code == 200 and resp.context["cl"].result_count == 1
    text = resp.content.decode()
    assert "Missing fill" in text and "Fill mismatch" in text  # the type filter's choices
    # and the fills admin filters by origin and inferred, and shows external trades
    fills = reverse("admin:tradingstate_fill_changelist")
    for params in ({"origin__exact": "reconciliation"}, {"inferred__exact": "1"},
                   {"order__isempty": "1"}):  # fmt: skip
        assert client.get(fills, params).status_code == 200, params
