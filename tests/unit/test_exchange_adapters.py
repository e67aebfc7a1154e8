"""CcxtExchange construction and parsing without a network."""

from __future__ import annotations

from decimal import Decimal as D

import ccxt
import pytest

from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    CANCELED,
    CLOSED,
    OPEN,
    BadExchangeResponse,
    ConfigurationError,
    MissingCredentials,
)
from tradingstate.exchanges.ccxt import (
    CcxtExchange,
    deep_merge,
    local_order_type,
    step_from_precision,
    to_decimal,
)
from tradingstate.models import ExchangeAccount

SECRET = "unit-secret-value-xyz"


def _account(**fields) -> ExchangeAccount:
    defaults = {"name": "unit", "exchange": "binance", "market_type": "swap"}
    return ExchangeAccount(**{**defaults, **fields})


def test_unknown_exchange_id_is_a_configuration_error_naming_it():
    with pytest.raises(ConfigurationError, match="'notanexchange'"):
        adapter_for(_account(exchange="notanexchange"))


def test_missing_variable_is_named_and_no_request_is_made(monkeypatch):
    monkeypatch.delenv("UNIT_KEY", raising=False)
    with pytest.raises(MissingCredentials, match="UNIT_KEY"):
        CcxtExchange(_account(api_key_env="UNIT_KEY"))


def test_constructor_config(monkeypatch):
    # given
    monkeypatch.setenv("UNIT_KEY", "k")
    monkeypatch.setenv("UNIT_SECRET", SECRET)
    account = _account(
        api_key_env="UNIT_KEY",
        secret_env="UNIT_SECRET",
        ccxt_options={"urls": {"api": {"fapiPrivate": "http://127.0.0.1:9/fapi/v1"}},
                      "options": {"recvWindow": 5000}},
    )  # fmt: skip
    # when
    exchange = CcxtExchange(account)._exchange
    # then
    assert exchange.enableRateLimit is True
    assert exchange.timeout == 10_000
    assert exchange.options["defaultType"] == "swap"
    assert exchange.options["warnOnFetchOpenOrdersWithoutSymbol"] is False
    assert exchange.options["recvWindow"] == 5000
    assert exchange.urls["api"]["fapiPrivate"] == "http://127.0.0.1:9/fapi/v1"
    assert exchange.urls["api"]["fapiPublic"].startswith("https://fapi.binance.com")  # deep merge
    assert (exchange.apiKey, exchange.secret) == ("k", SECRET)


def test_sandbox_mode_switches_to_test_urls():
    exchange = CcxtExchange(_account(sandbox=True))._exchange
    assert exchange.isSandboxModeEnabled
    assert "testnet" in exchange.urls["api"]["fapiPublic"]


def test_sandbox_keeps_explicit_url_overrides():
    options = {"urls": {"api": {"fapiPublic": "http://127.0.0.1:9/fapi/v1"}}}
    exchange = CcxtExchange(_account(sandbox=True, ccxt_options=options))._exchange
    assert exchange.urls["api"]["fapiPublic"] == "http://127.0.0.1:9/fapi/v1"


def test_redaction_of_secrets_and_signatures(monkeypatch):
    monkeypatch.setenv("UNIT_SECRET", SECRET)
    adapter = CcxtExchange(_account(secret_env="UNIT_SECRET"))
    text = adapter.redact(f"GET /x?timestamp=1&signature=abcdef {SECRET}")
    assert SECRET not in text and "abcdef" not in text


def test_deep_merge_does_not_touch_inputs():
    base = {"a": {"b": 1, "c": 2}}
    assert deep_merge(base, {"a": {"c": 3}, "d": 4}) == {"a": {"b": 1, "c": 3}, "d": 4}
    assert base == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.1, D("0.1")), (0.009, D("0.009")), ("1e-8", D("0.00000001")), (3, D(3)), (None, None)],
)
def test_to_decimal_goes_through_str(value, expected):
    assert to_decimal(value) == expected


@pytest.mark.parametrize("value", ["abc", float("nan"), float("inf")])
def test_to_decimal_rejects_garbage(value):
    with pytest.raises(BadExchangeResponse):
        to_decimal(value)


@pytest.mark.parametrize(
    ("value", "mode", "expected"),
    [
        (0.001, ccxt.TICK_SIZE, D("0.001")),
        (1e-05, ccxt.TICK_SIZE, D("0.00001")),
        (3, ccxt.DECIMAL_PLACES, D("0.001")),
        (0, ccxt.DECIMAL_PLACES, D("1")),
        (4, ccxt.SIGNIFICANT_DIGITS, D("0")),
        (None, ccxt.TICK_SIZE, D("0")),
    ],
)
def test_step_from_precision(value, mode, expected):
    assert step_from_precision(value, mode) == expected


