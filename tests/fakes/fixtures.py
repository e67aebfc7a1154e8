"""Pytest fixtures for the fake exchange server (imported by tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.fakes.exchange_server import FakeExchangeServer
from tradingstate.exchanges import pool
from tradingstate.models import ExchangeAccount

API_KEY_ENV = "TS_FAKE_API_KEY"
SECRET_ENV = "TS_FAKE_API_SECRET"
PASSPHRASE_ENV = "TS_FAKE_API_PASSPHRASE"  # OKX signs with a passphrase too
PLANTED_SECRET = "s3cr3t-VALUE-must-never-leak-0123456789"


def fake_account(
    server: FakeExchangeServer,
    exchange: str,
    market_type: str = "swap",
    *,
    name: str | None = None,
    timeout_ms: int = 3000,
    options: dict | None = None,
    save: bool = False,
    **fields,
) -> ExchangeAccount:
    """An ExchangeAccount whose ccxt client talks to ``server`` (unsaved unless ``save``)."""
    ccxt_options = {
        "urls": server.ccxt_urls(exchange),
        "timeout": timeout_ms,
        "rateLimit": 1,  # keep the rate limiter on, but do not make tests wait
    }
    if options:
        ccxt_options["options"] = options
    if exchange == "okx":
        fields.setdefault("password_env", PASSPHRASE_ENV)
    account = ExchangeAccount(
        name=name or f"fake-{exchange}-{market_type}",
        exchange=exchange,
        market_type=market_type,
        api_key_env=API_KEY_ENV,
        secret_env=SECRET_ENV,
        ccxt_options=ccxt_options,
        **fields,
    )
    if save:
        account.full_clean()
        account.save()
    return account


@pytest.fixture
def fake_exchange():
    pool.clients_reset()  # ccxt clients and markets kept for a server of an earlier test
    server = FakeExchangeServer().start()
    try:
        yield server
    finally:
        server.stop()
        pool.clients_reset()


@pytest.fixture
def fake_credentials(monkeypatch, fake_exchange):
    """Set the env vars the fake accounts name; the secret is the planted value."""
    monkeypatch.setenv(API_KEY_ENV, fake_exchange.api_key)
    monkeypatch.setenv(SECRET_ENV, PLANTED_SECRET)
    monkeypatch.setenv(PASSPHRASE_ENV, fake_exchange.passphrase)
    return {
        "api_key": fake_exchange.api_key,
        "secret": PLANTED_SECRET,
        "passphrase": fake_exchange.passphrase,
    }


@pytest.fixture
def make_fake_account(fake_exchange, fake_credentials):
    def make(exchange: str, market_type: str = "swap", **kwargs) -> ExchangeAccount:
        return fake_account(fake_exchange, exchange, market_type, **kwargs)

    return make
