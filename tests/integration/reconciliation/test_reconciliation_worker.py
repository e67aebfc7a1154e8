"""The django-q2 side: configuration, and a requested pass executed by the task."""

import pytest
from django.conf import settings
from django.core.management import call_command

from reconciliation.models import ReconciliationRun
from reconciliation.services import reconciliation_request
from tradingstate.actors import Actor
from tradingstate.models import ExchangeAccount


def test_cluster_configuration_is_safe():
    q = settings.Q_CLUSTER
    assert q["timeout"] < q["retry"]  # a task is never handed out again while it still runs
    assert q["catch_up"] is False
    assert q["max_attempts"] >= 1
    assert ("orm" in q) != ("redis" in q)
    if not settings.ENV.REDIS_URL:
        assert q["orm"] == "default"


def test_worker_processes_are_not_replaced_every_few_hundred_tasks():
    # django-q2 replaces a worker process after 500 tasks unless told: the new process
    # builds every account's ccxt clients (3 a pass, ~7 ms each) and markets again
    assert settings.Q_CLUSTER["recycle"] == settings.TRADINGSTATE.worker.recycle_tasks
    assert settings.Q_CLUSTER["recycle"] >= 100_000


@pytest.mark.django_db
def test_requested_pass_runs_on_the_worker_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", True)  # the cluster's execution, inline
    call_command("demo")
    account = ExchangeAccount.objects.get(name="paper-demo")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run = reconciliation_request(
            account=account, trigger="api", actor=Actor.system("test"), dry_run=True
        )
        assert run.status == "queued"
    assert len(callbacks) == 1
    run.refresh_from_db()
    # the runbook's three, and the demo's missed fill of ghi789 (issue 14)
    assert run.status == "completed" and run.dry_run and run.discrepancies_found == 4
    assert run.repairs_applied == 0
    assert ReconciliationRun.objects.count() == 1  # the queued row was filled in, not duplicated
