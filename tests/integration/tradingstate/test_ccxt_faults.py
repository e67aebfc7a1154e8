"""Injected exchange faults map to the adapter's error classes; nothing partial is complete."""

from __future__ import annotations

import logging

import pytest

from tests.fakes.exchange_server import FakeOrder
from tests.fakes.fixtures import PLANTED_SECRET
from tests.fakes.scenarios import seed_derivatives
from tradingstate.exchanges import adapter_for
from tradingstate.exchanges.base import (
    AuthenticationFailed,
    BadExchangeResponse,
    ExchangeUnavailable,
    MissingCredentials,
    RateLimited,
    TransientExchangeError,
)

# (exchange, market type) -> adapter method -> the path ccxt 4.5.90 calls for it
PATHS = {
    ("binance", "swap"): {
        "fetch_open_orders": "/fapi/v1/openOrders",
        "fetch_positions": "/fapi/v3/positionRisk",
        "fetch_balances": "/fapi/v3/account",
        "load_instruments": "/fapi/v1/exchangeInfo",
    },
    ("bybit", "swap"): {
        "fetch_open_orders": "/v5/order/realtime",
        "fetch_positions": "/v5/position/list",
        "fetch_balances": "/v5/account/wallet-balance",
        "load_instruments": "/v5/market/instruments-info",
    },
    ("binance", "spot"): {
        "fetch_open_orders": "/api/v3/openOrders",
        "fetch_balances": "/api/v3/account",
        "load_instruments": "/api/v3/exchangeInfo",
    },
    ("okx", "swap"): {
        "fetch_open_orders": "/api/v5/trade/orders-pending",
        "fetch_positions": "/api/v5/account/positions",
        "fetch_balances": "/api/v5/account/balance",
        "load_instruments": "/api/v5/public/instruments",
    },
    ("okx", "spot"): {
        "fetch_open_orders": "/api/v5/trade/orders-pending",
        "fetch_balances": "/api/v5/account/balance",
    },
}
CASES = [(venue, method, path) for venue, calls in PATHS.items() for method, path in calls.items()]
CASE_IDS = [f"{v[0]}-{v[1]}-{m}" for v, m, _ in CASES]

FAULTS = [
    ("429", RateLimited),
    ("503_html", ExchangeUnavailable),
    ("timestamp", TransientExchangeError),
    ("auth", AuthenticationFailed),
    ("html", BadExchangeResponse),
    ("empty_object", BadExchangeResponse),
    ("null", BadExchangeResponse),
    ("missing_keys", BadExchangeResponse),
]


