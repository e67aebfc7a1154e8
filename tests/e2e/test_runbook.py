"""The runbook, literally: its commands against a fresh install, then its greps on the logs.

Subprocesses on a throwaway SQLite database and log directory, as an operator would run them.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _ops(tmp_path_factory):
    home = tmp_path_factory.mktemp("runbook")
    (home / "data" / "logs").mkdir(parents=True)
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{home / 'db.sqlite3'}",
        "TRADINGSTATE_LOG_DIR": str(home / "data" / "logs"),
        "TRADINGSTATE_CONFIG": str(ROOT / "configs" / "paper.toml"),
        "DEBUG": "1",
    }

    def manage(*args, timeout=120, check=True):
        proc = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def grep(pattern):
        # the runbook's own command line, run from the operator's working directory
        proc = subprocess.run(
            ["bash", "-c", f'grep "{pattern}" data/logs/*.log | tail -30'],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=30,
        )
        return proc.stdout

    manage("migrate", "--noinput", "-v", "0")
    return manage, grep, home, env


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    return _ops(tmp_path_factory)


def test_demo_pass_then_runbook_greps(ops):
    manage, grep, _home, env = ops
    manage("demo")
    first = manage("reconcile", "--account", "paper-demo")
    # the runbook's three and the demo's missed fill of ghi789 (issue 14)
    assert (
        "4 discrepancies (orders=2 positions=1 balances=0 fills=1), 4 repairs applied"
        in first.stdout
    )
    second = manage("reconcile", "--account", "paper-demo")
    assert "0 discrepancies" in second.stdout  # the second pass is clean

    # restart recovery and the loop (step 4 looks for these)
    manage("recover", "--config", str(ROOT / "configs" / "paper.toml"))
    loop = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "reconcile", "--loop", "--interval", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # stop it once it has logged its start (a fixed sleep lost the race on a loaded machine:
    # the interpreter had not even booted when SIGTERM arrived)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and loop.poll() is None:
        logs = "".join(p.read_text() for p in (_home / "data" / "logs").glob("*.log"))
        if "ReconciliationLoop started" in logs:
            break
        time.sleep(0.2)
    time.sleep(1)  # let its first tick enqueue, as before
    loop.send_signal(signal.SIGTERM)
    out, _ = loop.communicate(timeout=30)
    assert loop.returncode == 0, out

    # Diagnosis step 1
    step1 = grep(
        "Reconciliation found\\|position_mismatch\\|balance_mismatch"
        "\\|stale_local_order\\|missing_local_order"
    )
    # the runbook's three, and the demo's missed fill of ghi789 (issue 14)
    assert (
        "Reconciliation found 4 discrepancies (orders=2 positions=1 balances=0 fills=1 repairs=4)"
        in step1
    )
    assert (
        '{"type": "position_mismatch", "symbol": "BTC/USDT", "local_qty": "0.05", '
        '"exchange_qty": "0.08", "detail": "Quantity mismatch"' in step1
    )
    assert (
        '{"type": "missing_local_order", "client_order_id": "def456", "exchange_status": "open"'
        in step1
    )
    # Diagnosis step 3
    step3 = grep("stale_local_order")
    assert (
        '{"type": "stale_local_order", "client_order_id": "abc123", "local_status": "submitted"'
        in step3
    )
    # Diagnosis step 4
    step4 = grep("Starting FeedManager\\|ReconciliationLoop started\\|Application started")
    assert "ReconciliationLoop started (interval=1s, auto_repair=True)" in step4
    assert "Application started" in step4
    # Resolution: verify repairs were applied
    repairs = grep("Auto-repair\\|repairs_applied")
    assert "Auto-repair applied: stale_local_order abc123 submitted -> cancelled" in repairs
    assert "Auto-repair applied: missing_local_order def456" in repairs
    assert "Auto-repair applied: position_mismatch BTC/USDT 0.05 -> 0.08" in repairs
    assert "Auto-repair applied: missing_fill PT-" in repairs  # ghi789's trade, recorded
    assert '"repairs_applied": 4' in repairs

    # audit entries equal repairs
    check = manage(
        "shell",
        "-c",
        "from tradingstate.models import AuditEntry; from reconciliation.models import Repair;"
        "print(AuditEntry.objects.filter(action='repair.apply').count(),"
        " Repair.objects.filter(status='applied').count())",
    )
    assert check.stdout.strip().splitlines()[-1].split() == ["4", "4"]  # with the missed fill


def test_reconcile_exit_codes_and_errors(tmp_path_factory):
    # its own database with the demo: not the one another test of this module left behind
    # (the tests of a module may run on different xdist workers, in any order)
    manage, _, _, _ = _ops(tmp_path_factory)
    manage("demo")
    missing = manage("reconcile", "--account", "nope", check=False)
    assert missing.returncode != 0
    assert "no account named 'nope'" in missing.stderr and "paper-demo" in missing.stderr
    neither = manage("reconcile", check=False)
    assert neither.returncode != 0 and "--account NAME" in neither.stderr
