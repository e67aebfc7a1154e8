"""Plain `python` works, and the runbook's restart brings the console back.

"Plain python" is an interpreter that cannot import Django: the venv's own python with `-S`
(no site-packages), so the test does not depend on what the machine's system python has.
"""

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.processes import alive

ROOT = Path(__file__).resolve().parents[2]
BARE_PYTHON = [sys.executable, "-S"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_bare_python_really_has_no_django():
    proc = subprocess.run([*BARE_PYTHON, "-c", "import django"], capture_output=True, timeout=30)
    assert proc.returncode != 0 and b"No module named 'django'" in proc.stderr


def base_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        TRADINGSTATE_LOG_DIR=str(tmp_path / "logs"),
        TRADINGSTATE_CONFIG=str(ROOT / "configs" / "paper.toml"),
    )
    return env


def test_python_manage_py_reconcile_works_with_plain_python(tmp_path):
    # given: a fresh database, every command typed with a python that has no Django
    env = {**base_env(tmp_path), "DEBUG": "1"}

    def plain(*args, check=True):
        proc = subprocess.run([*BARE_PYTHON, *args], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=180)  # fmt: skip
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    plain("manage.py", "migrate", "-v", "0")
    plain("manage.py", "demo")
    # when: the command `demo` prints and the README shows
    out = plain("manage.py", "reconcile", "--account", "paper-demo").stdout
    # then: it ran in the venv, against this database
    # the runbook's three and the demo's missed fill (issue 14)
    assert "4 discrepancies (orders=2 positions=1 balances=0 fills=1), 4 repairs applied" in out
    # and the scripts use the same hand-off
    status = plain("scripts/killswitch.py", "--status").stdout
    assert "inactive" in status.lower()


def test_a_missing_venv_is_a_clear_error_not_a_loop(tmp_path):
    # given: the hand-off already happened once (as when the venv itself lacks Django)
    env = {**base_env(tmp_path), "TRADINGSTATE_VENV_REEXEC": "1"}
    for script in ("manage.py", "scripts/killswitch.py", "scripts/run_paper.py"):
        proc = subprocess.run([*BARE_PYTHON, script, "--help"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        # then: status 2 and what to do
        assert proc.returncode == 2, (script, proc.stderr)
        assert "Django is not installed" in proc.stderr and "make install" in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        [b"scripts/killswitch.py", b"--activate", b"--reason", b"maintenance \xff"],
        [b"manage.py", b"reconcile", b"--account", b"paper-\xe9"],  # latin-1, not UTF-8
        [b"scripts/run_paper.py", b"--config", b"configs/\xffpaper.toml"],
    ],
    ids=["killswitch", "reconcile", "run_paper"],
)
def test_an_argument_that_is_not_utf8_is_a_usage_error_naming_it(tmp_path, args):
    # a reason holding such bytes failed in the write with a traceback (UnicodeEncodeError)
    env = base_env(tmp_path)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=120)  # fmt: skip
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          timeout=60)  # fmt: skip
    assert proc.returncode == 64, proc.stderr
    bad = next(n for n, arg in enumerate(args[1:], start=1) if not arg.isascii())
    assert f"argument {bad} is not valid UTF-8".encode() in proc.stderr
    assert b"Traceback" not in proc.stderr
    db = sqlite3.connect(tmp_path / "db.sqlite3")
    assert db.execute("SELECT count(*) FROM tradingstate_auditentry").fetchone() == (0,)


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True, check=False).stdout  # fmt: skip
    return [int(p) for p in out.split()]


def test_runbook_restart_brings_back_the_console(tmp_path):
    # given: the runbook's restart, typed with plain python, DEBUG off (whitenoise serves)
    port = free_port()
    env = {
        **base_env(tmp_path),
        "DEBUG": "0",
        "SECRET_KEY": "k" * 64,
        "SECURE_SSL_REDIRECT": "0",
        "TRADINGSTATE_STATIC_ROOT": str(tmp_path / "static"),
    }
    subprocess.run([*BARE_PYTHON, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env,
                   check=True, timeout=180)  # fmt: skip
    subprocess.run([*BARE_PYTHON, "manage.py", "demo"], cwd=ROOT, env=env, check=True, timeout=60)
    log = tmp_path / "supervisor.out"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*BARE_PYTHON, "scripts/run_paper.py", "--config", "configs/paper.toml",
             "--web", f"127.0.0.1:{port}", "--no-migrate"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        # when: the console answers
        login = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not login:
            try:
                with urllib.request.urlopen(base + "/admin/login/", timeout=5) as resp:
                    login = resp.read().decode()
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        assert login, log.read_text()
        # then: recovery had already reconciled the demo account (startup pass completed)
        with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
            first = conn.execute(
                "SELECT trigger, status, repairs_applied FROM reconciliation_reconciliationrun"
                " ORDER BY id LIMIT 1"
            ).fetchone()
        assert first == ("startup", "completed", 4)  # the runbook's three and the missed fill
        # the console is styled (its CSS answers) and the API is up
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]+\.css)"', login).group(1)
        with urllib.request.urlopen(base + css, timeout=10) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(base + "/api/schema/", timeout=20) as resp:
            assert resp.status == 200
        kids = children_of(proc.pid)
        assert len(kids) == 3, kids  # ticker, qcluster, gunicorn
    finally:
        # when: SIGTERM to the supervisor alone
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    # then: every child is gone and the port is free
    text = log.read_text()
    assert code == 0, text
    assert not [k for k in kids if alive(k)], text
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert text.index("Application started") < text.index("Listening at"), text