@pytest.mark.parametrize(
    ("venue", "order", "expected"),
    [
        ("binance", {"type": "limit", "info": {"type": "LIMIT_MAKER"}}, "limit"),
        ("binance", {"type": "limit", "info": {"type": "STOP_LOSS_LIMIT"}}, "stop_limit"),
        ("binance", {"type": "market", "info": {"type": "TAKE_PROFIT"}}, "take_profit"),
        ("binance", {"type": "limit", "info": {"type": "STOP", "avgPrice": "0"}}, "stop_limit"),
        ("binance", {"type": "market", "info": {"type": "STOP_MARKET", "avgPrice": "0"}}, "stop"),
        ("binance", {"type": "market", "info": {"type": "TRAILING_STOP_MARKET", "avgPrice": "0"}},
         "trailing_stop"),
        ("bybit", {"type": "limit", "info": {"orderType": "Limit", "stopOrderType": "TakeProfit"}},
         "take_profit_limit"),
        ("bybit", {"type": "market", "info": {"orderType": "Market", "stopOrderType": "StopLoss"}},
         "stop"),
        ("bybit", {"type": "market", "info": {"orderType": "Market",
                                              "stopOrderType": "TrailingStop"}}, "trailing_stop"),
        ("bybit", {"type": "market", "info": {"orderType": "Market", "stopOrderType": ""}},
         "market"),
        ("okx", {"type": "limit", "info": {"ordType": "post_only"}}, "limit"),
        ("okx", {"type": "market", "info": {"ordType": "optimal_limit_ioc"}}, "market"),
        ("okx", {"type": "limit", "info": {"ordType": "fok"}}, "limit"),
        ("binance", {"type": "limit", "triggerPrice": 5.0, "info": {}}, "stop_limit"),
        ("kraken", {"type": "iceberg", "info": {}}, "other"),
        # a venue's raw encoding is read by that venue's dialect only
        ("binance", {"type": "limit", "info": {"orderType": "Limit",
                                               "stopOrderType": "TakeProfit"}}, "limit"),
    ],
)  # fmt: skip
def test_local_order_type(venue, order, expected):
    assert local_order_type(order, venue) == expected


def _ccxt_order(**overrides) -> dict:
    order = {"id": "1", "symbol": "BTC/USDT", "side": "buy", "type": "limit", "amount": 1.0,
             "filled": 0.0, "remaining": 1.0, "price": 100.0, "average": None,
             "status": "open", "timestamp": 1700000000000, "info": {}}  # fmt: skip
    return {**order, **overrides}


@pytest.mark.parametrize(
    ("status", "filled", "expected"),
    [
        ("open", 0.3, OPEN),
        ("closed", 1.0, CLOSED),
        ("closed", 0.4, CANCELED),  # part-filled then cancelled (Bybit PartiallyFilledCanceled)
        ("canceled", 0.0, CANCELED),
    ],
)
def test_order_status_mapping(status, filled, expected):
    adapter = CcxtExchange(_account(exchange="bybit"))
    order = adapter._order(_ccxt_order(status=status, filled=filled))
    assert (order.status, order.filled) == (expected, D(str(filled)))


def test_unknown_order_status_is_a_bad_response():
    adapter = CcxtExchange(_account(exchange="bybit"))
    with pytest.raises(BadExchangeResponse, match="weird"):
        adapter._order(_ccxt_order(status="weird"))


def test_a_fork_takes_an_idle_client_as_the_constructor_would(monkeypatch):
    from tradingstate.exchanges import pool

    # given: an adapter, and one idle client of its configuration from an earlier pass
    monkeypatch.setenv("UNIT_KEY", "k")
    monkeypatch.setenv("UNIT_SECRET", SECRET)
    account = _account(name="unit-fork", api_key_env="UNIT_KEY", secret_env="UNIT_SECRET")
    earlier = CcxtExchange(account)
    idle = earlier._exchange
    earlier.close()
    adapter = CcxtExchange(account)  # takes the idle one
    assert adapter._exchange is idle
    other = CcxtExchange(account)  # a second, new client
    second = other._exchange
    other.close()
    # when: forked (its configuration is not worked out again)
    with monkeypatch.context() as m:
        m.setattr(CcxtExchange, "_default_config", lambda self: pytest.fail("built again"))
        fork = adapter.fork()
    # then: the idle client, with every attribute the constructor would have set
    built = CcxtExchange(account)
    assert fork._exchange is second
    for name in vars(built):
        if name == "dialect":  # a fresh one each (stateless)
            assert type(fork.dialect) is type(built.dialect)
            assert fork.dialect is not adapter.dialect
        elif name != "_exchange":
            assert getattr(fork, name) == getattr(built, name), name
    assert set(vars(fork)) == set(vars(built))
    assert fork.redact(f"key k secret {SECRET}").count(SECRET) == 0
    # and without an idle client a fork is constructed
    for a in (fork, built, adapter):
        a.close()
    while pool.client_take(adapter._client_key) is not None:
        pass
    assert adapter.fork()._exchange is not None


def test_a_changed_rate_limit_holds_from_the_next_adapter_even_with_old_clients_idle(
    monkeypatch,
):
    from tradingstate.exchanges import pool

    # given: an account at 60 ms a request, one client of that configuration left idle
    monkeypatch.setenv("UNIT_KEY", "k-rate")
    monkeypatch.setenv("UNIT_SECRET", SECRET)
    pool.reset()
    pool.clients_reset()
    account = _account(
        name="unit-rate", api_key_env="UNIT_KEY", secret_env="UNIT_SECRET",
        ccxt_options={"rateLimit": 60},
    )  # fmt: skip

    def spacing(adapter) -> float:
        return adapter._exchange.throttle.__self__.interval

    CcxtExchange(account).close()
    # when: staff lower it to 1 ms, then set it back to 60 ms
    account.ccxt_options = {"rateLimit": 1}
    lowered = CcxtExchange(account)
    assert spacing(lowered) == 0.001
    lowered.close()
    account.ccxt_options = {"rateLimit": 60}
    back = CcxtExchange(account)  # takes the idle 60 ms client: nothing is built
    # then: the key's shared spacing is the configuration read now, for every client of it
    assert spacing(back) == 0.060
    assert back._exchange.throttle.__self__ is pool.throttle_for("binance", "k-rate", 60)
    back.close()
