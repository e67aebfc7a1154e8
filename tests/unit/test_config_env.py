"""Any config key from the environment: TRADINGSTATE_<SECTION>__<KEY>, validated like the file."""

import subprocess
import sys
from decimal import Decimal

import pytest

from tradingstate.config import BASE_DIR, ConfigError, load_config

PAPER = BASE_DIR / "configs" / "paper.toml"


def test_nested_top_level_and_table_entries_override_the_file():
    # given: variables for a section key, a top-level key, a table entry and an array
    env = {
        "TRADINGSTATE_API__BOT_RATE": "100/min",
        "TRADINGSTATE_RECONCILIATION_INTERVAL_SECONDS": "15",
        "TRADINGSTATE_AUTO_REPAIR": "false",
        "TRADINGSTATE_BALANCE_TOLERANCES__BTC": "0.0001",
        "TRADINGSTATE_ALLOWED_HOSTS": '["ts.example.com"]',
        "TRADINGSTATE_NOTIFICATIONS": '[{"url": "json://127.0.0.1:9/hook"}]',
        "TRADINGSTATE_CONFIG": "ignored: not a config key",
    }
    # when
    cfg = load_config(PAPER, env)
    # then: typed like the file's values, the rest of the file kept
    assert cfg.api.bot_rate == "100/min"
    assert cfg.reconciliation_interval_seconds == 15
    assert cfg.auto_repair is False
    assert cfg.balance_tolerances == {"BTC": Decimal("0.0001")}
    assert cfg.allowed_hosts == ["ts.example.com"]
    assert cfg.notifications[0].name == "json-1"
    assert cfg.api.page_size == 100 and cfg.exchanges[0].name == "paper-demo"


def test_names_are_case_insensitive_but_table_entries_keep_theirs():
    cfg = load_config(PAPER, {"tradingstate_worker__workers": "4",
                              "TRADINGSTATE_BALANCE_TOLERANCES__eth": "1"})  # fmt: skip
    assert cfg.worker.workers == 4
    assert cfg.balance_tolerances == {"eth": Decimal("1")}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TRADINGSTATE_API__BOT_RATE": "lots"},
         "TRADINGSTATE_API__BOT_RATE: Value error, expected"),
        ({"TRADINGSTATE_API__BOT_RAT": "1/s"},
         "TRADINGSTATE_API__BOT_RAT: no such configuration key"),
        ({"TRADINGSTATE_RECONCILIATION_INTERVAL_SECONDS": "soon"},
         "TRADINGSTATE_RECONCILIATION_INTERVAL_SECONDS: expected an integer, got 'soon'"),
        ({"TRADINGSTATE_WORKER__WORKERS": "0"}, "TRADINGSTATE_WORKER__WORKERS: Input should be"),
        ({"TRADINGSTATE_ALLOWED_HOSTS": "a,b"}, "TRADINGSTATE_ALLOWED_HOSTS: expected JSON"),
        ({"TRADINGSTATE_AUTO_REPAIR__X": "1"}, "TRADINGSTATE_AUTO_REPAIR__X: no such"),
        ({"TRADINGSTATE_NOTIFICATIONS": '[{"url": "json://h/x", "url_env": "U"}]'},
         "TRADINGSTATE_NOTIFICATIONS: Value error, set exactly one of 'url' or 'url_env'"),
    ],
)  # fmt: skip
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError) as exc:
        load_config(PAPER, env)
    assert str(exc.value).startswith("environment: invalid configuration")
    assert message in str(exc.value)


def test_start_up_stops_naming_the_variable():
    # given: a process started with a bad override
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "TRADINGSTATE_API__BOT_RATE": "often"}
    # when
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    # then: status 2, the variable named, no traceback
    assert proc.returncode == 2
    assert "TRADINGSTATE_API__BOT_RATE: Value error" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_settings_read_the_override():
    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "TRADINGSTATE_API__BOT_RATE": "7/s"}
    code = (
        "from django.conf import settings; print(settings.REST_FRAMEWORK['DEFAULT_THROTTLE_RATES'])"
    )
    proc = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=BASE_DIR,
                          env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert "{'bot': '7/s'}" in proc.stdout, proc.stderr
