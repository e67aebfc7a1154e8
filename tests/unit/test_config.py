from decimal import Decimal
from pathlib import Path

import pytest

from tradingstate.config import BASE_DIR, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_shipped_configs_load():
    paper = load_config(BASE_DIR / "configs" / "paper.toml")
    live = load_config(BASE_DIR / "configs" / "live.toml")
    assert paper.reconciliation_interval_seconds == 30
    assert live.reconciliation_interval_seconds == 15
    assert paper.mode == "paper" and live.mode == "live"
    assert paper.exchanges[0].name == "paper-demo"
    assert paper.balance_tolerance == Decimal("0.01")
    assert isinstance(live.balance_tolerances["BTC"], Decimal)
    assert {e.exchange for e in live.exchanges} == {"binance", "bybit"}


def test_selected_file_merges_over_default(tmp_path):
    cfg = load_config(write(tmp_path, 'mode = "live"\n[logging]\nlevel = "DEBUG"\n'))
    assert cfg.mode == "live"
    assert cfg.logging.level == "DEBUG"
    assert cfg.logging.dir == "data/logs"  # from default.toml


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "reconciliation_interval_secs = 15\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = str(exc.value)
    assert str(path) in text
    assert "reconciliation_interval_secs: unknown key" in text


def test_wrong_type_names_key_and_expected_type(tmp_path):
    path = write(tmp_path, 'reconciliation_interval_seconds = "soon"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert str(path) in str(exc.value)
    assert "reconciliation_interval_seconds: expected an integer, got 'soon'" in str(exc.value)


def test_nested_exchange_errors(tmp_path):
    path = write(
        tmp_path,
        '[[exchanges]]\nname = "Bad Name"\napi_key_env = "sk-live-123"\ntestnet = "yes please"\n',
    )
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = str(exc.value)
    assert "exchanges.0.name" in text
    assert "exchanges.0.api_key_env" in text and "never the secret" in text
    assert "exchanges.0.testnet: expected a boolean" in text


def test_bad_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "mode = \n"))
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_duplicate_account_names(tmp_path):
    path = write(tmp_path, '[[exchanges]]\nname = "a"\n[[exchanges]]\nname = "a"\n')
    with pytest.raises(ConfigError, match="duplicate account name"):
        load_config(path)


def test_negative_tolerance_refused(tmp_path):
    with pytest.raises(ConfigError, match="balance_tolerance"):
        load_config(write(tmp_path, 'balance_tolerance = "-1"\n'))


def test_startup_stops_with_message_on_bad_config(tmp_path):
    import subprocess
    import sys

    path = write(tmp_path, "surprise = 1\n")
    proc = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=BASE_DIR,
        env={"TRADINGSTATE_CONFIG": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "surprise: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_check_deploy_is_clean_in_production_settings():
    import secrets
    import subprocess
    import sys

    env = {
        "PATH": "/usr/bin:/bin",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(64),
        # production terminates TLS (itself or at a proxy); "off" is loopback development
        "TRADINGSTATE_WEB__TLS": "direct",
    }
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues (0 silenced)." in proc.stdout


def test_check_deploy_warns_without_a_shared_secret_key():
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", "DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "tradingstate.W001" in proc.stdout + proc.stderr


@pytest.mark.parametrize("rate", ["lots", "100/week", "1.5/min", "/min", "-1/s", "100 / min"])
def test_bad_bot_rate_is_refused_naming_the_key(tmp_path, rate):
    path = write(tmp_path, f'[api]\nbot_rate = "{rate}"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "api.bot_rate" in str(exc.value) and "e.g. '6000/min'" in str(exc.value)


@pytest.mark.parametrize("rate", ["6000/min", "10/s", "1/hour", "0/day", "100/m"])
def test_good_bot_rates_load(tmp_path, rate):
    assert load_config(write(tmp_path, f'[api]\nbot_rate = "{rate}"\n')).api.bot_rate == rate


@pytest.mark.parametrize("value", ["0", "-5", '"often"', "1.5"])
def test_bad_worker_recycle_is_refused_naming_the_key(tmp_path, value):
    path = write(tmp_path, f"[worker]\nrecycle_tasks = {value}\n")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert "worker.recycle_tasks" in str(exc.value)
