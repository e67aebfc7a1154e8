"""D10 (issue 13): /metrics names every account and its halt state: loopback by default,
else a bearer token from the environment or an allowed network. Never a public page."""

import pytest

pytestmark = pytest.mark.django_db

OUTSIDE = "203.0.113.9"


def with_config(settings, *, metrics=None, web=None):
    current = settings.TRADINGSTATE
    update = {}
    if metrics:
        update["metrics"] = current.metrics.model_copy(update=metrics)
    if web:
        update["web"] = current.web.model_copy(update=web)
    settings.TRADINGSTATE = current.model_copy(update=update)


def test_loopback_may_scrape_by_default(client):
    response = client.get("/metrics")
    assert response.status_code == 200 and b"tradingstate" in response.content


def test_anyone_else_is_refused_in_json(client):
    from tests.factories import AccountFactory

    AccountFactory(name="secret-desk")
    response = client.get("/metrics", REMOTE_ADDR=OUTSIDE)
    assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert b"secret-desk" not in response.content


def test_a_bearer_token_from_the_environment(client, settings, monkeypatch):
    monkeypatch.setenv("TS_TEST_METRICS_TOKEN", "s3cret-scrape-token")
    with_config(settings, metrics={"token_env": "TS_TEST_METRICS_TOKEN"})
    ok = client.get(
        "/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer s3cret-scrape-token"
    )
    assert ok.status_code == 200
    wrong = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 401 and wrong["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 401


def test_an_allowed_network(client, settings):
    with_config(settings, metrics={"allow_networks": ["10.0.0.0/8"]})
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 403


def test_a_loopback_proxy_does_not_make_outside_clients_loopback(client, settings):
    with_config(settings, web={"tls": "proxy", "trusted_proxies": ["127.0.0.1"]})
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OUTSIDE)
    assert response.status_code == 403
    # and a client cannot claim loopback through the header when the proxy is not trusted
    with_config(settings, web={"tls": "direct"})
    spoof = client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert spoof.status_code == 403
