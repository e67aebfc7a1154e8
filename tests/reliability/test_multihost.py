"""Several hosts' worth of workers: two ``qcluster`` processes on the Redis broker and two
tickers (``reconcile --loop``) against PostgreSQL. One ticker leads; no two passes of one
account overlap; each account keeps its 15 s cadence (± 2 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from itertools import pairwise

import pytest

from reconciliation.models import ReconciliationRun
from tests.pg import requires_postgres
from tests.reliability.conftest import ROOT, python, wait_until, worker_env
from tests.reliability.support import paper_account

pytestmark = [requires_postgres, pytest.mark.django_db(transaction=True)]

ACCOUNTS = 5
INTERVAL = 15
DURATION = 64  # 60 s, and past CONN_MAX_AGE (60 s): a recycled leader connection shows up
TOLERANCE = 2.0
REDIS = os.environ.get("RELIABILITY_REDIS_URL", "redis://127.0.0.1:6379")


def _free_redis_db() -> tuple[str, object]:
    redis = pytest.importorskip("redis")
    for index in range(15, 0, -1):
        client = redis.Redis.from_url(f"{REDIS}/{index}", socket_connect_timeout=2)
        try:
            if client.dbsize() == 0:
                return f"{REDIS}/{index}", client
        except redis.exceptions.ConnectionError:
            pytest.skip(f"Redis is not reachable at {REDIS}")
    pytest.skip("no empty Redis database index")


def _start(args: list[str], env: dict, log) -> subprocess.Popen:
    return subprocess.Popen(
        [python(), "manage.py", *args],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: qcluster's children stop with it
    )


def _leads(tmp_path, name: str) -> bool:
    path = tmp_path / f"{name}.out"
    return path.exists() and "Ticker leading on" in path.read_text()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.mark.bound(200)
def test_two_clusters_two_tickers_one_leader_no_overlap_steady_cadence(tmp_path, figure):
    # given: five paper accounts on a 15 s interval
    accounts = [
        paper_account(f"host-{i}", reconciliation_interval_seconds=INTERVAL)
        for i in range(ACCOUNTS)
    ]
    redis_url, redis_client = _free_redis_db()
    env = worker_env(REDIS_URL=redis_url, TRADINGSTATE_LOG_DIR=str(tmp_path))
    logs = {name: (tmp_path / f"{name}.out").open("w") for name in ("q1", "q2", "t1", "t2")}
    procs = {}
    try:
        # when: two clusters ("hosts"), then two tickers; 60 s
        procs["q1"] = _start(["qcluster"], env, logs["q1"])
        procs["q2"] = _start(["qcluster"], env, logs["q2"])
        time.sleep(4)
        procs["t1"] = _start(["reconcile", "--loop"], env, logs["t1"])
        procs["t2"] = _start(["reconcile", "--loop"], env, logs["t2"])
        started = time.monotonic()
        while time.monotonic() - started < DURATION:
            dead = [n for n, p in procs.items() if p.poll() is not None]
            assert not dead, f"{dead} exited early"
            time.sleep(1)
        # let in-flight passes finish
        wait_until(
            lambda: not ReconciliationRun.objects.filter(status__in=["queued", "running"]).exists(),
            20,
            0.5,
            "queued passes to drain",
        )
    finally:
        # the standby ticker first: stopping the leader first hands leadership to the
        # standby (failover, as designed) in the moment before the standby stops too
        for name in (*sorted(("t1", "t2"), key=lambda n: _leads(tmp_path, n)), "q1", "q2"):
            if name in procs:
                _stop(procs[name])
        for log in logs.values():
            log.close()
        redis_client.flushdb()
    outputs = {name: (tmp_path / f"{name}.out").read_text() for name in logs}

    # then: one leader
    leaders = [n for n in ("t1", "t2") if "Ticker leading on" in outputs[n]]
    assert len(leaders) == 1, {n: outputs[n][-2000:] for n in ("t1", "t2")}
    assert "Ticker standing by" in outputs[({"t1", "t2"} - set(leaders)).pop()]
    assert outputs[leaders[0]].count("Ticker leading on") == 1, outputs[leaders[0]][-2000:]
    # passes ran on both clusters' workers (whichever took them), none overlapping
    gaps_all = []
    per_account = {}
    for account in accounts:
        runs = list(
            ReconciliationRun.objects.filter(account=account)
            .exclude(status__in=["skipped", "queued"])
            .order_by("started_at")
            .values("id", "status", "started_at", "finished_at", "trigger")
        )
        assert all(r["status"] == "completed" for r in runs), runs
        for a, b in pairwise(runs):
            assert a["finished_at"] <= b["started_at"], ("overlap", account.name, a, b)
        gaps = [(b["started_at"] - a["started_at"]).total_seconds() for a, b in pairwise(runs)]
        assert len(runs) >= DURATION // INTERVAL, (account.name, runs)
        assert all(abs(g - INTERVAL) <= TOLERANCE for g in gaps), (account.name, gaps)
        assert [r["trigger"] for r in runs].count("startup") == 1, runs  # no re-takeover
        per_account[account.name] = len(runs)
        gaps_all += gaps
    skipped = ReconciliationRun.objects.filter(status="skipped").count()
    figure(
        ops=sum(per_account.values()),
        passes_per_account=per_account,
        skipped=skipped,
        cadence_min=round(min(gaps_all), 2),
        cadence_max=round(max(gaps_all), 2),
        leader=leaders[0],
        repairs=0,
        lost=0,
        duplicates=0,
    )
