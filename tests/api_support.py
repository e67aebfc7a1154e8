"""Helpers for the API tests: bot clients, the shared cache table, common bodies."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from tests.factories import AccountFactory
from tradingstate.actors import Actor
from tradingstate.services import bot_create

API = "/api/v1"


@pytest.fixture(scope="session")
def api_cache_table(django_db_setup, django_db_blocker):
    """The throttle counts in the default cache (the database cache here): create its table."""
    with django_db_blocker.unblock():
        call_command("createcachetable", verbosity=0)


def make_bot(name: str, *accounts) -> tuple[APIClient, object]:
    """A bot granted ``accounts``, and an API client carrying its token."""
    result = bot_create(
        name=name, account_names=[a.name for a in accounts], actor=Actor.system("tests")
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {result.token}")
    return client, result.profile.user


def actor_of(user, request_id: str) -> Actor:
    """The Actor an API write by ``user`` sent with ``X-Request-ID: request_id`` is audited as."""
    kind = "bot" if hasattr(user, "bot") else "user"
    return Actor(type=kind, name=user.username, user_id=user.pk, correlation_id=request_id)


def assert_error(response, status: int, code: str, fields: set[str] | None = None) -> dict:
    """The one error shape: {"error", "detail", "fields"} (+ extras such as "reason")."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert {"error", "detail", "fields"} <= set(body), body
    assert body["error"] == code, body
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["fields"], dict)
    if fields is not None:
        assert set(body["fields"]) == fields, body["fields"]
    return body


def url(account, *parts: str) -> str:
    name = account if isinstance(account, str) else account.name
    tail = "/".join(parts)
    return f"{API}/accounts/{name}/{tail}/" if tail else f"{API}/accounts/{name}/"


def order_body(**over) -> dict:
    body = {
        "client_order_id": "abc123",
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.05",
        "price": "50000",
    }
    body.update(over)
    return body


def two_accounts():
    return AccountFactory(name="acct-a"), AccountFactory(name="acct-b")


def override_api_config(settings, **changes) -> None:
    """Replace ``settings.TRADINGSTATE.api`` values for one test (pytest-django ``settings``)."""
    current = settings.TRADINGSTATE
    api = current.api.model_copy(update=changes)
    settings.TRADINGSTATE = current.model_copy(update={"api": api})


def wsgi_app():
    """A fresh WSGI application as ``tradingstate.wsgi`` builds it, created inside the test so
    its middleware reads the test's settings (plain HTTP). Like Django's test client, it keeps
    the request signals from closing the test's database connection."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    from tradingstate.web.wsgi import refuse_unusable_charsets

    app = refuse_unusable_charsets(WSGIHandler())

    def application(environ, start_response):
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                if hasattr(response, "close"):
                    response.close()
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)

    return application