@pytest.mark.parametrize(("venue", "method", "path"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize(("fault", "error"), FAULTS, ids=[f for f, _ in FAULTS])
def test_fault_raises_the_mapped_error(
    fake_exchange, make_fake_account, venue, method, path, fault, error
):
    # given
    seed_derivatives(getattr(fake_exchange, venue[0]))
    fake_exchange.fail(path, fault)
    adapter = adapter_for(make_fake_account(*venue))
    # when / then: an error, never an (empty) result
    with pytest.raises(error) as caught:
        getattr(adapter, method)()
    assert PLANTED_SECRET not in str(caught.value)


@pytest.mark.parametrize(
    ("venue", "path"),
    [
        (("binance", "swap"), "/fapi/v1/openOrders"),
        (("bybit", "swap"), "/v5/order/realtime"),
        (("okx", "swap"), "/api/v5/trade/orders-pending"),
    ],
)
def test_timeout_is_transient(fake_exchange, make_fake_account, venue, path):
    # given: the server answers after the 1 s client timeout
    fake_exchange.fail(path, "timeout", sleep=1.5)
    adapter = adapter_for(make_fake_account(*venue, timeout_ms=1000))
    # when / then
    with pytest.raises(TransientExchangeError) as caught:
        adapter.fetch_open_orders()
    assert "RequestTimeout" in str(caught.value)


@pytest.mark.parametrize(
    ("exchange", "path"), [("bybit", "/v5/position/list"), ("okx", "/api/v5/account/positions")]
)
def test_rate_limit_carries_retry_after(fake_exchange, make_fake_account, exchange, path):
    fake_exchange.fail(path, "429", retry_after="12")
    with pytest.raises(RateLimited) as caught:
        adapter_for(make_fake_account(exchange, "swap")).fetch_positions()
    assert caught.value.retry_after == 12.0


def test_binance_418_ip_ban_is_rate_limited(fake_exchange, make_fake_account):
    fake_exchange.fail("/fapi/v1/openOrders", "418", retry_after="120")
    with pytest.raises(RateLimited) as caught:
        adapter_for(make_fake_account("binance", "swap")).fetch_open_orders()
    assert caught.value.retry_after == 120.0


def test_transient_error_then_recovery(fake_exchange, make_fake_account):
    # given: one 503, then normal service
    seed_derivatives(fake_exchange.binance)
    fake_exchange.fail("/fapi/v1/openOrders", "503_html", times=1)
    adapter = adapter_for(make_fake_account("binance", "swap"))
    # when
    with pytest.raises(ExchangeUnavailable):
        adapter.fetch_open_orders()
    result = adapter.fetch_open_orders()
    # then
    assert result.complete and len(result.items) == 2


@pytest.mark.parametrize("fault", ["503_html", "null", "missing_keys"])
def test_bybit_failure_on_a_later_page_is_an_error_not_a_short_list(
    fake_exchange, make_fake_account, fault
):
    # given: 120 orders (3 pages), the second page fails
    fake_exchange.bybit.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000") for i in range(120)
    ]
    fake_exchange.fail("/v5/order/realtime", fault, after=1)
    # when / then
    with pytest.raises(TransientExchangeError):
        adapter_for(make_fake_account("bybit", "swap")).fetch_open_orders()


def test_missing_credentials_name_the_variable(fake_exchange, make_fake_account, monkeypatch):
    # given
    monkeypatch.delenv("TS_FAKE_API_SECRET")
    # when / then
    with pytest.raises(MissingCredentials) as caught:
        adapter_for(make_fake_account("binance", "swap"))
    assert "TS_FAKE_API_SECRET" in str(caught.value)
    assert PLANTED_SECRET not in str(caught.value)
    assert fake_exchange.requests == []


def test_empty_variable_counts_as_missing(fake_exchange, make_fake_account, monkeypatch):
    monkeypatch.setenv("TS_FAKE_API_KEY", "")
    with pytest.raises(MissingCredentials, match="TS_FAKE_API_KEY"):
        adapter_for(make_fake_account("bybit", "swap"))


@pytest.mark.parametrize("venue", [("binance", "swap"), ("bybit", "swap"), ("okx", "swap")])
def test_planted_secret_never_in_logs_or_errors(
    fake_exchange, make_fake_account, caplog, venue, fake_credentials, request
):
    # given: everything logged, including ccxt's wire log at DEBUG (the "ccxt" logger does
    # not propagate to the root, where caplog listens: it is heard here directly)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="ccxt")
    logging.getLogger("ccxt").addHandler(caplog.handler)
    request.addfinalizer(lambda: logging.getLogger("ccxt").removeHandler(caplog.handler))
    seed_derivatives(getattr(fake_exchange, venue[0]))
    adapter = adapter_for(make_fake_account(*venue))
    texts = []
    # when: successful calls, then failures
    adapter.fetch_open_orders()
    adapter.fetch_balances()
    for path in ("/fapi/v3/account", "/v5/account/wallet-balance", "/api/v5/account/balance"):
        fake_exchange.fail(path, "auth")
    for call in (adapter.fetch_balances, adapter.fetch_positions):
        try:
            call()
        except Exception as exc:  # collect every error text
            texts.append(str(exc))
            texts.append(repr(exc.__cause__ or exc.__context__))
    # then
    everything = caplog.text + "\n".join(texts)
    wire = [r.getMessage() for r in caplog.records if r.name == "ccxt.wire"]
    assert any(", Request: " in line for line in wire)  # ccxt's wire log, headers included
    assert any(", Response: " in line for line in wire)
    assert PLANTED_SECRET not in everything
    assert fake_credentials["api_key"] not in everything
    assert fake_credentials["passphrase"] not in everything


def test_okx_missing_passphrase_names_the_variable(fake_exchange, make_fake_account, monkeypatch):
    monkeypatch.delenv("TS_FAKE_API_PASSPHRASE")
    with pytest.raises(MissingCredentials, match="TS_FAKE_API_PASSPHRASE"):
        adapter_for(make_fake_account("okx", "swap"))
    assert fake_exchange.requests == []


@pytest.mark.parametrize("fault", ["503_html", "null", "missing_keys", "429"])
def test_okx_failure_on_a_later_page_is_an_error_not_a_short_list(
    fake_exchange, make_fake_account, fault
):
    # given: 230 orders (3 pages of 100), the second page fails
    fake_exchange.okx.orders += [
        FakeOrder(str(5000 + i), "BTCUSDT", "buy", "0.001", "30000") for i in range(230)
    ]
    fake_exchange.fail("/api/v5/trade/orders-pending", fault, after=1)
    # when / then
    with pytest.raises(TransientExchangeError):
        adapter_for(make_fake_account("okx", "swap")).fetch_open_orders()
