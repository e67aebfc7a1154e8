import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from killswitch.models import KillSwitch, KillSwitchEvent
from killswitch.services import trading_allowed
from tradingstate.models import AuditEntry

ROOT = Path(__file__).resolve().parents[3]
REASON = "Manual position correction in progress"


def run_cmd(*args):
    from io import StringIO

    out = StringIO()
    call_command("killswitch", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_call_command_activate_status_deactivate(account, monkeypatch):
    monkeypatch.setattr("getpass.getuser", lambda: "oncall")
    # when
    assert "activated" in run_cmd("--activate", "--reason", REASON)
    # then
    assert run_cmd("--status").splitlines()[0] == f"Kill switch: ACTIVE (reason: {REASON})"
    assert not trading_allowed(account).allowed
    entry = AuditEntry.objects.get(action="killswitch.activate")
    assert (entry.actor_type, entry.actor_name) == ("user", "cli:oncall")
    # when
    assert "deactivated" in run_cmd("--deactivate")
    # then
    assert run_cmd("--status").strip() == "Kill switch: INACTIVE"
    assert list(KillSwitchEvent.objects.order_by("id").values_list("action", "actor_name")) == [
        ("activate", "cli:oncall"),
        ("deactivate", "cli:oncall"),
    ]


@pytest.mark.django_db
@pytest.mark.parametrize("args", [["--activate"], ["--activate", "--reason", "  "]])
def test_activate_without_reason_fails(args):
    with pytest.raises(CommandError, match="reason is required"):
        run_cmd(*args)
    assert not KillSwitch.objects.filter(active=True).exists()


@pytest.mark.django_db
def test_account_halt_and_status_lists_it(account):
    run_cmd("--activate", "--reason", "venue incident", "--account", "test-acct")
    lines = run_cmd("--status").splitlines()
    assert lines == ["Kill switch: INACTIVE", "Account test-acct: HALTED (reason: venue incident)"]
    assert run_cmd("--status", "--account", "test-acct").splitlines()[0] == (
        "Account test-acct: HALTED (reason: venue incident)"
    )
    assert "already active" in run_cmd("--activate", "--reason", "x", "--account", "test-acct")
    run_cmd("--deactivate", "--account", "test-acct", "--reason", "resolved")
    assert run_cmd("--status").strip() == "Kill switch: INACTIVE"


@pytest.mark.django_db
def test_unknown_account_fails():
    with pytest.raises(CommandError, match="Unknown account 'nope'"):
        run_cmd("--activate", "--reason", "x", "--account", "nope")


@pytest.mark.django_db
def test_noop_messages(account):
    assert "already inactive" in run_cmd("--deactivate")


@pytest.mark.django_db
def test_flags_are_exclusive_and_one_is_required():
    with pytest.raises(CommandError):
        run_cmd("--activate", "--deactivate", "--reason", "x")
    with pytest.raises(CommandError):
        run_cmd()


@pytest.mark.django_db
def test_cancel_open_orders_flag(account, django_capture_on_commit_callbacks):
    from tests.integration.killswitch.test_killswitch_cancel import venue_order

    venue_order(account, "EX-1")
    with django_capture_on_commit_callbacks(execute=True):
        out = run_cmd("--activate", "--reason", REASON, "--cancel-open-orders")
    # (in a test the on-commit cancel runs after the command printed; see the subprocess run)
    assert "activated" in out
    assert KillSwitchEvent.objects.get(action="cancel_orders").cancel_summary["cancelled"] == 1


# --- the runbook's script, in a subprocess against a temporary SQLite database -----------------
@pytest.fixture
def script_env(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH", "VIRTUAL_ENV")
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'ks.sqlite3'}"
    env["TRADINGSTATE_LOG_DIR"] = str(tmp_path / "logs")
    env["USER"] = env["LOGNAME"] = "runbook-operator"
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrate.returncode == 0, migrate.stderr
    return env


def script(env, *args, python=sys.executable):
    return subprocess.run(
        [python, "scripts/killswitch.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def events(env, python=sys.executable):
    code = (
        "import django;django.setup();"
        "from killswitch.models import KillSwitchEvent as E;"
        "print([(e.action, e.actor_name, e.reason) for e in E.objects.order_by('id')])"
    )
    env = {**env, "DJANGO_SETTINGS_MODULE": "tradingstate.settings"}
    return subprocess.run(
        [python, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    ).stdout.strip()


def runbook_cycle(env, python):
    activate = script(env, "--activate", "--reason", REASON, python=python)
    assert activate.returncode == 0, activate.stderr
    status = script(env, "--status", python=python)
    assert status.returncode == 0, status.stderr
    assert f"Kill switch: ACTIVE (reason: {REASON})" in status.stdout
    deactivate = script(env, "--deactivate", python=python)
    assert deactivate.returncode == 0, deactivate.stderr
    status = script(env, "--status", python=python)
    assert status.stdout.strip().splitlines()[0] == "Kill switch: INACTIVE"
    assert events(env) == str(
        [
            ("activate", "cli:runbook-operator", REASON),
            ("deactivate", "cli:runbook-operator", ""),
        ]
    )
    logs = "".join(p.read_text() for p in Path(env["TRADINGSTATE_LOG_DIR"]).glob("*.log"))
    assert "KILL SWITCH ACTIVATED: reason=Manual position correction in progress" in logs
    assert "KILL SWITCH DEACTIVATED" in logs


def test_runbook_script_with_the_venv_python(script_env):
    runbook_cycle(script_env, sys.executable)


def test_runbook_script_cancel_open_orders_prints_summary(script_env):
    result = script(script_env, "--activate", "--reason", REASON, "--cancel-open-orders")
    assert result.returncode == 0, result.stderr
    assert "Cancelled 0 open order(s); 0 still open; complete=True" in result.stdout


def test_runbook_script_missing_reason_exits_nonzero(script_env):
    result = script(script_env, "--activate")
    assert result.returncode != 0
    assert "reason is required" in result.stderr


def _python_without_django():
    for name in ("python3", "python"):
        path = shutil.which(name, path="/usr/local/bin:/usr/bin:/bin")
        if path and subprocess.run([path, "-c", "import django"], capture_output=True).returncode:
            return path
    return None


def test_runbook_script_with_a_system_python_reexecs_into_the_venv(script_env):
    python = _python_without_django()
    if python is None:
        pytest.skip("no system python without Django on this machine")
    runbook_cycle(script_env, python)
