"""Issue 13: requests whose framing cannot be trusted are refused in JSON before any view.

- D4: a chunked body (Transfer-Encoding) reached Django as an empty body: ``{"dry_run":
  true}`` ran a live pass. Now 411, nothing done (real sockets: tests/reliability).
- D5: a NUL (or any control character) in a path parameter reached psycopg (DataError, 500).
- D11: an over-long URL got gunicorn's HTML; the app now answers 414 JSON below that limit.
"""

import pytest

from reconciliation.models import ReconciliationRun
from tests.api_support import (
    api_cache_table,  # noqa: F401  (session fixture)
    assert_error,
    make_bot,
    order_body,
    two_accounts,
    url,
)
from tests.factories import OrderFactory
from tradingstate.models import Balance, Order, Position

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("api_cache_table")]


@pytest.fixture
def setup():
    a, _b = two_accounts()
    client, _ = make_bot("alpha", a)
    OrderFactory(account=a, client_order_id="o1", status="submitted")
    return a, client


def test_a_chunked_dry_run_is_refused_not_run_live(setup):
    a, client = setup
    response = client.post(
        url(a, "reconciliations") + "?wait=true",
        {"dry_run": True},
        format="json",
        HTTP_TRANSFER_ENCODING="chunked",
    )
    body = assert_error(response, 411, "length_required")
    assert "Content-Length" in body["detail"]
    assert not ReconciliationRun.objects.exists()


def test_a_chunked_registration_is_411_not_field_required(setup):
    a, client = setup
    response = client.post(
        url(a, "orders"), order_body(), format="json", HTTP_TRANSFER_ENCODING="chunked"
    )
    assert_error(response, 411, "length_required")
    assert not Order.objects.filter(client_order_id="abc123").exists()


NUL_PATHS = [
    ("get", "/api/v1/accounts/acct-a%00/orders/"),
    ("get", "/api/v1/accounts/acct-a/orders/o1%00/"),
    ("post", "/api/v1/accounts/acct-a/orders/o1%00/transition/"),
    ("put", "/api/v1/accounts/acct-a/positions/BTC%2FUSDT%00/"),
    ("put", "/api/v1/accounts/acct-a/balances/USDT%00/"),
    ("get", "/api/v1/accounts/acct-a%00/pnl/"),
]


@pytest.mark.parametrize(("method", "path"), NUL_PATHS)
@pytest.mark.parametrize("char", ["%00", "%01", "%1F", "%7F", "%C2%85"])
def test_control_characters_in_a_path_are_400_json(setup, method, path, char):
    _a, client = setup
    response = getattr(client, method)(path.replace("%00", char), {}, format="json")
    body = assert_error(response, 400, "bad_request")
    assert "control character" in body["detail"]
    assert not Position.objects.exists() and not Balance.objects.exists()


def test_control_characters_in_the_query_are_400_json(setup):
    a, client = setup
    body = assert_error(client.get(url(a, "orders") + "?symbol=BTC%00"), 400, "bad_request")
    assert body["fields"] == {"symbol": [body["detail"]]}


def test_an_over_long_url_is_414_json(setup):
    a, client = setup
    response = client.get(url(a, "orders") + "?symbol=" + "A" * 5000)
    assert_error(response, 414, "uri_too_long")


def test_control_characters_outside_the_api_are_refused_too(client):
    response = client.get("/admin/tradingstate/order/1%00/change/")
    assert response.status_code == 400 and response.json()["error"] == "bad_request"
