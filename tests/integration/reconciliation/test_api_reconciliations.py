"""Reconciliation runs and discrepancies over the API."""

import pytest
from django.db import OperationalError

from reconciliation.models import Discrepancy, ReconciliationRun
from reconciliation.services import wait_budget
from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    override_api_config,
    two_accounts,
    url,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, b = two_accounts()
    client, user = make_bot("alpha", a)
    return a, b, client, user


@pytest.fixture
def enqueued(monkeypatch):
    """Record what would be handed to the django-q2 cluster instead of enqueueing it."""
    calls = []
    monkeypatch.setattr(
        "reconciliation.passes.triggers.enqueue_pass",
        lambda account_id, trigger, run_id=None: calls.append((account_id, trigger, run_id)),
    )
    return calls


def test_trigger_queues_a_run_and_returns_its_id(
    setup, enqueued, django_capture_on_commit_callbacks
):
    a, _, client, user = setup
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url(a, "reconciliations"), {}, format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    run = ReconciliationRun.objects.get(pk=body["id"])
    assert body["status"] == "queued" and body["trigger"] == "api"
    assert run.requested_by == user.username and run.account == a
    assert enqueued == [(a.pk, "api", run.pk)]


@pytest.mark.django_db(transaction=True)
def test_trigger_with_wait_runs_the_pass_without_a_worker(setup, enqueued, settings):
    # real commits: the pass runs in the request's process, on its own connection
    a, _, client, _ = setup
    override_api_config(settings, reconcile_wait_seconds=10)
    response = client.post(url(a, "reconciliations") + "?wait=true", {}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "completed"
    assert response.json()["finished_at"] is not None
    assert enqueued == []  # nothing was handed to the cluster


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("server_wait", "query"),
    [
        (1, "?wait=true"),  # the server's own wait (1 s) runs out
        # the server would wait 10 s: only the request's timeout (0.5 s) makes it a 202
        (10, "?wait=true&timeout=0.5"),
    ],
)
def test_trigger_wait_times_out_with_202(
    setup, enqueued, settings, monkeypatch, server_wait, query
):
    import time

    from tradingstate.exchanges.paper import PaperExchange

    original = PaperExchange.fetch_open_orders

    def slow(self):  # a pass of 2.5 s at least
        time.sleep(2.5)
        return original(self)

    monkeypatch.setattr(PaperExchange, "fetch_open_orders", slow)
    a, _, client, _ = setup
    override_api_config(settings, reconcile_wait_seconds=server_wait)
    response = client.post(url(a, "reconciliations") + query, {}, format="json")
    assert response.status_code == 202 and response.json()["status"] == "queued"
    run = ReconciliationRun.objects.get(pk=response.json()["id"])
    for _ in range(100):  # the pass goes on after the answer, and finishes
        try:
            run.refresh_from_db()
        except OperationalError as exc:
            # the test database is SQLite in memory with a shared cache: a read while the
            # pass's thread writes meets a table lock (no busy wait there); read again
            assert "locked" in str(exc)
        if run.status in ReconciliationRun.FINISHED_STATUSES:
            break
        time.sleep(0.1)
    assert run.status == "completed"


def test_wait_budget_is_the_request_timeout_capped_by_the_server(settings):
    override_api_config(settings, reconcile_wait_seconds=30)
    assert wait_budget(None) == 30.0
    assert wait_budget(2.5) == 2.5
    assert wait_budget(1000.0) == 30.0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?wait=true&timeout=abc", "timeout"),
        ("?wait=true&timeout=0", "timeout"),
        ("?wait=true&timeout=0.000", "timeout"),
        ("?wait=true&timeout=-1", "timeout"),
        ("?wait=true&timeout=1e3", "timeout"),
        ("?wait=true&timeout=nan", "timeout"),
        ("?wait=true&timeout=inf", "timeout"),
        ("?wait=true&timeout=%205", "timeout"),
        ("?wait=true&timeout=", "timeout"),
        ("?wait=true&timeout=5%0A", "timeout"),
        ("?wait=true&timeout=%D9%A1", "timeout"),  # an Arabic-Indic digit
        ("?wait=true&timeout=1234567", "timeout"),
        ("?timeout=5", "timeout"),
        ("?wait=false&timeout=5", "timeout"),
    ],
)
def test_trigger_bad_timeout_is_a_400_naming_it(setup, enqueued, query, field):
    a, _, client, _ = setup
    response = client.post(url(a, "reconciliations") + query, {}, format="json")
    # a control character is refused by the request framing check (bad_request), the rest
    # by the endpoint (validation_error): both name the parameter
    assert response.status_code == 400, response.content
    assert response.json()["error"] in ("validation_error", "bad_request")
    assert set(response.json()["fields"]) == {field}
    assert not ReconciliationRun.objects.exists() and enqueued == []


def test_trigger_bad_input(setup, enqueued):
    a, _, client, _ = setup
    endpoint = url(a, "reconciliations")
    body = assert_error(
        client.post(endpoint + "?wait=maybe", {}, format="json"), 400, "validation_error"
    )
    assert "wait" in body["fields"]
    assert_error(
        client.post(endpoint, {"trigger": "schedule"}, format="json"),
        400,
        "validation_error",
        fields={"trigger"},
    )
    assert not ReconciliationRun.objects.exists()


def test_list_runs_and_bola(setup):
    a, b, client, _ = setup
    ReconciliationRun.objects.create(account=a, trigger="schedule", status="completed")
    ReconciliationRun.objects.create(account=b, trigger="schedule", status="completed")
    rows = client.get(url(a, "reconciliations")).json()["results"]
    assert [r["account"] for r in rows] == ["acct-a"]
    assert_error(client.get(url(b, "reconciliations")), 404, "not_found")
    assert_error(client.post(url(b, "reconciliations"), {}, format="json"), 404, "not_found")
    assert_error(client.get(url(b, "discrepancies")), 404, "not_found")


def test_discrepancies_filters(setup):
    a, b, client, _ = setup
    run = ReconciliationRun.objects.create(account=a, trigger="schedule", status="completed")

    def make(type_, key, status="open", persistent=False, account=a, run=run):
        return Discrepancy.objects.create(
            run=run,
            account=account,
            type=type_,
            entity="orders",
            key=key,
            status=status,
            persistent=persistent,
            local_value={"qty": "0.05"},
            detail={"symbol": key},
        )

    make("position_mismatch", "BTC/USDT", persistent=True)
    make("stale_local_order", "abc123", status="repaired")
    make("missing_local_order", "def456")
    other_run = ReconciliationRun.objects.create(account=b, trigger="schedule")
    make("position_mismatch", "ETH/USDT", account=b, run=other_run)

    def keys(query):
        response = client.get(url(a, "discrepancies"), query)
        assert response.status_code == 200, response.json()
        return [row["key"] for row in response.json()["results"]]

    assert keys({}) == ["def456", "abc123", "BTC/USDT"]
    assert keys({"type": "position_mismatch"}) == ["BTC/USDT"]
    assert keys({"status": "open"}) == ["def456", "BTC/USDT"]
    assert keys({"persistent": "true"}) == ["BTC/USDT"]
    assert keys({"persistent": "false", "status": "open"}) == ["def456"]
    row = client.get(url(a, "discrepancies"), {"type": "position_mismatch"}).json()["results"][0]
    assert row["local_value"] == {"qty": "0.05"} and row["run"] == run.pk
    assert_error(client.get(url(a, "discrepancies"), {"type": "nope"}), 400, "validation_error")
