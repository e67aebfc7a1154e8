"""D7: an exchange id that is neither "paper" nor a ccxt exchange stops the configuration
(``exchange = "binanc"`` used to pass, and every pass of the account failed)."""

from pathlib import Path

import ccxt
import pytest

from tradingstate.config import ConfigError, ExchangeConfig, load_config

ACCOUNT = '[[exchanges]]\nname = "x"\nexchange = "{exchange}"\nmarket_type = "swap"\n'


def write(tmp_path: Path, exchange: str) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text('mode = "live"\n' + ACCOUNT.format(exchange=exchange))
    return path


def test_a_misspelt_exchange_id_names_the_file_the_key_and_a_suggestion(tmp_path):
    # given: the tester's bad10.toml
    path = write(tmp_path, "binanc")
    # when / then
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    text = str(exc.value)
    assert str(path) in text
    assert "exchanges.0.exchange: " in text and "'binanc'" in text
    assert "unknown exchange id" in text and "did you mean 'binance'" in text


def test_paper_and_every_ccxt_exchange_id_are_accepted(tmp_path):
    assert load_config(write(tmp_path, "paper")).exchanges[0].exchange == "paper"
    for exchange_id in ccxt.exchanges:
        assert ExchangeConfig(name="x", exchange=exchange_id).exchange == exchange_id


def test_the_environment_override_is_checked_too(tmp_path):
    path = write(tmp_path, "binance")
    environ = {"TRADINGSTATE_EXCHANGES": '[{"name": "x", "exchange": "bybitt"}]'}
    with pytest.raises(ConfigError) as exc:
        load_config(path, environ=environ)
    assert "TRADINGSTATE_EXCHANGES" in str(exc.value) and "'bybitt'" in str(exc.value)


def test_a_credential_in_ccxt_options_is_refused_naming_the_key(tmp_path):
    from tradingstate.config import ConfigError, load_config

    path = tmp_path / "cred.toml"
    path.write_text(
        'mode = "live"\n[[exchanges]]\nname = "x"\nexchange = "binance"\n'
        '[exchanges.ccxt_options]\nsecret = "hunter2"\n'
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert "exchanges.0.ccxt_options" in str(refused.value) and "credential" in str(refused.value)
    assert "hunter2" not in str(refused.value)
