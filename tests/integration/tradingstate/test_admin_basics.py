import pytest
from django.urls import reverse

from tests.factories import OrderFactory
from tradingstate.models import AuditEntry
from tradingstate.services import position_set

pytestmark = pytest.mark.django_db

MODELS = [
    "exchangeaccount",
    "instrument",
    "order",
    "fill",
    "position",
    "balance",
    "auditentry",
    "botprofile",
    "paperorder",
    "paperposition",
    "paperbalance",
]


@pytest.mark.parametrize("model", MODELS)
def test_every_model_listed(client, staff_user, model):
    client.force_login(staff_user)
    resp = client.get(reverse(f"admin:tradingstate_{model}_changelist"))
    assert resp.status_code == 200


def test_state_is_read_only_and_undeletable(client, staff_user, account, bot_actor):
    client.force_login(staff_user)
    order = OrderFactory(account=account)
    position = position_set(account=account, symbol="BTC/USDT", qty="1", actor=bot_actor)
    entry = AuditEntry.objects.get(action="position.set", target_id=str(position.pk))
    for model, pk in (("order", order.pk), ("auditentry", entry.pk)):
        assert (
            client.get(reverse(f"admin:tradingstate_{model}_delete", args=[pk])).status_code == 403
        )
        assert client.get(reverse(f"admin:tradingstate_{model}_add")).status_code == 403
        # the change page only shows, never saves
        resp = client.post(reverse(f"admin:tradingstate_{model}_change", args=[pk]), {})
        assert resp.status_code == 403
    listing = client.get(reverse("admin:tradingstate_order_changelist"))
    assert b"delete_selected" not in listing.content


def test_audit_filtered_by_target(client, staff_user, account, bot_actor):
    client.force_login(staff_user)
    pos = position_set(account=account, symbol="BTC/USDT", qty="1", actor=bot_actor)
    url = reverse("admin:tradingstate_auditentry_changelist")
    resp = client.get(url, {"target_type": "position", "target_id": pos.pk})
    assert resp.status_code == 200
    assert b"position.set" in resp.content
