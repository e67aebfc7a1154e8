"""The real worker: run_paper.py (recover, ticker, qcluster) executes passes on its own."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_run_paper_recovers_then_ticks_through_the_cluster(tmp_path):
    db = tmp_path / "db.sqlite3"
    config = tmp_path / "fast.toml"
    config.write_text(
        'mode = "paper"\nreconciliation_interval_seconds = 2\n'
        '[[exchanges]]\nname = "paper-demo"\nexchange = "paper"\nmarket_type = "swap"\n'
    )
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{db}",
        "TRADINGSTATE_LOG_DIR": str(tmp_path / "logs"),
        "DEBUG": "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    subprocess.run([sys.executable, "manage.py", "demo"], cwd=ROOT, env=env, check=True,
                   timeout=60)  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "scripts/run_paper.py", "--config", str(config), "--no-migrate",
         "--no-web"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        rows = []
        while time.monotonic() < deadline:
            time.sleep(1)
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT trigger, status FROM reconciliation_reconciliationrun ORDER BY id"
                ).fetchall()
            if sum(1 for t, s in rows if t == "schedule" and s == "completed") >= 2:
                break
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:  # say what it was doing, leave nothing running
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
            raise AssertionError(f"run_paper.py did not stop within 60 s:\n{out}") from None
    # recovery ran first and repaired the demo desync, then the cluster ran scheduled passes
    assert rows[0] == ("startup", "completed"), (rows, out)
    assert sum(1 for t, s in rows if t == "schedule" and s == "completed") >= 2, (rows, out)
    assert "Application started" in out and "ReconciliationLoop started (interval=2s" in out
    assert proc.returncode == 0, out


def test_run_live_refuses_a_missing_config_clearly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "scripts/run_live.py", "--config", str(tmp_path / "nope.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert f"--config: {tmp_path / 'nope.toml'} not found" in proc.stderr
