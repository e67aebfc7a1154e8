import time

import pytest
from django.core.management import call_command
from prometheus_client.parser import text_string_to_metric_families

from killswitch.services import killswitch_activate
from tradingstate.actors import Actor

pytestmark = pytest.mark.django_db


def scrape(client) -> dict:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(resp.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def test_metrics_after_the_demo_pass(client, django_assert_max_num_queries):
    call_command("demo")
    call_command("reconcile", "--account", "paper-demo")
    killswitch_activate(reason="drill", actor=Actor.system("test"))
    with django_assert_max_num_queries(10):
        m = scrape(client)
    acct = ("account", "paper-demo")
    assert m[("tradingstate_reconciliation_pass_duration_seconds_count", (acct,))] == 1
    assert (
        m[("tradingstate_reconciliation_pass_duration_seconds_bucket", (acct, ("le", "+Inf")))] == 1
    )
    assert m[("tradingstate_discrepancies_total", (acct, ("type", "position_mismatch")))] == 1
    assert m[("tradingstate_discrepancies_open", (acct, ("type", "stale_local_order")))] == 0
    assert m[("tradingstate_discrepancies_total", (acct, ("type", "missing_fill")))] == 1
    assert (  # the runbook's three and the demo's missed fill (issue 14)
        m[("tradingstate_repairs_total", (acct, ("actor_type", "system"), ("status", "applied")))]
        == 4
    )
    assert m[("tradingstate_killswitch_active", (("account", ""), ("scope", "global")))] == 1
    assert m[("tradingstate_account_enabled", (acct,))] == 1
    assert abs(m[("tradingstate_last_pass_timestamp_seconds", (acct,))] - time.time()) < 60
