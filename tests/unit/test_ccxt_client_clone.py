"""A new ccxt client is a copy of its venue configuration's pristine client
(``tradingstate.exchanges.ccxt.client_clone``), not a construction: it must equal what
ccxt would have built for the account, and share no state an account can change."""

from __future__ import annotations

import logging

import ccxt
import pytest

from tests.counting import ccxt_constructions
from tradingstate.exchanges import pool
from tradingstate.exchanges.ccxt import SHARED_DESCRIPTION, CcxtExchange, deep_merge
from tradingstate.models import ExchangeAccount

SECRET = "clone-secret-value-xyz"
# new for every client, by design (parse_order: its own RememberedOrders)
PER_CLIENT = {"origin", "session", "logger", "throttle", "parse_order"}
VENUES = [
    ("binance", "swap", False, {}),
    ("binance", "spot", True, {"urls": {"api": {"public": "http://127.0.0.1:9/api/v3"}}}),
    ("bybit", "swap", False, {"options": {"recvWindow": 7000}, "rateLimit": 40}),
    ("okx", "swap", True, {}),
]


@pytest.fixture(autouse=True)
def _fresh_pool(monkeypatch):
    monkeypatch.setenv("CLONE_KEY", "clone-key")
    monkeypatch.setenv("CLONE_SECRET", SECRET)
    monkeypatch.setenv("CLONE_PASSWORD", "clone-pass")
    pool.clients_reset()
    yield
    pool.clients_reset()


def _account(exchange, market_type, sandbox, options, name="clone") -> ExchangeAccount:
    return ExchangeAccount(
        name=name, exchange=exchange, market_type=market_type, sandbox=sandbox,
        ccxt_options=options, api_key_env="CLONE_KEY", secret_env="CLONE_SECRET",
        password_env="CLONE_PASSWORD" if exchange == "okx" else "",
    )  # fmt: skip


def _constructed(adapter: CcxtExchange, options: dict):
    """What ccxt builds for the adapter's account, credentials in the configuration."""
    config = deep_merge(adapter._default_config(), options)
    config.update(adapter._read_credentials())
    return adapter._client_construct(getattr(ccxt, adapter.exchange_id), config, options)


@pytest.mark.parametrize(("exchange", "market_type", "sandbox", "options"), VENUES)
def test_a_cloned_client_equals_the_one_ccxt_constructs(exchange, market_type, sandbox, options):
    # given: a first adapter (it makes the venue configuration's template)
    CcxtExchange(_account(exchange, market_type, sandbox, options)).close()
    # when: a second account of the same configuration gets a client
    adapter = CcxtExchange(_account(exchange, market_type, sandbox, options, name="other"))
    while pool.client_take(adapter._client_key) is not None:  # no idle client of its own
        pass
    cloned = adapter._client_build(getattr(ccxt, exchange), {}, adapter._read_credentials(), {})
    built = _constructed(adapter, options)
    # then: attribute for attribute what ccxt constructs, credentials included
    assert set(vars(cloned)) - {"parse_order"} == set(vars(built))
    for name, value in vars(built).items():
        if name not in PER_CLIENT:
            assert getattr(cloned, name) == value, name
    assert (cloned.apiKey, cloned.secret) == ("clone-key", SECRET)
    assert cloned.session is not built.session
    assert isinstance(cloned.session, type(built.session))
    assert cloned.session.trust_env == built.session.trust_env
    assert cloned.isSandboxModeEnabled is sandbox


def test_clones_share_no_state_an_account_can_change(monkeypatch):
    # given: two accounts on one Bybit configuration, each with its own keys
    first = CcxtExchange(_account("bybit", "swap", False, {}, name="a"))
    monkeypatch.setenv("CLONE_KEY", "other-key")
    second = CcxtExchange(_account("bybit", "swap", False, {}, name="b"))
    a, b = first._exchange, second._exchange
    template = pool.template_get(first._markets_key)
    assert template is not None and a is not template and b is not template
    # when: one account's client learns per-key facts, as ccxt does at run time
    a.options["enableUnifiedAccount"] = True
    a.options["networks"]["TRC20"] = "changed"
    a.headers["X-Test"] = "1"
    a.fees["trading"]["maker"] = 0.5
    # then: the other account's client and the template are untouched
    for other in (b, template):
        assert (
            "enableUnifiedAccount" not in other.options
            or other.options["enableUnifiedAccount"] != a.options["enableUnifiedAccount"]
        )
        assert other.options["networks"].get("TRC20") != "changed"
        assert "X-Test" not in other.headers
        assert other.fees["trading"].get("maker") != 0.5
    # and each keeps its own keys, session and redacting logger; the template has no keys
    assert (a.apiKey, b.apiKey) == ("clone-key", "other-key")
    assert not template.apiKey and not template.secret
    assert len({id(a.session), id(b.session), id(template.session)}) == 3
    assert a.logger is not b.logger
    for name in set(vars(a)) - SHARED_DESCRIPTION - {"markets", "throttle"}:
        value = getattr(a, name)
        if isinstance(value, dict | list | set) and value:
            assert value is not getattr(b, name), name


def test_a_client_of_a_new_account_is_copied_not_constructed(monkeypatch):
    # given: one account's adapter made the Binance configuration's template
    CcxtExchange(_account("binance", "swap", False, {}, name="first")).close()
    constructed = ccxt_constructions(monkeypatch)
    # when: 20 more accounts with their own keys get a client each
    for i in range(20):
        monkeypatch.setenv("CLONE_KEY", f"key-{i}")
        adapter = CcxtExchange(_account("binance", "swap", False, {}, name=f"n{i}"))
        assert adapter._exchange.apiKey == f"key-{i}"
    # then: ccxt constructed none of them; another configuration gets its own template
    assert constructed == []
    CcxtExchange(_account("binance", "swap", False, {"rateLimit": 77}, name="x"))
    assert constructed == ["binance"]


def test_the_redacting_logger_of_a_clone_hides_its_secret(caplog):
    adapter = CcxtExchange(_account("binance", "swap", False, {}))
    with caplog.at_level(logging.DEBUG, logger="ccxt.wire"):
        adapter._exchange.logger.debug("signed with %s", SECRET)
    assert SECRET not in caplog.text
