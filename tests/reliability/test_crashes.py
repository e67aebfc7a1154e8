"""Crashes: a worker killed with SIGKILL in the middle of passes, and PostgreSQL restarted
under API load."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import threading
import time
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection

from reconciliation.models import ReconciliationRun, Repair
from reconciliation.services import run_reconciliation
from tests.api_support import api_cache_table  # noqa: F401
from tests.pg import requires_postgres
from tests.reliability.conftest import HERE, python, wait_until, worker_env
from tests.reliability.support import repairs_consistent, stage_drift, venue_order
from tradingstate.models import AuditEntry, Order, PaperBalance, PaperPosition

pytestmark = [requires_postgres]

KILLS = 20
PG_CTL = ["pg_ctlcluster", "--skip-systemctl-redirect"]


def _redrift(account, i: int) -> None:
    """New venue truth for the next round: the worker has something to repair."""
    PaperPosition.objects.filter(account=account).update(qty=Decimal("0.08") + Decimal(i) / 1000)
    PaperBalance.objects.filter(account=account).update(
        total=Decimal(10000 + i * 10), free=Decimal(10000 + i * 10)
    )
    venue_order(account, f"crash-{i}")


@pytest.mark.django_db(transaction=True)
@pytest.mark.bound(240)
def test_sigkill_mid_pass_is_all_or_nothing_and_the_next_pass_converges(figure, seed):
    # given: a drifted account and a slow venue (latency in reads and in each repair batch)
    account = stage_drift("crashy")
    rng = random.Random(seed)
    killed_in_flight = 0
    for i in range(KILLS):
        _redrift(account, i)
        proc = subprocess.Popen(
            [
                python(),
                str(HERE / "worker.py"),
                "--accounts",
                str(account.pk),
                "--passes",
                "1000",
                "--slow",
                "0.15",
                "--seed",
                str(seed + i),
            ],
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout.readline().strip() == "READY"
            # when: killed at a random point of its passes
            time.sleep(rng.uniform(0.0, 1.2))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        # then: no pass is left half-done (the killed one rolled back entirely)
        close_old_connections()
        repairs_consistent(account)
        killed_in_flight += 1
    # the next pass converges
    first = run_reconciliation(account, "manual")
    second = run_reconciliation(account, "manual")
    assert first.status == "completed" and second.status == "completed", (first.error, second.error)
    assert second.discrepancies_found == 0, list(second.discrepancies.values("type", "key"))
    stats = repairs_consistent(account)
    runs = ReconciliationRun.objects.filter(account=account)
    assert not runs.filter(status="running").exists()
    # every venue-only order was created locally exactly once
    for i in range(KILLS):
        assert Order.objects.filter(account=account, client_order_id=f"crash-{i}").count() == 1
    figure(
        ops=KILLS,
        kills=killed_in_flight,
        runs_committed=runs.count(),
        repairs=stats["repairs"],
        repair_audits=stats["audits"],
        lost=0,
        duplicates=stats["repairs"]
        - Repair.objects.filter(account_id=account.pk).values("discrepancy").distinct().count(),
    )


# --- PostgreSQL restarted under API load ---------------------------------------------------------
def _pg_version() -> str | None:
    try:
        versions = sorted(os.listdir("/etc/postgresql"))
    except OSError:
        return None
    return versions[-1] if versions else None


def _pg_ready() -> bool:
    return subprocess.run(["pg_isready", "-h", "127.0.0.1", "-p", "5432", "-t", "1"],
                          capture_output=True).returncode == 0  # fmt: skip


@pytest.mark.last
@pytest.mark.bound(180)
@pytest.mark.skipif(
    not (shutil.which("pg_ctlcluster") and _pg_version()), reason="needs a local pg_ctlcluster"
)
@pytest.mark.usefixtures("api_cache_table")
@pytest.mark.django_db(transaction=True)
def test_postgres_restart_under_api_load_fails_closed_and_keeps_acknowledged_writes(figure, seed):
    from killswitch.services import trading_allowed
    from tests.api_support import make_bot, order_body, url
    from tests.factories import AccountFactory

    # given: 4 bots registering orders and reading the kill switch as fast as they can
    account = AccountFactory(name="pg-restart")
    clients = [make_bot(f"bot-{i}", account)[0] for i in range(4)]
    stop = threading.Event()
    acked: list[str] = []
    answers: dict[str, int] = {}
    killswitch_while_down: list[tuple[int, str]] = []
    guard_while_down: list[bool] = []
    down = threading.Event()
    lock = threading.Lock()

    def load(i: int) -> None:
        n = 0
        try:
            while not stop.is_set():
                n += 1
                coid = f"r{i}-{n}"
                try:
                    response = clients[i].post(
                        url(account, "orders"), order_body(client_order_id=coid), format="json"
                    )
                    status = response.status_code
                except Exception as exc:  # the test client re-raises server errors
                    status = f"raised {type(exc).__name__}"
                    close_old_connections()
                with lock:
                    answers[str(status)] = answers.get(str(status), 0) + 1
                    if status == 201:
                        acked.append(coid)
                    if down.is_set():
                        decision = trading_allowed(account.pk)
                        guard_while_down.append(decision.allowed)
                        close_old_connections()
                        try:
                            ks = clients[i].get("/api/v1/killswitch/")
                            killswitch_while_down.append(
                                (ks.status_code, ks.content[:200].decode())
                            )
                        except Exception as exc:
                            killswitch_while_down.append((0, f"raised {type(exc).__name__}"))
                        close_old_connections()
                time.sleep(0.01)
        finally:
            connection.close()

    threads = [threading.Thread(target=load, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    # when: PostgreSQL restarts (fast shutdown drops every connection)
    version = _pg_version()
    try:
        subprocess.run([*PG_CTL, version, "main", "stop", "-m", "fast"], check=True, timeout=60)
        down.set()  # from here until the start command, the database is really down
        time.sleep(2)
    finally:
        down.clear()
        subprocess.run([*PG_CTL, version, "main", "start"], check=False, timeout=60)
        wait_until(_pg_ready, 60, 0.5, "PostgreSQL back up")
    time.sleep(3)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    close_old_connections()
    # then: while down, the kill switch never answered "allowed"; registrations refused
    assert killswitch_while_down, "no kill switch reads while the database was down"
    assert guard_while_down and not any(guard_while_down)
    for status, body in killswitch_while_down:
        assert status == 503 and '"service_unavailable"' in body, (status, body)
    # every acknowledged registration survived
    stored = set(Order.objects.filter(account=account).values_list("client_order_id", flat=True))
    lost = [c for c in acked if c not in stored]
    assert lost == []
    assert AuditEntry.objects.filter(action="order.register", account=account).count() == len(
        stored
    )
    # and the service works again
    response = clients[0].post(
        url(account, "orders"), order_body(client_order_id="after"), format="json"
    )
    assert response.status_code == 201, response.content
    figure(ops=sum(answers.values()), answers=answers, acknowledged=len(acked),
           killswitch_reads_while_down=len(killswitch_while_down),
           killswitch_answers_while_down=sorted({s for s, _ in killswitch_while_down}),
           guard_allowed_while_down=sum(guard_while_down), repairs=0, lost=len(lost),
           duplicates=0)  # fmt: skip
